"""The Parlant adapter in process: both `NLPServices.openrouter` forms, generators, streaming,
embeddings, tokenizer and moderation, against the local OpenRouter server on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pytest
from lagom import Container
from parlant.core.engines.alpha.prompt_builder import PromptBuilder
from parlant.core.nlp.moderation import NoModeration
from parlant.core.nlp.service import NLPService
from parlant.sdk import NLPServiceConfigurationError
from pydantic import BaseModel

from openrouter_registry import NLPServices, OpenRouterService, ProviderError, Registry, Settings
from openrouter_registry.errors import InvalidResponseError
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.adapters.parlant import (
    OpenRouterSchematicGenerator,
    ParlantNLPService,
    estimate_tokens,
)
from openrouter_registry.testing import FakeOpenRouter, Scripted


class CityAnswer(BaseModel):
    city: str
    country: str
    confidence: Optional[float] = None


class Greeting(BaseModel):
    text: str
    formal: bool


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    MODE_MEMORY.clear()
    with FakeOpenRouter() as fake:
        yield fake


def env(server: FakeOpenRouter, **extra: str) -> dict[str, str]:
    return {"OPENROUTER_API_KEY": server.api_key, "OPENROUTER_BASE_URL": server.base_url, **extra}


def nlp(server: FakeOpenRouter, container: Any = None, **extra: str) -> ParlantNLPService:
    service = OpenRouterService(Settings.from_env(env(server, **extra)), registry=Registry(environ={}))
    return service(container)


def prompt(text: str) -> PromptBuilder:
    return PromptBuilder().add_section("task", "{task}", {"task": text})


def chats(server: FakeOpenRouter) -> list[Any]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


# --- the two forms ---------------------------------------------------------------------------------


def test_bare_form_is_called_with_the_container(server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env(server, OPENROUTER_MODEL="anthropic/claude-3.5-sonnet").items():
        monkeypatch.setenv(name, value)
    container = Container()
    service = NLPServices.openrouter(container)
    assert isinstance(service, ParlantNLPService) and isinstance(service, NLPService)
    assert service.resolution.model == "anthropic/claude-3.5-sonnet"
    assert type(service.resolution.generator).__name__ == "OpenRouterClaude35Sonnet"
    # Parlant rebuilds embedders through container[type(embedder)]: it must get our instance
    assert container[type(service.embedder)] is service.embedder


def test_configured_form_returns_a_factory_parlant_can_call(server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env(server, OPENROUTER_MODEL="openai/gpt-4o").items():
        monkeypatch.setenv(name, value)
    factory = NLPServices.openrouter(model_name="meta-llama/llama-3.3-70b-instruct", max_tokens=4096)
    assert isinstance(factory, OpenRouterService) and callable(factory)
    service = factory(Container())
    assert isinstance(service, ParlantNLPService)
    assert service.resolution.model == "meta-llama/llama-3.3-70b-instruct"
    assert service.service.settings.max_tokens == 4096


def test_missing_key_stops_the_server_with_parlants_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(NLPServiceConfigurationError, match="OPENROUTER_API_KEY is not set"):
        NLPServices.openrouter(Container())


def test_unknown_embedder_size_is_a_configuration_error(server: FakeOpenRouter) -> None:
    with pytest.raises(NLPServiceConfigurationError, match="OPENROUTER_EMBEDDER_DIMENSIONS"):
        nlp(server, OPENROUTER_EMBEDDER_MODEL="acme/embed-1")


# --- schematic generation ----------------------------------------------------------------------------


async def test_each_schema_gets_its_own_subscripted_generator(server: FakeOpenRouter) -> None:
    service = nlp(server)
    city = await service.get_schematic_generator(CityAnswer, {})
    greeting = await service.get_schematic_generator(Greeting)
    assert isinstance(city, OpenRouterSchematicGenerator)
    assert city.__orig_class__ == OpenRouterSchematicGenerator[CityAnswer]  # type: ignore[attr-defined]
    assert greeting.__orig_class__ == OpenRouterSchematicGenerator[Greeting]  # type: ignore[attr-defined]
    assert city.schema is CityAnswer and greeting.schema is Greeting
    assert await service.get_schematic_generator(CityAnswer) is city
    assert city.id == "openrouter/openai/gpt-4o" and city.max_tokens == 128_000


async def test_generate_returns_the_pydantic_instance_with_usage_and_cost(server: FakeOpenRouter) -> None:
    server.set_reply("CityAnswer", {"city": "Lyon", "country": "France", "confidence": 0.9})
    generator = await nlp(server).get_schematic_generator(CityAnswer)
    result = await generator.generate(prompt("Where did we land? Lyon, France."), {"temperature": 0.15})
    assert result.content == CityAnswer(city="Lyon", country="France", confidence=0.9)
    info = result.info
    assert info.schema_name == "CityAnswer" and info.model == "openai/gpt-4o" and info.duration > 0
    assert info.usage.input_tokens > 0 and info.usage.output_tokens > 0
    extra = dict(info.usage.extra or {})
    assert extra["cost_micro_usd"] > 0 and isinstance(extra["cost_micro_usd"], int)
    assert extra["cached_input_tokens"] == 0 and extra["reasoning_tokens"] == 0
    (body,) = chats(server)
    assert body["messages"] == [{"role": "user", "content": "Where did we land? Lyon, France."}]
    assert body["temperature"] == 0.15
    assert body["response_format"]["json_schema"]["schema"] == CityAnswer.model_json_schema()


async def test_claude_replies_in_prose_are_repaired_through_the_parlant_path(server: FakeOpenRouter) -> None:
    server.set_reply("Greeting", {"text": "Bonjour", "formal": True})
    service = nlp(server, OPENROUTER_MODEL="anthropic/claude-3.5-sonnet")
    result = await (await service.get_schematic_generator(Greeting)).generate("Greet me formally in French.")
    assert result.content == Greeting(text="Bonjour", formal=True)
    (body,) = chats(server)
    assert "response_format" not in body and body["messages"][-1] == {"role": "assistant", "content": "{"}


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.3-70b-instruct"])
async def test_openrouter_max_tokens_applies_to_preset_models(server: FakeOpenRouter, model: str) -> None:
    service = nlp(server, OPENROUTER_MODEL=model, OPENROUTER_MAX_TOKENS="1234")
    await (await service.get_schematic_generator(Greeting)).generate("Say hi.", {"temperature": 0.1})
    assert [b["max_tokens"] for b in chats(server)] == [1234]


async def test_all_generators_share_one_connection_pool(server: FakeOpenRouter) -> None:
    service = nlp(server)
    generators = [await service.get_schematic_generator(t) for t in (CityAnswer, Greeting)]
    for _ in range(3):
        for generator in generators:
            await generator.generate("Answer.")
    assert len(server.requests) == 6
    assert len({r.connection for r in server.requests}) == 1  # one kept-alive connection served them all
    assert service.service.transport is service.service.transport


async def test_a_reply_that_never_validates_raises_for_parlant_to_retry(server: FakeOpenRouter) -> None:
    from openrouter_registry import StructuredOutputError

    server.set_reply("Greeting", {"text": 42})
    generator = await nlp(server).get_schematic_generator(Greeting)
    with pytest.raises(StructuredOutputError) as caught:
        await generator.generate("Say hi.")
    assert caught.value.attempts == 2 and server.api_key not in str(caught.value)


# --- streaming ----------------------------------------------------------------------------------------


async def test_streaming_generator_yields_deltas_then_none_and_reports_usage(server: FakeOpenRouter) -> None:
    server.text_reply = "Hello! I am streaming this reply in small pieces."
    service = nlp(server)
    assert service.supports_streaming is True
    generator = await service.get_streaming_text_generator({})
    result = generator.generate(prompt("Say hello."))
    with pytest.raises(RuntimeError):
        result.info  # noqa: B018 - not known before the stream is consumed
    chunks = [chunk async for chunk in result.stream]
    assert chunks[-1] is None and all(isinstance(c, str) for c in chunks[:-1]) and len(chunks) > 3
    assert "".join(c for c in chunks if c) == "Hello! I am streaming this reply in small pieces."
    info = result.info
    assert info.model == "openai/gpt-4o" and info.usage.output_tokens > 0
    assert dict(info.usage.extra or {})["cost_micro_usd"] > 0
    (body,) = chats(server)
    assert body["stream"] is True and body["messages"] == [{"role": "user", "content": "Say hello."}]


async def test_streaming_error_chunk_mid_stream_raises_the_typed_error(server: FakeOpenRouter) -> None:
    head = '{"id":"gen-1-abc","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1'
    server.enqueue(
        Scripted(
            sse=[
                ": OPENROUTER PROCESSING\n\n",
                f'data: {head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"Hel"}},"finish_reason":null}}]}}\n\n',
                f'data: {head},"error":{{"code":"server_error","message":"Provider disconnected"}},'
                '"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n',
            ]
        )
    )
    generator = await nlp(server).get_streaming_text_generator()
    result = generator.generate("Say hello.")
    received: list[str | None] = []
    with pytest.raises(ProviderError, match="Provider disconnected") as caught:
        async for chunk in result.stream:
            received.append(chunk)
    assert received == ["Hel"]
    assert "openai/gpt-4o" in str(caught.value) and server.api_key not in str(caught.value)


# --- embeddings, tokenizer, moderation ---------------------------------------------------------------


async def test_default_embedder_is_text_embedding_3_large_with_3072_dimensions(server: FakeOpenRouter) -> None:
    service = nlp(server)
    embedder = await service.get_embedder({})
    assert embedder.dimensions == 3072 and embedder.id == "openrouter/openai/text-embedding-3-large"
    result = await embedder.embed(["first text", "second text"])
    assert [len(v) for v in result.vectors] == [3072, 3072] and result.vectors[0] != result.vectors[1]
    (request,) = server.requests
    assert request.path.endswith("/embeddings")
    assert request.body == {"model": "openai/text-embedding-3-large", "input": ["first text", "second text"], "dimensions": 3072}


async def test_embedder_model_and_dimensions_from_env(server: FakeOpenRouter) -> None:
    service = nlp(server, OPENROUTER_EMBEDDER_MODEL="acme/embed-1", OPENROUTER_EMBEDDER_DIMENSIONS="64")
    embedder = await service.get_embedder()
    assert embedder.dimensions == 64
    result = await embedder.embed(["x"])
    assert [len(v) for v in result.vectors] == [64]
    assert server.requests[0].body["model"] == "acme/embed-1" and server.requests[0].body["dimensions"] == 64
    # one class per embedding model: Parlant names its caches and container keys after it
    other = await nlp(server).get_embedder()
    assert type(embedder) is not type(other)


async def test_vectors_of_the_wrong_size_are_a_clear_error(server: FakeOpenRouter) -> None:
    server.enqueue(
        Scripted(json={"object": "list", "model": "openai/text-embedding-3-large",
                       "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]})
    )
    embedder = await nlp(server).get_embedder()
    with pytest.raises(InvalidResponseError, match="OPENROUTER_EMBEDDER_DIMENSIONS"):
        await embedder.embed(["x"])


async def test_empty_embedding_data_is_retried(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json={"object": "list", "model": "openai/text-embedding-3-large", "data": []}))
    embedder = await nlp(server).get_embedder()
    result = await embedder.embed(["x"])
    assert len(result.vectors) == 1 and len(server.requests) == 2


@pytest.mark.parametrize("text", ["a", "hello", "x" * 10_000, "日本語", " "])
async def test_tokenizer_is_offline_and_positive_for_any_text(server: FakeOpenRouter, text: str) -> None:
    service = nlp(server)
    generator = await service.get_schematic_generator(Greeting)
    embedder = await service.get_embedder()
    assert await generator.tokenizer.estimate_token_count(text) > 0
    assert await embedder.tokenizer.estimate_token_count(text) == estimate_tokens(text) > 0
    assert estimate_tokens("") == 0
    assert not server.requests


async def test_moderation_is_parlants_no_moderation(server: FakeOpenRouter) -> None:
    assert isinstance(await nlp(server).get_moderation_service(), NoModeration)


def test_parlant_is_imported_only_when_parlant_asks_for_a_service() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from openrouter_registry import NLPServices\n"
        "service = NLPServices.openrouter(model_name='anthropic/claude-3.5-sonnet', api_key='sk-or-v1-x')\n"
        "service.resolve()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'parlant'], 'parlant imported too early'\n"
        "from lagom import Container\n"
        "nlp = service(Container())\n"
        "assert type(nlp).__name__ == 'ParlantNLPService' and 'parlant.core.nlp.service' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_outside_a_parlant_server_a_missing_key_is_our_error_and_writes_nothing(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    code = (
        "from lagom import Container\n"
        "from openrouter_registry import ConfigurationError, NLPServices\n"
        "try:\n"
        "    NLPServices.openrouter(Container())\n"
        "except ConfigurationError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "PARLANT_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ConfigurationError OPENROUTER_API_KEY is not set"), done.stdout
    assert list(tmp_path.iterdir()) == []  # parlant.sdk was not imported: no ./parlant-data


async def test_the_parlant_session_becomes_the_session_id(server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sticky routing: each request of a Parlant session carries ``session_id`` (``parlant-<id>``) so
    that OpenRouter keeps the conversation on the provider that holds its prompt cache."""
    from types import SimpleNamespace

    from parlant.core.engines.alpha.entity_context import EntityContext

    generator = await nlp(server).get_schematic_generator(CityAnswer)
    await generator.generate(prompt("Outside a session (start-up evaluations)."))
    monkeypatch.setattr(EntityContext, "get_session", classmethod(lambda cls: SimpleNamespace(id="s-42")))
    await generator.generate(prompt("Inside session s-42."))
    outside, inside = chats(server)
    assert "session_id" not in outside and inside["session_id"] == "parlant-s-42"


async def test_openrouter_session_id_is_sent_unless_the_call_has_its_own(server: FakeOpenRouter) -> None:
    service = OpenRouterService(Settings.from_env(env(server, OPENROUTER_SESSION_ID="my-app-42")))
    async with service:
        await service.generate("hi")
        await service.generate("hi", session_id="turn-7")
        await service.generate("hi", extra_body={"session_id": "raw"})
    assert [body.get("session_id") for body in chats(server)] == ["my-app-42", "turn-7", "raw"]
    with pytest.raises(Exception, match="OPENROUTER_SESSION_ID"):
        Settings.from_env(env(server, OPENROUTER_SESSION_ID="x" * 300))
