"""`openrouter_registry.http.transport`: retries, backoff, typed errors, streaming and pooling.

Unit tests of the delay policy and client lifecycle first, then real-socket tests against the
local `FakeOpenRouter` (127.0.0.1 only). Delays are kept tiny with ``base_delay``.
"""

from __future__ import annotations

from decimal import Decimal

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from openrouter_registry.replies.decode import InvalidResponseError, decode_chunk, decode_embeddings
from openrouter_registry.http.events import RetryEvent, observe_retries
from openrouter_registry.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    InsufficientCreditsError,
    ModelNotAvailableError,
    ModerationError,
    ProviderError,
    RateLimitError,
    TimeoutError,
)
from openrouter_registry.settings import Settings
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.http.transport import StreamHandle, Transport, retry_delay

KEY = "sk-or-v1-TEST-ONLY-0123456789abcdef0123456789abcdef"
MODEL = "openai/gpt-4o"
CHAT = "/chat/completions"
BODY: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}]}
FAST = 0.01  # base_delay for tests


def err(code: Any, message: str = "Provider returned error", **metadata: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code}
    if metadata:
        error["metadata"] = metadata
    return {"error": error, "user_id": "user_local"}


def chunk(content: str | None = None, *, finish: str | None = None, **extra: Any) -> str:
    data: dict[str, Any] = {
        "id": "gen-1762179802-UN8pkJI4AGZvryk0kFnb", "provider": "Minimax", "model": "minimax/minimax-m2:free",
        "object": "chat.completion.chunk", "created": 1762179802,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish}],
    }
    data.update(extra)
    return "data: " + json.dumps(data, separators=(",", ":")) + "\n\n"


PROCESSING = ": OPENROUTER PROCESSING\n\n"
USAGE = {"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53, "cost": 0.0001}


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(api_key=KEY) as s:
        yield s


def make_settings(server: FakeOpenRouter, **overrides: Any) -> Settings:
    return Settings.from_env({}, api_key=server.api_key, base_url=server.base_url, **overrides)


def auth(server: FakeOpenRouter) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}", "X-Title": "transport tests"}


@pytest.fixture
async def transport(server: FakeOpenRouter) -> AsyncIterator[Transport]:
    async with Transport(make_settings(server), base_delay=FAST, max_delay=0.05) as t:
        yield t


async def post(transport: Transport, server: FakeOpenRouter, path: str = CHAT, **kwargs: Any) -> tuple[Any, int]:
    return await transport.post_json(path, kwargs.pop("body", BODY), auth(server), model=MODEL, **kwargs)


# --- unit: delay policy ----------------------------------------------------------------------------


def test_retry_delay_is_exponential_with_jitter_and_capped() -> None:
    rng = random.Random(7)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        values = [retry_delay(retry, base_delay=0.5, max_delay=8.0, rng=rng) for _ in range(200)]
        assert all(0.75 * ceiling <= v <= ceiling for v in values)
        assert max(values) - min(values) > 0.05 * ceiling  # jittered, not constant


def test_retry_delay_honours_retry_after_capped() -> None:
    assert retry_delay(0, base_delay=0.5, max_delay=8.0, retry_after=3.0, retry_after_max=60.0) == 3.0
    assert retry_delay(5, base_delay=0.5, max_delay=8.0, retry_after=120.0, retry_after_max=2.0) == 2.0
    assert retry_delay(1, base_delay=0.5, max_delay=8.0, retry_after=0.0) == 0.0


# --- unit: client lifecycle ------------------------------------------------------------------------


async def test_client_is_lazy_pooled_and_uses_the_settings_timeouts(http_stack: str) -> None:
    settings = Settings.from_env({}, api_key=KEY, timeout=12.5, connect_timeout=3.0, max_connections=40)
    transport = Transport(settings)
    assert transport._pools == {}  # nothing built before first use
    client = transport.client
    assert transport.client is client
    assert (client.timeout.read, client.timeout.connect, client.timeout.pool) == (12.5, 3.0, None)
    assert transport.url("/chat/completions") == "https://openrouter.ai/api/v1/chat/completions"
    assert transport.url("models") == "https://openrouter.ai/api/v1/models"
    assert type(client._transport).__module__.split(".")[0] == ("httpx" if http_stack == "httpx" else "openrouter_registry")
    await transport.aclose()
    assert client.is_closed
    assert transport.client is not client and not transport.client.is_closed  # reopened on later use
    await transport.aclose()


async def test_a_client_passed_in_is_used_and_left_open() -> None:
    async with httpx.AsyncClient() as client:
        async with Transport(Settings.from_env({}, api_key=KEY), client=client) as transport:
            assert transport.client is client
        assert not client.is_closed


# --- unit: retry loop over httpx.MockTransport ------------------------------------------------------


def mock_transport(answers: list[httpx.Response | Exception], seen: list[httpx.Request], **overrides: Any) -> Transport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    settings = Settings.from_env({}, api_key=KEY, **overrides)
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Transport(settings, client=client, base_delay=FAST, max_delay=0.05)


async def test_retry_after_ms_is_honoured() -> None:
    seen: list[httpx.Request] = []
    transport = mock_transport([httpx.Response(429, json=err(429), headers={"retry-after-ms": "300"}),
                                httpx.Response(200, json={"ok": True})], seen)
    start = time.monotonic()
    assert await transport.post_json(CHAT, BODY, {}, model=MODEL) == ({"ok": True}, 2)
    assert time.monotonic() - start >= 0.28
    await transport.client.aclose()


async def test_check_errors_retry_only_when_transient() -> None:
    seen: list[httpx.Request] = []
    transport = mock_transport([httpx.Response(200, json={"data": []}), httpx.Response(200, json={"data": []}),
                                httpx.Response(200, json={"data": [{"embedding": [1.0], "index": 0}]})], seen)
    data, attempts = await transport.post_json("/embeddings", {}, {}, model=MODEL, check=decode_embeddings)
    assert attempts == 3 and len(seen) == 3 and data["data"][0]["embedding"] == [1.0]

    transport = mock_transport([httpx.Response(200, json={"data": []})] * 3, seen := [])
    with pytest.raises(InvalidResponseError, match="no embeddings in response") as info:
        await transport.post_json("/embeddings", {}, {}, model=MODEL, check=decode_embeddings)
    assert info.value.attempts == 3 and "after 3 attempts" in str(info.value) and len(seen) == 3

    def refuse(body: Any) -> None:
        raise BadRequestError("not usable", status=400)

    transport = mock_transport([httpx.Response(200, json={}), httpx.Response(200, json={})], seen := [])
    with pytest.raises(BadRequestError):
        await transport.post_json(CHAT, BODY, {}, model=MODEL, check=refuse)
    assert len(seen) == 1

    def broken(body: Any) -> None:
        raise KeyError("bug in check")

    transport = mock_transport([httpx.Response(200, json={}), httpx.Response(200, json={})], seen := [])
    with pytest.raises(KeyError):
        await transport.post_json(CHAT, BODY, {}, model=MODEL, check=broken)
    assert len(seen) == 1


async def test_max_attempts_one_means_no_retry() -> None:
    seen: list[httpx.Request] = []
    transport = mock_transport([httpx.Response(503, json=err(503)), httpx.Response(200, json={})], seen,
                               max_attempts=1)
    with pytest.raises(ProviderError) as info:
        await transport.post_json(CHAT, BODY, {}, model=MODEL)
    assert info.value.attempts == 1 and len(seen) == 1


async def test_unsendable_request_is_not_retried_and_hides_the_exception_text() -> None:
    seen: list[httpx.Request] = []
    transport = mock_transport([httpx.LocalProtocolError(f"Illegal header value b'Bearer {KEY}\\n'")] * 3, seen)
    with pytest.raises(APIError) as info:
        await transport.post_json(CHAT, BODY, {}, model=MODEL)
    assert type(info.value) is APIError and len(seen) == 1
    assert KEY not in str(info.value) and "LocalProtocolError" in str(info.value)


# --- real socket: retries --------------------------------------------------------------------------


async def test_429_then_success(server: FakeOpenRouter, transport: Transport, caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(Scripted(status=429, json=err(429, "Rate limit exceeded")))
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        data, attempts = await post(transport, server)
    assert attempts == 2 and len(server.requests) == 2
    assert data["choices"][0]["message"]["content"]
    [record] = [r for r in caplog.records if r.name == "openrouter_registry"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "status 429" in message and MODEL in message and "attempt 1 of 3" in message and "retrying in" in message
    assert server.requests[1].headers["authorization"] == f"Bearer {KEY}"
    assert server.requests[1].headers["x-title"] == "transport tests"
    assert server.requests[1].body == BODY


async def test_retry_after_is_honoured(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=429, json=err(429), headers={"Retry-After": "1"}))
    start = time.monotonic()
    _, attempts = await post(transport, server)
    assert attempts == 2
    assert server.requests[1].time - server.requests[0].time >= 0.95
    assert time.monotonic() - start >= 0.95


async def test_retry_after_http_date_and_cap(server: FakeOpenRouter) -> None:
    async with Transport(make_settings(server, retry_after_max=0.2), base_delay=FAST) as transport:
        far = "Wed, 21 Oct 2099 07:28:00 GMT"
        server.enqueue(Scripted(status=503, json=err(503), headers={"Retry-After": "30"}),
                       Scripted(status=429, json=err(429), headers={"Retry-After": far}))
        start = time.monotonic()
        _, attempts = await post(transport, server)
        elapsed = time.monotonic() - start
    assert attempts == 3 and 0.38 <= elapsed < 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 524, 529])
async def test_5xx_retried_up_to_max_attempts(server: FakeOpenRouter, transport: Transport, status: int) -> None:
    server.enqueue(*[Scripted(status=status, json=err(status, "Upstream unavailable"))] * 3)
    with pytest.raises(ProviderError) as info:
        await post(transport, server)
    assert info.value.attempts == 3 and len(server.requests) == 3
    assert info.value.status == status and "after 3 attempts" in str(info.value)


async def test_408_retried_then_timeout_error(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(*[Scripted(status=408, json=err(408, "Request timed out"))] * 3)
    with pytest.raises(TimeoutError) as info:
        await post(transport, server)
    assert info.value.attempts == 3 and len(server.requests) == 3


async def test_rate_limit_error_after_every_attempt(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(*[Scripted(status=429, json=err(429, "Provider returned error", provider_name="Google",
                                                   raw="temporarily rate-limited upstream"))] * 3)
    with pytest.raises(RateLimitError) as info:
        await post(transport, server)
    assert str(info.value).startswith("OpenRouter API rate limit exceeded")
    assert info.value.provider == "Google" and info.value.attempts == 3


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (403, ModerationError),
        (404, ModelNotAvailableError),
        (409, APIError),
    ],
)
async def test_client_errors_are_not_retried(
    server: FakeOpenRouter, transport: Transport, status: int, cls: type[APIError]
) -> None:
    server.enqueue(Scripted(status=status, json=err(status, "Refused")), Scripted(status=200, json={"ok": 1}))
    with pytest.raises(cls) as info:
        await post(transport, server)
    assert type(info.value) is cls
    assert len(server.requests) == 1 and info.value.attempts == 1 and info.value.status == status


async def test_unscripted_401_from_a_wrong_key(server: FakeOpenRouter, transport: Transport) -> None:
    with pytest.raises(AuthenticationError, match="No auth credentials found") as info:
        await transport.post_json(CHAT, BODY, {"Authorization": "Bearer sk-or-v1-wrong"}, model=MODEL)
    assert len(server.requests) == 1 and info.value.attempts == 1


@pytest.mark.parametrize("code", [429, "429", 503, "524"])
async def test_400_with_transient_error_code_is_retried(server: FakeOpenRouter, transport: Transport, code: Any) -> None:
    server.enqueue(Scripted(status=400, json=err(code)))
    _, attempts = await post(transport, server)
    assert attempts == 2 and len(server.requests) == 2


async def test_http_200_with_429_error_body_is_retried(server: FakeOpenRouter, transport: Transport) -> None:
    # pydantic-ai__http200-with-429-error-body.yaml
    recorded = err(429, "Provider returned error", provider_name="Google",
                   raw="google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream; please retry shortly.")
    server.enqueue(Scripted(status=200, json=recorded), Scripted(status=200, json=recorded))
    data, attempts = await post(transport, server)
    assert attempts == 3 and "choices" in data


async def test_http_200_with_finish_reason_error_is_retried(server: FakeOpenRouter, transport: Transport) -> None:
    failed = {"id": "gen-x", "model": MODEL, "choices": [{"index": 0, "finish_reason": "error",
              "message": {"role": "assistant", "content": "par"}, "error": {"code": 502, "message": "Upstream died"}}]}
    server.enqueue(Scripted(status=200, json=failed))
    data, attempts = await post(transport, server)
    assert attempts == 2 and data["choices"][0]["finish_reason"] == "stop"


async def test_http_200_with_non_transient_error_body_is_raised(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=200, json=err(400, "Invalid schema")))
    with pytest.raises(BadRequestError, match="Invalid schema"):
        await post(transport, server)
    assert len(server.requests) == 1


async def test_non_json_200_is_retried_then_provider_error(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(*[Scripted(status=200, body="<html>oops</html>")] * 3)
    with pytest.raises(InvalidResponseError, match="not JSON") as info:
        await post(transport, server)
    assert isinstance(info.value, ProviderError) and info.value.attempts == 3


async def test_connection_drop_is_retried(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(close=True))
    _, attempts = await post(transport, server)
    assert attempts == 2 and len(server.requests) == 2


async def test_connection_drops_end_in_connection_error(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(*[Scripted(close=True)] * 3)
    with pytest.raises(ConnectionError) as info:
        await post(transport, server)
    error = info.value
    assert error.attempts == 3 and len(server.requests) == 3
    assert error.__cause__ is None and error.__context__ is None  # the httpx exception (and its request) is gone


async def test_refused_connection_is_a_connection_error() -> None:
    settings = Settings.from_env({}, api_key=KEY, base_url="http://127.0.0.1:9", max_attempts=2)
    async with Transport(settings, base_delay=FAST) as transport:
        with pytest.raises(ConnectionError, match="127.0.0.1:9") as info:
            await transport.post_json(CHAT, BODY, {"Authorization": f"Bearer {KEY}"}, model=MODEL)
    assert info.value.attempts == 2


async def test_client_timeout(server: FakeOpenRouter) -> None:
    async with Transport(make_settings(server, timeout=0.2, max_attempts=2), base_delay=FAST) as transport:
        server.enqueue(Scripted(status=200, json={"late": True}, delay=1.0),
                       Scripted(status=200, json={"late": True}, delay=1.0))
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="within 0.2s") as info:
            await post(transport, server)
        assert time.monotonic() - start < 1.5
    assert info.value.attempts == 2 and len(server.requests) == 2
    assert info.value.__context__ is None


async def test_every_attempt_in_flight_has_its_own_deadline(server: FakeOpenRouter) -> None:
    async with Transport(make_settings(server, timeout=0.5, max_attempts=1), base_delay=FAST) as transport:
        server.enqueue(Scripted(status=200, json={"late": True}, delay=3.0),  # first: times out at 0.5s
                       Scripted(status=200, json={"ok": True}, delay=0.3),  # starts at 0.3s, answers at 0.6s
                       Scripted(status=200, json={"late": True}, delay=3.0))  # starts at 0.35s, times out at 0.85s

        async def timed(pause: float) -> tuple[Any, float]:
            await asyncio.sleep(pause)
            start = time.monotonic()
            try:
                outcome: Any = (await post(transport, server))[0]
            except TimeoutError as error:
                outcome = error
            return outcome, time.monotonic() - start

        first = asyncio.ensure_future(timed(0.0))
        await asyncio.sleep(0.3)
        second = asyncio.ensure_future(timed(0.0))
        await asyncio.sleep(0.05)  # the server answers in arrival order
        third, (late, waited_first), (answer, _) = await timed(0.0), await first, await second
        assert isinstance(late, TimeoutError) and 0.45 <= waited_first < 1.5
        assert answer == {"ok": True}  # not cut short when the first attempt's deadline passed
        assert isinstance(third[0], TimeoutError) and 0.45 <= third[1] < 1.5
    assert len(server.requests) == 3


async def test_timeout_then_success(server: FakeOpenRouter) -> None:
    async with Transport(make_settings(server, timeout=0.2), base_delay=FAST) as transport:
        server.enqueue(Scripted(status=200, json={"late": True}, delay=0.6))
        data, attempts = await post(transport, server)
    assert attempts == 2 and "choices" in data


# --- real socket: bodies ---------------------------------------------------------------------------


async def test_leading_whitespace_body(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=200, body='\n         \n\n         \n{"id":"gen-1","choices":[]}'))
    data, attempts = await post(transport, server)
    assert data == {"id": "gen-1", "choices": []} and attempts == 1
    default, _ = await post(transport, server)  # the server pads its own answers too
    assert default["object"] == "chat.completion"


async def test_402_issue_report_body(server: FakeOpenRouter, transport: Transport) -> None:
    raw = ('{"error":{"message":"This request requires more credits, or fewer max_tokens. You requested up to 65536 '
           'tokens, but can only afford 10114. To increase, visit https://openrouter.ai/settings/credits and upgrade '
           'to a paid account","code":402,"metadata":{"provider_name":null}},"user_id":"user_"}')
    server.enqueue(Scripted(status=402, body=raw))
    with pytest.raises(InsufficientCreditsError, match="can only afford 10114") as info:
        await post(transport, server)
    assert info.value.provider is None and len(server.requests) == 1


async def test_moderation_403_reasons(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=403, json=err(403, "Input was flagged", reasons=["violence"],
                                                  flagged_input="something violent", provider_name="OpenAI")))
    with pytest.raises(ModerationError) as info:
        await post(transport, server)
    assert info.value.reasons == ["violence"] and info.value.flagged_input == "something violent"
    assert "Reasons: violence" in str(info.value)


async def test_generation_id_header_on_errors(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=404, json=err(404, "No endpoints found"), headers={"X-Generation-Id": "gen-404"}))
    with pytest.raises(ModelNotAvailableError) as info:
        await post(transport, server)
    assert info.value.generation_id == "gen-404" and info.value.model == MODEL


async def test_embeddings_with_check(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=200, json={"object": "list", "data": [], "model": "text-embedding-3-small"}))
    body = {"model": "openai/text-embedding-3-small", "input": ["Ruby", "Python"]}
    data, attempts = await post(transport, server, "/embeddings", body=body, check=decode_embeddings)
    reply = decode_embeddings(data)
    assert attempts == 2 and len(reply.vectors) == 2 and len(reply.vectors[0]) == 1536
    assert server.requests[-1].path == "/api/v1/embeddings"


async def test_the_body_goes_out_as_the_same_compact_utf8_json_on_every_stack(
    server: FakeOpenRouter, transport: Transport
) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": 'Grüße\u2028"hi"'}], "top_p": 1e-7}
    await post(transport, server, body=body)
    async with transport.stream_data(CHAT, body, auth(server), model=MODEL) as stream:
        assert [c async for c in stream]
    plain, streamed = server.requests
    assert plain.raw == '{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Grüße\u2028\\"hi\\""}],"top_p":1e-7}'.encode()
    assert streamed.raw == plain.raw[:-1] + b',"stream":true}'
    assert plain.headers["content-type"] == streamed.headers["content-type"] == "application/json"

    # what orjson does not encode as Python's json would (an int beyond 64 bits), and a null (which could
    # have been a NaN): Python's encoder, same options
    odd = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "seed": 2**70, "stop": None, "temperature": 1e-7}
    await post(transport, server, body=odd)
    assert server.requests[-1].raw == json.dumps(odd, ensure_ascii=False, separators=(",", ":")).encode()
    assert server.requests[-1].raw.endswith(b'"temperature":1e-07}') and server.requests[-1].body == odd


@pytest.mark.parametrize("value", [math.nan, math.inf, [1.0, -math.inf]])
async def test_nan_and_infinity_are_refused_before_anything_is_sent(
    server: FakeOpenRouter, transport: Transport, value: Any
) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        await post(transport, server, body={"model": MODEL, "messages": [], "top_p": value})
    assert not server.requests


async def test_every_retry_is_announced_with_its_wait_and_attempt(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=429, json=err(429), headers={"Retry-After": "0"}),
                   Scripted(status=503, json=err(503, "Upstream unavailable")))
    seen: list[RetryEvent] = []
    with observe_retries(seen.append):
        data, attempts = await post(transport, server)
    assert attempts == 3 and len(server.requests) == 3 and data["choices"]
    assert [(e.status, e.attempt, e.model, e.error) for e in seen] == [
        (429, 1, MODEL, "RateLimitError"), (503, 2, MODEL, "ProviderError")
    ]
    assert seen[0].wait == 0.0  # Retry-After: 0
    assert 0.75 * 2 * FAST <= seen[1].wait <= 2 * FAST  # backoff's second step (base_delay * 2), jittered

    server.enqueue(*[Scripted(status=503, json=err(503))] * 3)
    with observe_retries(seen.append), pytest.raises(ProviderError) as info:
        await post(transport, server)
    assert info.value.attempts == 3 and [e.attempt for e in seen[2:]] == [1, 2] and len(server.requests) == 6

    server.enqueue(Scripted(status=400, json=err(400, "Invalid request")))
    with observe_retries(seen.append), pytest.raises(BadRequestError) as refused:
        await post(transport, server)
    assert refused.value.attempts == 1 and len(seen) == 4 and len(server.requests) == 7


# --- real socket: streaming ------------------------------------------------------------------------


async def test_default_stream(server: FakeOpenRouter, transport: Transport) -> None:
    stream = transport.stream_data(CHAT, BODY, auth(server), model=MODEL)
    assert isinstance(stream, StreamHandle) and stream.attempts == 0 and not server.requests  # lazy
    async with stream:
        chunks = [decode_chunk(raw) async for raw in stream]
    assert stream.attempts == 1 and stream.status == 200
    assert "".join(c.text for c in chunks) == f"Hello from {MODEL} (local OpenRouter test server)."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0 and chunks[-1].cost
    assert stream.generation_id == chunks[0].generation_id
    assert server.requests[0].body == {**BODY, "stream": True}
    assert server.requests[0].headers["accept"] == "text/event-stream"


async def test_stream_with_comments_usage_and_mid_stream_error(server: FakeOpenRouter, transport: Transport) -> None:
    # shapes of llm-openrouter 2024-11 (comments between chunks) and the pydantic-ai minimax error stream
    server.enqueue(Scripted(sse=[
        PROCESSING, PROCESSING,
        chunk("Hel"), PROCESSING, chunk("lo"), chunk("", finish="stop"), PROCESSING,
        chunk("", usage=USAGE),
        chunk("", error={"code": 400, "message": "Token limit reached"}, usage=USAGE),
        "data: [DONE]\n\n",
    ]))
    seen: list[Any] = []
    stream = transport.stream_data(CHAT, BODY, auth(server), model=MODEL)
    with pytest.raises(BadRequestError, match="Token limit reached") as info:
        async for raw in stream:
            seen.append(decode_chunk(raw))
    assert "".join(c.text for c in seen) == "Hello" and len(seen) == 4
    assert seen[-1].usage is not None and seen[-1].usage.total_tokens == 53 and seen[-1].cost == Decimal("0.0001")
    assert info.value.status == 400 and info.value.model == "minimax/minimax-m2:free" and info.value.attempts == 1
    assert len(server.requests) == 1  # no retry once tokens flowed


async def test_stream_error_chunk_with_string_code_is_typed(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(sse=[chunk("partial"), chunk("", error={"code": "502", "message": "Upstream died"}),
                                 "data: [DONE]\n\n"]))
    stream = transport.stream_data(CHAT, BODY, auth(server), model=MODEL)
    with pytest.raises(ProviderError, match="Upstream died"):
        async for _ in stream:
            pass
    assert len(server.requests) == 1


async def test_stream_opening_is_retried(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(Scripted(status=429, json=err(429), headers={"Retry-After": "0"}),
                   Scripted(status=200, json=err(503, "No provider available")),
                   Scripted(sse=[chunk("ok"), chunk("", finish="stop", usage=USAGE), "data: [DONE]\n\n",
                                 chunk("after done")]))
    stream = transport.stream_data(CHAT, BODY, auth(server), model=MODEL)
    texts = [decode_chunk(raw).text async for raw in stream]
    assert texts == ["ok", ""] and stream.attempts == 3 and len(server.requests) == 3


async def test_stream_client_errors_are_not_retried(server: FakeOpenRouter, transport: Transport) -> None:
    stream = transport.stream_data(CHAT, BODY, {"Authorization": "Bearer nope"}, model=MODEL)
    with pytest.raises(AuthenticationError):
        async for _ in stream:
            pass
    assert len(server.requests) == 1


async def test_stream_opening_gives_up_with_attempts(server: FakeOpenRouter, transport: Transport) -> None:
    server.enqueue(*[Scripted(status=502, body="bad gateway")] * 3)
    with pytest.raises(ProviderError, match="HTTP 502 from OpenRouter") as info:
        async for _ in transport.stream_data(CHAT, BODY, auth(server), model=MODEL):
            pass
    assert info.value.attempts == 3 and len(server.requests) == 3


async def test_stream_stopped_early_releases_the_connection(server: FakeOpenRouter, transport: Transport) -> None:
    async with transport.stream_data(CHAT, BODY, auth(server), model=MODEL) as stream:
        async for _ in stream:
            break
    assert [raw async for raw in stream] == []  # closed: nothing more
    data, attempts = await post(transport, server)  # the pool still works
    assert attempts == 1 and "choices" in data


# --- pooling ---------------------------------------------------------------------------------------


async def test_one_pooled_client_and_connection_reuse(server: FakeOpenRouter, transport: Transport) -> None:
    client = transport.client
    for _ in range(3):
        await post(transport, server)
    async for _ in transport.stream_data(CHAT, BODY, auth(server), model=MODEL):
        pass
    await post(transport, server)
    assert transport.client is client
    ports = [request.connection for request in server.requests]
    assert len(ports) == 5 and len(set(ports)) == 1  # keep-alive: one TCP connection


# --- secrecy ---------------------------------------------------------------------------------------


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


async def test_the_key_is_in_no_log_record_and_no_exception(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    errors: list[BaseException] = []
    async with Transport(make_settings(server, timeout=0.2, max_attempts=2), base_delay=FAST) as transport:
        server.enqueue(
            Scripted(status=429, json=err(429)), Scripted(status=401, json=err(401, "No auth credentials found")),
            Scripted(close=True), Scripted(close=True),
            Scripted(delay=0.6), Scripted(delay=0.6),
            Scripted(status=503, body="down"), Scripted(status=503, body="down"),
            Scripted(sse=[chunk("x"), chunk("", error={"code": 429, "message": "slow"})]),
        )
        for _ in range(4):
            try:
                await post(transport, server)
            except APIError as post_error:
                errors.append(post_error)
        try:
            async for _ in transport.stream_data(CHAT, BODY, auth(server), model=MODEL):
                pass
        except APIError as stream_error:
            errors.append(stream_error)
    assert [type(e) for e in errors] == [AuthenticationError, ConnectionError, TimeoutError, ProviderError,
                                         RateLimitError]
    assert any(r.name == "openrouter_registry" and r.levelno == logging.WARNING for r in caplog.records)
    for record in caplog.records:
        assert KEY not in record.getMessage() and KEY not in repr(record.args)
    assert KEY not in caplog.text
    for raised in errors:
        for linked in _chain(raised):
            assert KEY not in str(linked) and KEY not in repr(linked) and KEY not in repr(vars(linked))
            assert not isinstance(linked, httpx.HTTPError)
    assert KEY not in repr(transport)
