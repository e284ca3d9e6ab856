"""The whole generation path against the local OpenRouter-compatible server, on a real socket:
family styles, learned mode fallback, re-ask, truncation, settings, schema types, secrecy."""

from __future__ import annotations

from decimal import Decimal

import dataclasses
import enum
import json
import logging
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import pytest

from openrouter_registry import (
    AuthenticationError,
    MissingAPIKeyError,
    NLPServices,
    OpenRouterService,
    Registry,
    Settings,
    StructuredOutputError,
    TruncatedOutputError,
)
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    MODE_MEMORY.clear()
    with FakeOpenRouter() as s:
        s.set_reply("city_country", PARIS)
        yield s
    MODE_MEMORY.clear()


def make_service(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, **overrides)
    return OpenRouterService(settings, registry=Registry(environ={}))


def chat_body(content: str, *, finish_reason: str = "stop", cost: float | None = 0.0001, model: str = "openai/gpt-4o") -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
    if cost is not None:
        usage["cost"] = cost
    return {
        "id": "gen-1764926476-0N0195qHFzGljvYKVijc",
        "provider": "OpenAI",
        "model": model,
        "object": "chat.completion",
        "created": 1764926476,
        "choices": [
            {
                "finish_reason": finish_reason,
                "native_finish_reason": finish_reason,
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
            }
        ],
        "usage": usage,
    }


def chat_requests(server: FakeOpenRouter) -> list[Any]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


# --- each family, end to end --------------------------------------------------------------------


async def test_gpt_json_schema_clean_json(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        g = await service.generate("Extract: I live in Paris.", schema=CITY, model="openai/gpt-4o")
    assert (g.content, g.mode, g.attempts, g.plugin, g.generator) == (PARIS, "json_schema", 1, "openrouter_gpt", "OpenRouterGPT4O")
    assert g.text == json.dumps(PARIS, separators=(",", ":"))
    assert (g.model, g.provider) == ("openai/gpt-4o", "OpenAI") and g.generation_id.startswith("gen-")
    assert g.usage.total_tokens == g.usage.prompt_tokens + g.usage.completion_tokens > 0
    assert g.cost is not None and g.cost > 0
    (request,) = chat_requests(server)
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city_country", "strict": True, "schema": CITY},
    }
    assert request.body["messages"] == [{"role": "user", "content": "Extract: I live in Paris."}]
    assert request.headers["authorization"] == f"Bearer {server.api_key}"


async def test_claude_prompt_mode_with_prefill_and_fenced_reply(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="anthropic/claude-3.5-sonnet")
    assert (g.content, g.mode, g.attempts, g.plugin) == (PARIS, "prompt", 1, "openrouter_claude")
    (request,) = chat_requests(server)
    assert "response_format" not in request.body
    messages = request.body["messages"]
    assert messages[0]["role"] == "system" and "JSON Schema:\n" in messages[0]["content"]
    assert messages[-1] == {"role": "assistant", "content": "{"}
    assert not g.text.lstrip().startswith("{")  # the server continued the prefill; we put the brace back


async def test_claude_fenced_prose_reply_without_prefill(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="anthropic/claude-3-opus")
    assert (g.content, g.mode, g.plugin, g.generator) == (PARIS, "json_schema", "openrouter_claude", "OpenRouterClaude")
    assert "```json" in g.text


async def test_llama_preamble_and_trailing_comma(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="meta-llama/llama-3.3-70b-instruct")
    assert (g.content, g.attempts, g.plugin) == (PARIS, 1, "openrouter_llama")
    assert g.text.startswith("Here is the JSON:") and ",\n}" in g.text


# --- learned mode fallback -------------------------------------------------------------------------


async def test_mode_fallback_is_learned_and_remembered(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    model = "acme/json-shy"  # not in the catalog: its modes must be learned
    server.refuse_modes[model] = {"json_schema", "json_object"}
    async with make_service(server) as service:
        with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
            first = await service.generate("Extract: Paris.", schema=CITY, model=model)
            second = await service.generate("Extract: Paris.", schema=CITY, model=model)
    assert (first.content, first.mode, first.attempts) == (PARIS, "prompt", 3)
    assert (second.content, second.mode, second.attempts) == (PARIS, "prompt", 1)
    sent = [r.body.get("response_format", {}).get("type") for r in chat_requests(server)]
    assert sent == ["json_schema", "json_object", None, None]
    warnings = [r.getMessage() for r in caplog.records if "does not support JSON mode" in r.getMessage()]
    assert len(warnings) == 2 and all(w.startswith(f"Model '{model}' does not support JSON mode") for w in warnings)


async def test_memory_is_shared_by_services_in_the_process(server: FakeOpenRouter) -> None:
    model = "acme/json-shy"
    server.refuse_modes[model] = {"json_schema", "json_object"}
    async with make_service(server) as one:
        await one.generate("x", schema=CITY, model=model)
    async with make_service(server) as two:
        g = await two.generate("x", schema=CITY, model=model)
    assert (g.mode, g.attempts) == ("prompt", 1)


# --- re-ask, invalid output, truncation ------------------------------------------------------------


async def test_reask_with_validation_errors_then_success(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=chat_body('{"city": "Paris"}', cost=0.001)))
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    assert (g.content, g.attempts) == (PARIS, 2)
    assert g.cost is not None and g.cost > 0.001  # both billed attempts are summed
    second = chat_requests(server)[1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"city": "Paris"}'}
    assert second[-1]["role"] == "user" and "'country' is a required property" in second[-1]["content"]


async def test_invalid_after_reasks_raises_with_text_errors_usage_and_cost(server: FakeOpenRouter) -> None:
    bad = chat_body("I'm sorry, I can't help with that.", cost=0.002)
    server.enqueue(Scripted(json=bad), Scripted(json=bad))
    async with make_service(server) as service:
        with pytest.raises(StructuredOutputError) as info:
            await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    error = info.value
    assert (error.text, error.attempts, error.usage.total_tokens) == ("I'm sorry, I can't help with that.", 2, 60)
    assert error.cost == Decimal("0.004")  # money is exact: 0.002 + 0.002
    assert error.errors == ["the reply holds no JSON value"]
    assert len(chat_requests(server)) == 2


async def test_max_reasks_zero_means_one_request(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=chat_body('{"city": 3, "country": "France"}')))
    async with make_service(server, max_reasks=0) as service:
        with pytest.raises(StructuredOutputError, match=r"\$\.city"):
            await service.generate("x", schema=CITY, model="openai/gpt-4o")
    assert len(chat_requests(server)) == 1


async def test_truncated_reply_is_a_clear_error_not_a_repair(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=chat_body('{"city": "Par', finish_reason="length")))
    async with make_service(server) as service:
        with pytest.raises(TruncatedOutputError, match="cut off at max_tokens"):
            await service.generate("x", schema=CITY, model="openai/gpt-4o")
    assert len(chat_requests(server)) == 1


async def test_plain_text_without_schema(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        g = await service.generate("Say hello", model="google/gemini-pro-1.5")
    assert g.content == g.text and "Hello" in g.content and g.mode is None
    assert "response_format" not in chat_requests(server)[0].body


# --- request shaping from settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "env_max", "call_max", "sent"),
    [
        ("openai/gpt-4o", 100_000, None, 16_384),  # capped by the generator
        ("openai/gpt-4o", 512, None, 512),  # OPENROUTER_MAX_TOKENS applies to known models too
        ("anthropic/claude-3.5-sonnet", 100_000, None, 8_192),
        ("openai/gpt-4o", 512, 64, 64),  # per call wins
        ("google/gemini-pro-1.5", 100_000, None, 8_192),  # no plugin: capped by the catalog's output limit
        ("acme/unlisted", 100_000, None, 100_000),  # unknown maximum: sent as is
        ("google/gemini-pro-1.5", None, None, None),
    ],
)
async def test_max_tokens(server: FakeOpenRouter, model: str, env_max: int | None, call_max: int | None, sent: int | None) -> None:
    async with make_service(server, max_tokens=env_max) as service:
        await service.generate("hi", model=model, max_tokens=call_max)
    assert chat_requests(server)[0].body.get("max_tokens") == sent


async def test_headers_temperature_and_extra_body(server: FakeOpenRouter) -> None:
    async with make_service(server, http_referer="https://app.example", site_name="Demo App") as service:
        await service.generate(
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            model="openai/gpt-4o-mini",
            temperature=0.2,
            extra_body={"provider": {"order": ["OpenAI"]}, "models": ["openai/gpt-4o"]},
        )
    request = chat_requests(server)[0]
    assert (request.headers["http-referer"], request.headers["x-title"]) == ("https://app.example", "Demo App")
    assert request.body["temperature"] == 0.2
    assert request.body["provider"] == {"order": ["OpenAI"]} and request.body["models"] == ["openai/gpt-4o"]
    assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_nlpservices_arguments_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENROUTER_MAX_TOKENS", "100")
    service = NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet", max_tokens=4096)
    assert (service.settings.model, service.settings.max_tokens) == ("anthropic/claude-3.5-sonnet", 4096)
    assert NLPServices.openrouter().settings.model == "openai/gpt-4o-mini"


# --- schema types ---------------------------------------------------------------------------------


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


@attrs.frozen
class CityAttrs:
    city: str
    country: str


@dataclasses.dataclass
class Place:
    name: str
    size: Size
    kind: Literal["city", "town"]
    population: int | None = None


async def test_attrs_class_schema(server: FakeOpenRouter) -> None:
    server.set_reply("CityAttrs", PARIS)
    async with make_service(server) as service:
        g = await service.generate("x", schema=CityAttrs, model="openai/gpt-4o")
    assert g.content == CityAttrs("Paris", "France")
    assert g.to_dict()["content"] == PARIS


async def test_dataclass_schema_with_enum_and_literal(server: FakeOpenRouter) -> None:
    server.set_reply("Place", {"name": "Lyon", "size": "large", "kind": "city", "population": 500000})
    async with make_service(server) as service:
        g = await service.generate("x", schema=Place, model="meta-llama/llama-3.3-70b-instruct")
    assert g.content == Place("Lyon", Size.LARGE, "city", 500000)


async def test_pydantic_model_schema(server: FakeOpenRouter) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Town(pydantic.BaseModel):
        name: str
        inhabitants: int

    server.set_reply("Town", {"name": "Annecy", "inhabitants": 130000})
    async with make_service(server) as service:
        g = await service.generate("x", schema=Town, model="anthropic/claude-3.5-sonnet")
    assert g.content == Town(name="Annecy", inhabitants=130000)


# --- errors and secrecy ------------------------------------------------------------------------------


async def test_missing_key_fails_before_any_request(server: FakeOpenRouter) -> None:
    service = OpenRouterService(Settings.from_env({}, base_url=server.base_url), registry=Registry(environ={}))
    with pytest.raises(MissingAPIKeyError, match="^OPENROUTER_API_KEY is not set"):
        await service.generate("hi")
    assert server.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "pass either a prompt"),
        ({"prompt": "  "}, "non-empty string"),
        ({"messages": [{"content": "no role"}]}, r"messages\[0\] must be a dict with 'role'"),
        ({"prompt": "x", "temperature": 5}, "temperature must be a number from 0 to 2"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens must be a positive integer"),
        ({"prompt": "x", "schema": {"type": "object", "properties": 3}}, "invalid JSON Schema"),
    ],
)
async def test_bad_input_is_a_clear_error(server: FakeOpenRouter, kwargs: dict[str, Any], message: str) -> None:
    from openrouter_registry import ConfigurationError

    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match=message):
            await service.generate(**kwargs)
    assert chat_requests(server) == []


async def test_the_key_is_in_no_log_record_and_no_error(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    wrong_key = "sk-or-v1-this-key-must-never-be-shown-0123456789"
    settings = Settings.from_env({}, base_url=server.base_url, api_key=wrong_key)
    server.enqueue(Scripted(status=503, json={"error": {"message": "down", "code": 503}}))
    with caplog.at_level(logging.DEBUG):
        async with OpenRouterService(settings, registry=Registry(environ={})) as service:
            with pytest.raises(AuthenticationError) as info:
                await service.generate("hi", model="openai/gpt-4o")
    assert info.value.attempts == 2
    shown = caplog.text + str(info.value) + repr(info.value) + repr(service) + repr(settings)
    assert wrong_key not in shown


async def test_a_non_ascii_app_url_reaches_the_server_percent_encoded_and_decodes_back(server: FakeOpenRouter) -> None:
    from urllib.parse import unquote

    async with make_service(server, http_referer="https://café.example/bistrot/menü", site_name="Cafe Bot") as service:
        await service.generate("hi")
    headers = chat_requests(server)[0].headers
    assert headers["http-referer"] == "https://xn--caf-dma.example/bistrot/men%C3%BC"
    assert unquote(headers["http-referer"]).endswith("/bistrot/menü") and headers["x-title"] == "Cafe Bot"
