"""Streaming (`service.stream`) and embeddings (`service.embed`) through `OpenRouterService`, on a real
socket against the local OpenRouter-compatible server: what goes out, what comes back, the errors,
the retries, and the key kept out of every log record and error."""

from __future__ import annotations

from decimal import Decimal

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openrouter_registry import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    MissingAPIKeyError,
    OpenRouterService,
    ProviderError,
    RateLimitError,
    Registry,
    Settings,
)
from openrouter_registry.replies.decode import InvalidResponseError
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.http.transport import Transport

PROCESSING = ": OPENROUTER PROCESSING\n\n"
DONE = "data: [DONE]\n\n"
TOKEN = "sk-or-v1-this-key-must-never-be-shown-0123456789"


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as s:
        yield s


def make_service(server: FakeOpenRouter, environ: dict[str, str] | None = None, **overrides: Any) -> OpenRouterService:
    overrides.setdefault("api_key", server.api_key)
    settings = Settings.from_env(environ or {}, base_url=server.base_url, **overrides)
    return OpenRouterService(settings, registry=Registry(environ={}))


def sse(data: dict[str, Any]) -> str:
    return "data: " + json.dumps(data, separators=(",", ":")) + "\n\n"


def chunk(content: str | None, *, finish_reason: str | None = None, gen: str = "gen-1731200404-o7j2EtP4m5Ti0YjZFoLz",
          model: str = "openai/gpt-4o", provider: str = "OpenAI", **extra: Any) -> str:
    """One ``chat.completion.chunk`` shaped like the recorded OpenRouter streams."""
    choices = [] if content is None else [
        {"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish_reason, "logprobs": None}
    ]
    return sse({"id": gen, "provider": provider, "model": model, "object": "chat.completion.chunk",
                "created": 1731200404, "choices": choices, **extra})


def error_json(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "code": status}}


# --- streaming: the happy path --------------------------------------------------------------------


async def test_stream_yields_deltas_then_holds_the_totals_of_the_reply(server: FakeOpenRouter) -> None:
    service = make_service(server, http_referer="https://app.example", site_name="Stream Test")
    async with service:
        stream = service.stream("Say hello")
        deltas = [delta async for delta in stream]

    expected = "Hello from openai/gpt-4o (local OpenRouter test server)."
    assert len(deltas) > 2 and all(deltas)  # several pieces, no empty ones
    assert "".join(deltas) == stream.text == expected
    (request,) = server.requests
    assert stream.generation_id is not None
    generation = server.generations[stream.generation_id]  # what the server billed for this stream
    assert generation["streamed"] is True
    assert (stream.model, stream.provider, stream.finish_reason, stream.attempts) == ("openai/gpt-4o", "OpenAI", "stop", 1)
    assert stream.usage.prompt_tokens == generation["tokens_prompt"] > 0
    assert stream.usage.completion_tokens == generation["tokens_completion"] > 0
    assert stream.usage.total_tokens == generation["tokens_prompt"] + generation["tokens_completion"]
    assert stream.cost == Decimal(repr(generation["total_cost"])) > 0

    assert (request.method, request.path) == ("POST", "/api/v1/chat/completions")
    assert request.body == {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
    assert request.headers["authorization"] == f"Bearer {server.api_key}"
    assert request.headers["http-referer"] == "https://app.example"
    assert request.headers["x-title"] == "Stream Test"
    assert request.headers["accept"] == "text/event-stream"


async def test_stream_sends_messages_model_and_options(server: FakeOpenRouter) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    async with make_service(server) as service:
        stream = service.stream(
            messages=messages, model="anthropic/claude-3.5-sonnet", temperature=0.2, max_tokens=300,
            extra_body={"provider": {"order": ["Anthropic"]}},
        )
        text = await stream.collect()
    assert text == stream.text == "Hello from anthropic/claude-3.5-sonnet (local OpenRouter test server)."
    assert (stream.model, stream.provider) == ("anthropic/claude-3.5-sonnet", "Anthropic")
    (request,) = server.requests
    # Plain text: no schema instruction and no "{" prefill, even for Claude.
    assert request.body == {
        "provider": {"order": ["Anthropic"]},
        "model": "anthropic/claude-3.5-sonnet",
        "messages": messages,
        "max_tokens": 300,
        "temperature": 0.2,
        "stream": True,
    }


async def test_keep_alive_comments_are_skipped_and_usage_comes_from_the_final_chunk(server: FakeOpenRouter) -> None:
    # The 2024-11 gpt-4o recording: comments before the first chunk and between chunks, an empty
    # first delta, finish_reason on its own chunk, then usage on a last chunk (without cost, as in 2024).
    server.enqueue(Scripted(sse=[
        PROCESSING, PROCESSING,
        chunk(""),
        chunk("G"),
        PROCESSING,
        chunk("ully"),
        PROCESSING,
        chunk(" done"),
        chunk("", finish_reason="stop"),
        PROCESSING,
        chunk("", usage={"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22}),
        DONE,
    ], headers={"X-Generation-Id": "gen-1731200404-o7j2EtP4m5Ti0YjZFoLz"}))
    async with make_service(server) as service:
        stream = service.stream("hi")
        deltas = [d async for d in stream]
    assert deltas == ["G", "ully", " done"]
    assert stream.text == "Gully done"
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens, stream.usage.total_tokens) == (17, 5, 22)
    assert stream.cost is None  # the 2024 usage reports no cost: None, not 0
    assert (stream.finish_reason, stream.generation_id) == ("stop", "gen-1731200404-o7j2EtP4m5Ti0YjZFoLz")


async def test_usage_and_cost_riding_on_the_finish_chunk_and_the_served_model(server: FakeOpenRouter) -> None:
    # The 2026-06 claude-haiku-4.5 recording: the served model differs from the requested one, and
    # usage (with cost) comes on a finish_reason chunk.
    served, provider, gen = "anthropic/claude-4.5-haiku-20251001", "Amazon Bedrock", "gen-1780944361-X5HAtL0Z2NQp8nHAiT6F"
    usage = {"prompt_tokens": 15, "completion_tokens": 9, "total_tokens": 24, "cost": 0.00006, "is_byok": False,
             "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 0}}
    server.enqueue(Scripted(sse=[
        *[PROCESSING] * 5,
        chunk("1\n2\n3", model=served, provider=provider, gen=gen),
        chunk("", finish_reason="stop", model=served, provider=provider, gen=gen),
        chunk("", finish_reason="stop", model=served, provider=provider, gen=gen, usage=usage),
        DONE,
    ]))
    async with make_service(server) as service:
        stream = service.stream("Count from 1 to 3", model="anthropic/claude-haiku-4.5")
        assert await stream.collect() == "1\n2\n3"
    assert (stream.model, stream.provider, stream.generation_id) == (served, provider, gen)
    assert (stream.usage.total_tokens, stream.usage.cached_tokens, stream.cost) == (24, 3, Decimal("0.00006"))
    assert server.requests[0].body["model"] == "anthropic/claude-haiku-4.5"


# --- streaming: errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type", "status"),
    [("server_error", ProviderError, 502), (502, ProviderError, 502), ("503", ProviderError, 503)],
)
async def test_error_chunk_mid_stream_raises_and_keeps_the_text(
    server: FakeOpenRouter, code: Any, error_type: type[ProviderError], status: int
) -> None:
    gen = "gen-1762179802-UN8pkJI4AGZvryk0kFnb"
    server.enqueue(Scripted(sse=[
        PROCESSING,
        chunk("The answer", gen=gen),
        PROCESSING,
        chunk(" is", gen=gen),
        chunk("", finish_reason="error", gen=gen, error={"code": code, "message": "Upstream provider went away"}),
        DONE,
    ]))
    received: list[str] = []
    async with make_service(server) as service:
        stream = service.stream("What is the answer?")
        with pytest.raises(error_type) as info:
            async for delta in stream:
                received.append(delta)
    error = info.value
    assert type(error) is error_type
    assert (error.status, error.model, error.generation_id, error.attempts) == (status, "openai/gpt-4o", gen, 1)
    assert "Upstream provider went away" in str(error) and "model openai/gpt-4o" in str(error)
    assert received == ["The answer", " is"]
    assert stream.text == "The answer is"
    assert stream.finish_reason == "error"
    assert len(server.requests) == 1  # tokens were already delivered: never retried mid-stream


async def test_recorded_mid_stream_error_chunk_with_usage(server: FakeOpenRouter) -> None:
    # The 2025-11 minimax recording, verbatim: reasoning-only deltas, then a top-level error with code
    # 400 on a chunk whose finish_reason is null.
    model = "minimax/minimax-m2:free"
    head = '{"id":"gen-1762179802-UN8pkJI4AGZvryk0kFnb","provider":"Minimax","model":"minimax/minimax-m2:free","object":"chat.completion.chunk","created":1762179802,'
    server.enqueue(Scripted(sse=[
        *[PROCESSING] * 17,
        "data: " + head + '"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"We need"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n',
        "data: " + head + '"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":null},"finish_reason":"length","native_finish_reason":"length","logprobs":null}]}\n\n',
        'data: {"id":"gen-1762179802-UN8pkJI4AGZvryk0kFnb","provider":"Minimax","error":{"code":400,"message":"Token limit reached"},"model":"minimax/minimax-m2:free","object":"chat.completion.chunk","created":1762179802,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":43,"completion_tokens":10,"total_tokens":53,"cost":0}}\n\n',
        DONE,
    ]))
    async with make_service(server) as service:
        stream = service.stream("Hello there", model=model, max_tokens=10)
        with pytest.raises(BadRequestError, match="Token limit reached") as info:
            await stream.collect()
    assert (info.value.status, info.value.model, info.value.provider) == (400, model, "Minimax")
    assert "provider Minimax" in str(info.value)
    assert stream.text == ""
    assert stream.finish_reason == "error"
    # the failed reply was billed: its usage rides on the error chunk
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens, stream.cost) == (43, 10, 0.0)
    assert server.requests[0].body["max_tokens"] == 10


async def test_429_before_the_stream_starts_is_retried(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(Scripted(status=429, json=error_json(429, "Rate limit exceeded: free-models-per-min"), headers={"Retry-After": "0"}))
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        async with make_service(server) as service:
            stream = service.stream("hi")
            text = await stream.collect()
    assert text == "Hello from openai/gpt-4o (local OpenRouter test server)."
    assert stream.attempts == 2
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body and server.requests[1].body["stream"] is True
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "status 429" in warning and "attempt 1 of 3" in warning


async def test_429_on_every_attempt_raises_rate_limit_error_with_attempts(server: FakeOpenRouter) -> None:
    for _ in range(3):
        server.enqueue(Scripted(status=429, json=error_json(429, "Rate limit exceeded"), headers={"Retry-After": "0"}))
    async with make_service(server) as service:
        stream = service.stream("hi")
        with pytest.raises(RateLimitError, match="^OpenRouter API rate limit exceeded") as info:
            await stream.collect()
    assert info.value.attempts == stream.attempts == 3
    assert len(server.requests) == 3
    assert stream.text == "" and stream.finish_reason is None  # nothing was ever streamed


async def test_401_before_the_stream_starts_is_not_retried(server: FakeOpenRouter) -> None:
    async with make_service(server, api_key="sk-or-v1-wrong") as service:
        stream = service.stream("hi")
        with pytest.raises(AuthenticationError, match="No auth credentials found") as info:
            async for _ in stream:
                pass
    assert (info.value.status, info.value.attempts) == (401, 1)
    assert "Check OPENROUTER_API_KEY" in str(info.value)
    assert len(server.requests) == 1


async def test_stream_missing_key_and_bad_input_fail_before_any_request(server: FakeOpenRouter) -> None:
    keyless = OpenRouterService(Settings.from_env({}, base_url=server.base_url), registry=Registry(environ={}))
    with pytest.raises(MissingAPIKeyError, match="^OPENROUTER_API_KEY is not set"):
        keyless.stream("hi")
    service = make_service(server)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        service.stream("   ")
    with pytest.raises(ConfigurationError, match="temperature must be a number from 0 to 2"):
        service.stream("hi", temperature=3)
    await service.aclose()
    assert server.requests == []


# --- streaming: the iterator ---------------------------------------------------------------------


async def test_a_text_stream_can_be_iterated_only_once(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        stream = service.stream("hi")
        assert await stream.collect() == "Hello from openai/gpt-4o (local OpenRouter test server)."
        with pytest.raises(RuntimeError, match="only once"):
            async for _ in stream:
                pass
        with pytest.raises(RuntimeError, match="only once"):
            await stream.collect()
    assert len(server.requests) == 1


async def test_nothing_is_sent_before_the_first_iteration(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        stream = service.stream("hi")
        assert server.requests == []
        assert await stream.collect()
    assert len(server.requests) == 1


async def test_stopping_early_gives_the_connection_back(server: FakeOpenRouter) -> None:
    """With a one-connection pool, a stream abandoned after its first delta must not keep the
    connection: the next call would otherwise wait for the pool until it times out."""
    server.text_reply = "word " * 200
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, max_attempts=1)
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(10.0, pool=3.0))
    service = OpenRouterService(settings, registry=Registry(environ={}), transport=Transport(settings, client=client))
    try:
        stream = service.stream("talk a lot")
        async for delta in stream:
            assert delta == "word wor"
            break
        reply = await service.generate("again")
    finally:
        await client.aclose()
    assert reply.text == "word " * 200
    assert len(server.requests) == 2


# --- embeddings -----------------------------------------------------------------------------------


async def test_embed_default_model_vectors_in_input_order(server: FakeOpenRouter) -> None:
    service = make_service(server)
    assert service.embedding_dimensions == 3072
    async with service:
        forward = await service.embed(["a", "b"])
        backward = await service.embed(["b", "a"])
    assert len(forward.vectors) == 2 and forward.dimensions == 3072
    assert all(len(v) == 3072 for v in forward.vectors)
    assert forward.vectors[0] != forward.vectors[1]
    assert forward.vectors == backward.vectors[::-1]
    assert forward.attempts == 1
    assert forward.model == "text-embedding-3-large"  # OpenRouter names the upstream model, without "openai/"
    assert forward.provider == "OpenAI" and (forward.generation_id or "").startswith("gen-emb-")
    assert forward.usage.prompt_tokens == 2 and forward.cost is not None and forward.cost > 0
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/api/v1/embeddings")
    assert request.body == {"model": "openai/text-embedding-3-large", "input": ["a", "b"]}
    assert request.headers["authorization"] == f"Bearer {server.api_key}"


async def test_embed_orders_vectors_by_index_not_by_position(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json={
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": [0.0, 1.0], "index": 1},
            {"object": "embedding", "embedding": [1.0, 0.0], "index": 0},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2, "cost": 4e-8},
        "provider": "OpenAI",
        "id": "gen-emb-1787150071-alSj98b6YZi7IrVS68pQ",
    }))
    async with make_service(server) as service:
        result = await service.embed(["first", "second"], model="openai/text-embedding-3-small", dimensions=2)
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert (result.cost, result.generation_id) == (Decimal("4e-8"), "gen-emb-1787150071-alSj98b6YZi7IrVS68pQ")
    assert server.requests[0].body == {"model": "openai/text-embedding-3-small", "input": ["first", "second"], "dimensions": 2}


async def test_embed_single_string(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        result = await service.embed("just one")
    assert len(result.vectors) == 1 and len(result.vectors[0]) == 3072
    assert server.requests[0].body["input"] == ["just one"]


@pytest.mark.parametrize(
    ("environ", "model", "dimensions", "size"),
    [
        ({"OPENROUTER_EMBEDDER_DIMENSIONS": "256"}, "openai/text-embedding-3-large", 256, 256),
        ({"OPENROUTER_EMBEDDER_MODEL": "openai/text-embedding-3-small"}, "openai/text-embedding-3-small", None, 1536),
        (
            {"OPENROUTER_EMBEDDER_MODEL": "openai/text-embedding-3-small", "OPENROUTER_EMBEDDER_DIMENSIONS": "512"},
            "openai/text-embedding-3-small",
            512,
            512,
        ),
    ],
)
async def test_embedder_settings_change_the_model_and_dimensions_sent(
    server: FakeOpenRouter, environ: dict[str, str], model: str, dimensions: int | None, size: int
) -> None:
    service = make_service(server, environ)
    assert service.embedding_dimensions == size
    async with service:
        result = await service.embed(["a", "b"])
    assert [len(v) for v in result.vectors] == [size, size] and result.dimensions == size
    body = server.requests[0].body
    assert body["model"] == model
    assert body.get("dimensions") == dimensions


async def test_explicit_embed_arguments_win_over_settings(server: FakeOpenRouter) -> None:
    service = make_service(server, {"OPENROUTER_EMBEDDER_DIMENSIONS": "256"})
    async with service:
        result = await service.embed(["a"], model="openai/text-embedding-3-small", dimensions=64)
    assert result.dimensions == 64
    assert server.requests[0].body == {"model": "openai/text-embedding-3-small", "input": ["a"], "dimensions": 64}


async def test_empty_embeddings_answer_is_retried_as_transient(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(Scripted(json={"object": "list", "data": [], "model": "text-embedding-3-large", "id": "gen-emb-1"}))
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        async with make_service(server) as service:
            result = await service.embed(["a", "b"])
    assert len(server.requests) == 2
    assert result.attempts == 2
    assert [len(v) for v in result.vectors] == [3072, 3072]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "InvalidResponseError" in warning and "openai/text-embedding-3-large" in warning


async def test_fewer_vectors_than_inputs_is_retried_not_returned(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json={
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.5, 0.5], "index": 0}],
        "model": "text-embedding-3-large",
    }))
    async with make_service(server) as service:
        result = await service.embed(["a", "b"])
    assert len(server.requests) == 2
    assert (result.attempts, len(result.vectors), result.dimensions) == (2, 2, 3072)


async def test_embeddings_that_never_come_raise_after_every_attempt(server: FakeOpenRouter) -> None:
    empty = Scripted(json={"object": "list", "data": [], "model": "text-embedding-3-large"})
    server.enqueue(empty, empty)
    async with make_service(server, max_attempts=2) as service:
        with pytest.raises(InvalidResponseError, match="no embeddings in response") as info:
            await service.embed(["a"])
    assert isinstance(info.value, ProviderError)
    assert info.value.attempts == 2 and "after 2 attempts" in str(info.value)
    assert len(server.requests) == 2


async def test_embed_401_is_not_retried(server: FakeOpenRouter) -> None:
    async with make_service(server, api_key="sk-or-v1-wrong") as service:
        with pytest.raises(AuthenticationError) as info:
            await service.embed(["a"])
    assert (info.value.status, info.value.attempts, info.value.model) == (401, 1, "openai/text-embedding-3-large")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("texts", "kwargs", "message"),
    [
        ([], {}, "non-empty list of strings"),
        ((), {}, "non-empty list of strings"),
        ([1, "a"], {}, "non-empty list of strings"),
        (["a", None], {}, "non-empty list of strings"),
        (b"bytes", {}, "non-empty list of strings"),
        (["a"], {"dimensions": 0}, "dimensions must be a positive integer, got 0"),
        (["a"], {"dimensions": -8}, "dimensions must be a positive integer"),
        (["a"], {"dimensions": True}, "dimensions must be a positive integer"),
        (["a"], {"dimensions": 2.5}, "dimensions must be a positive integer"),
    ],
)
async def test_bad_embed_input_is_a_configuration_error_before_any_request(
    server: FakeOpenRouter, texts: Any, kwargs: dict[str, Any], message: str
) -> None:
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match=message):
            await service.embed(texts, **kwargs)
    assert server.requests == []


async def test_embed_without_key(server: FakeOpenRouter) -> None:
    service = OpenRouterService(Settings.from_env({}, base_url=server.base_url), registry=Registry(environ={}))
    with pytest.raises(MissingAPIKeyError, match="^OPENROUTER_API_KEY is not set"):
        await service.embed(["a", "b"])
    assert server.requests == []


# --- the key stays secret ---------------------------------------------------------------------------


def _shown(caplog: pytest.LogCaptureFixture, error: BaseException) -> str:
    records = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    return records + caplog.text + str(error) + repr(error) + repr(error.args) + repr(getattr(error, "__context__", None))


async def test_key_is_in_no_log_record_or_error_when_streaming(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(Scripted(status=503, json=error_json(503, "No instances available"), headers={"Retry-After": "0"}))
    with caplog.at_level(logging.DEBUG):
        async with make_service(server, api_key=TOKEN) as service:
            stream = service.stream("hi")
            with pytest.raises(AuthenticationError) as info:
                await stream.collect()
    assert info.value.attempts == 2 and len(server.requests) == 2
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # it was sent...
    assert any("status 503" in r.getMessage() for r in caplog.records)  # ...the retry was logged...
    assert TOKEN not in _shown(caplog, info.value)  # ...and never shown


async def test_key_is_in_no_log_record_or_error_mid_stream(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    key = server.api_key
    server.enqueue(Scripted(status=503, json=error_json(503, "busy"), headers={"Retry-After": "0"}),
                   Scripted(sse=[chunk("partial"), chunk("", finish_reason="error", error={"code": 502, "message": "boom"}), DONE]))
    with caplog.at_level(logging.DEBUG):
        async with make_service(server) as service:
            with pytest.raises(ProviderError) as info:
                await service.stream("hi").collect()
    assert any("status 503" in r.getMessage() for r in caplog.records)  # DEBUG logging was on, the retry logged
    assert key not in _shown(caplog, info.value)


async def test_key_is_in_no_log_record_or_error_when_embedding(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(Scripted(status=502, json=error_json(502, "Bad gateway"), headers={"Retry-After": "0"}))
    with caplog.at_level(logging.DEBUG):
        async with make_service(server, api_key=TOKEN) as service:
            with pytest.raises(AuthenticationError) as info:
                await service.embed(["a", "b"])
    assert info.value.attempts == 2
    assert any("status 502" in r.getMessage() for r in caplog.records)
    assert TOKEN not in _shown(caplog, info.value)


async def test_configured_dimensions_are_not_sent_for_another_model(server: FakeOpenRouter) -> None:
    service = make_service(server, {"OPENROUTER_EMBEDDER_DIMENSIONS": "256"})
    async with service:
        mine = await service.embed(["a"])
        other = await service.embed(["a"], model="openai/text-embedding-3-small")
    assert server.requests[0].body["dimensions"] == 256 and mine.dimensions == 256
    assert "dimensions" not in server.requests[1].body and other.dimensions == 1536
