"""The Parlant adapter answers what Parlant asks of a generator from the model catalog, for any model."""

from __future__ import annotations

from typing import Any

import pytest
from parlant.core.engines.alpha.prompt_builder import PromptBuilder
from pydantic import BaseModel

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.adapters.parlant import DEFAULT_CONTEXT_WINDOW, ParlantNLPService
from openrouter_registry.models.preflight import estimate_tokens
from openrouter_registry.testing import FakeOpenRouter, Scripted

from test_service import server  # noqa: F401  (the fixture: a local server, modes forgotten)


class Greeting(BaseModel):
    greeting: str


def nlp(server: FakeOpenRouter, model: str, **extra: Any) -> ParlantNLPService:
    settings = Settings.from_env({}, api_key=server.api_key, base_url=server.base_url, model=model, **extra)
    return OpenRouterService(settings, registry=Registry(environ={}))(None)


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("mistralai/mixtral-8x7b-instruct", 32_768),  # no plugin: the catalog's
        ("google/gemini-pro-1.5", 2_000_000),
        ("anthropic/claude-3.5-haiku", 200_000),  # the Claude family plugin states none: the catalog's
        ("openai/gpt-4o", 128_000),  # the plugin's
        ("acme/unlisted", DEFAULT_CONTEXT_WINDOW),
    ],
)
async def test_max_tokens_is_the_context_window_for_any_model(server: FakeOpenRouter, model: str, window: int) -> None:
    generator = await nlp(server, model).get_schematic_generator(Greeting)
    assert generator.max_tokens == window
    assert len(server.catalog_requests) == 1 and server.requests == []


async def test_without_the_catalog_an_unclaimed_model_gets_the_default(server: FakeOpenRouter) -> None:
    generator = await nlp(server, "mistralai/mixtral-8x7b-instruct", catalog=False).get_schematic_generator(Greeting)
    assert generator.max_tokens == DEFAULT_CONTEXT_WINDOW and server.catalog_requests == []


async def test_the_tokenizer_estimates_offline_for_any_model(server: FakeOpenRouter) -> None:
    for model in ("mistralai/mixtral-8x7b-instruct", "acme/unlisted"):
        service = nlp(server, model)
        schematic = await service.get_schematic_generator(Greeting)
        streaming = await service.get_streaming_text_generator()
        for text in ("hello", "x" * 10_000, "日本語"):
            assert await schematic.tokenizer.estimate_token_count(text) == estimate_tokens(text) > 0
            assert await streaming.tokenizer.estimate_token_count(text) == estimate_tokens(text)
    assert server.requests == []


async def test_a_reply_without_usage_cost_reaches_parlant_priced_from_the_catalog(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json={
        "id": "gen-1732000000-abcdefghijklmnopqrst", "model": "mistralai/mixtral-8x7b-instruct",
        "object": "chat.completion", "created": 1732000000,
        "choices": [{"finish_reason": "stop", "index": 0,
                     "message": {"role": "assistant", "content": '{"greeting": "Hi"}'}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 250, "total_tokens": 1250},
    }))
    generator = await nlp(server, "mistralai/mixtral-8x7b-instruct").get_schematic_generator(Greeting)
    result = await generator.generate(PromptBuilder().add_section("task", "Greet.", {}))
    assert result.content == Greeting(greeting="Hi")
    assert result.info.usage.extra is not None
    assert result.info.usage.extra["cost_micro_usd"] == 300  # 1,250 tokens at $0.24 per million
