"""Hostile and broken answers through `openrouter_registry.replies.decode` and through the public calls.

Each row is one shape a broken or hostile upstream can send. The decode functions must turn every one
into our typed `InvalidResponseError` (or the typed error an error body names), or read it in a
documented, harmless way; no builtin exception (RecursionError, MemoryError, UnicodeDecodeError,
ValueError, TypeError, KeyError, AttributeError, OverflowError) may escape, and no wrong-typed field
may turn into a wrong value. The last tests send the worst shapes through `generate`, `stream` and
`embed` against the local server.
"""

from __future__ import annotations

from decimal import Decimal

import base64
import json
import math
import struct
from typing import Any

import pytest

from openrouter_registry import (
    APIError,
    InvalidResponseError,
    BadRequestError,
    ModerationError,
    OpenRouterService,
    ProviderError,
    RateLimitError,
    Settings,
)
from openrouter_registry.replies.decode import (
    SSEDecoder,
    body_error,
    decode_chat,
    decode_chunk,
    decode_embeddings,
    error_for,
    loads_body,
    loads_chunk,
)
from openrouter_registry.models.modes import is_mode_refusal
from openrouter_registry.plugins.registry import Registry
from openrouter_registry.result import Usage, cost_from_api
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.http.transport import Transport

DEEP = 100_000  # far beyond any recursion limit
NEAR = 900  # just below CPython's default recursion limit: json.loads reads it


def chat(content: Any = "hi", **choice: Any) -> dict[str, Any]:
    return {"id": "gen-1", "model": "openai/gpt-4o", "choices": [{"message": {"content": content}, **choice}]}


# --- bodies that are not JSON, or not readable --------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty body"),
    ("keep-alive only", b"\n   \n  ", "empty body"),
    ("not utf-8", b'{"a": "\xff\xfe"}', "not UTF-8"),
    ("truncated", b'{"choices": [{"message": {"content": "hel', "not JSON"),
    ("html error page", b"<html><body><h1>502 Bad Gateway</h1></body></html>", "not JSON"),
    ("deep arrays", b'{"choices": ' + b"[" * DEEP + b"]" * DEEP + b"}", "nested too deep"),
    ("deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nested too deep"),
    ("unterminated deep", b"[" * DEEP, "nested too deep"),
    ("integer past the digit limit", b'{"usage": {"cost": ' + b"9" * 5000 + b"}}", "not JSON"),
    ("nul bytes", b"\x00" * 64, "not JSON"),
]


@pytest.mark.parametrize(("raw", "why"), [(raw, why) for _, raw, why in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES])
def test_unreadable_bodies_are_invalid_responses(raw: bytes, why: str) -> None:
    with pytest.raises(InvalidResponseError, match=why):
        loads_body(raw)
    if why != "not UTF-8":  # an SSE payload is already text
        with pytest.raises(InvalidResponseError):
            loads_chunk(raw.decode("utf-8"))


def test_a_body_nested_just_below_the_limit_decodes_and_is_no_chat_reply() -> None:
    body = loads_body('{"choices": ' + "[" * NEAR + "]" * NEAR + "}")
    with pytest.raises(InvalidResponseError, match="no choices"):
        decode_chat(body)


# --- chat bodies with wrong-typed fields ------------------------------------------------------------

INVALID_CHATS: list[tuple[str, Any, str]] = [
    ("body is a list", [chat()], "expected a JSON object"),
    ("body is a string", "hello", "expected a JSON object"),
    ("body is null", None, "expected a JSON object"),
    ("choices is an object", {"choices": {"0": {}}}, "no choices"),
    ("choices is empty", {"choices": []}, "no choices"),
    ("choice is a list", {"choices": [[{"message": {"content": "x"}}]]}, "no choices"),
    ("content is a number", chat(42), "message content is a number"),
    ("content is an object", chat({"text": "x"}), "message content is a object|message content is a object|object"),
    ("content is true", chat(True), "boolean"),
    ("message is a string", {"choices": [{"message": "hello"}]}, "message is a string"),
    ("message is a list", {"choices": [{"message": ["hello"]}]}, "message is a array"),
    ("legacy text is a number", {"choices": [{"text": 7}]}, "choice text is a number"),
    ("choice without a message", {"choices": [{"finish_reason": "stop"}]}, "without a message"),
    ("message is null", {"choices": [{"message": None, "finish_reason": "stop"}]}, "without a message"),
    ("finish_reason is a number", chat("x", finish_reason=1), "finish_reason is a number"),
    ("finish_reason is an object", chat("x", finish_reason={"type": "stop"}), "finish_reason is a object"),
]


@pytest.mark.parametrize(("body", "why"), [(b, w) for _, b, w in INVALID_CHATS], ids=[n for n, _, _ in INVALID_CHATS])
def test_wrong_typed_chat_fields_are_invalid_responses(body: Any, why: str) -> None:
    with pytest.raises(InvalidResponseError, match=why):
        decode_chat(body)


READABLE_CHATS: list[tuple[str, Any, str, str | None]] = [
    ("null content", chat(None, finish_reason="stop"), "", "stop"),
    ("parts with an image", chat([{"type": "image_url", "image_url": {}}, {"type": "text", "text": "a"}]), "a", None),
    ("parts of odd types are skipped", chat([1, None, {"type": "text", "text": 5}, {"text": "b"}]), "b", None),
    ("lone surrogate becomes U+FFFD", json.loads('{"choices":[{"message":{"content":"a\\ud800b"}}]}'), "a\ufffdb", None),
    ("surrogate pair stays", json.loads('{"choices":[{"message":{"content":"\\ud83d\\ude00"}}]}'), "\U0001f600", None),
]


@pytest.mark.parametrize(
    ("body", "text", "finish"), [(b, t, f) for _, b, t, f in READABLE_CHATS], ids=[n for n, *_ in READABLE_CHATS]
)
def test_odd_but_readable_chat_bodies(body: Any, text: str, finish: str | None) -> None:
    reply = decode_chat(body)
    assert (reply.text, reply.finish_reason) == (text, finish)
    reply.text.encode("utf-8")  # always encodable: a re-ask can send it back


def test_labels_of_the_wrong_type_are_dropped_not_kept() -> None:
    body = {"id": 12, "model": ["x"], "provider": {"name": "p"}, "choices": [{"message": {"content": "ok"}}]}
    reply = decode_chat(body)
    assert (reply.generation_id, reply.model, reply.provider) == (None, None, None)
    surrogate = json.loads('{"id": "gen-\\udfff", "choices": [{"message": {"content": "ok"}}]}')
    assert decode_chat(surrogate).generation_id == "gen-\ufffd"


# --- usage and cost --------------------------------------------------------------------------------

USAGES: list[tuple[str, Any, Usage]] = [
    ("not an object", [1, 2], Usage()),
    ("strings", {"prompt_tokens": "20", "completion_tokens": "x"}, Usage()),
    ("negative", {"prompt_tokens": -5, "completion_tokens": 3}, Usage(completion_tokens=3, total_tokens=3)),
    ("integral floats", {"prompt_tokens": 20.0, "completion_tokens": 1.5}, Usage(prompt_tokens=20, total_tokens=20)),
    ("booleans", {"prompt_tokens": True, "total_tokens": False}, Usage()),
    ("absurdly large", {"prompt_tokens": 10**30, "completion_tokens": 1}, Usage(completion_tokens=1, total_tokens=1)),
    ("non-finite", {"prompt_tokens": math.inf, "completion_tokens": math.nan}, Usage()),
    ("details of the wrong type", {"prompt_tokens": 1, "prompt_tokens_details": [5], "completion_tokens_details": "x"},
     Usage(prompt_tokens=1, total_tokens=1)),
]


@pytest.mark.parametrize(("usage", "expected"), [(u, e) for _, u, e in USAGES], ids=[n for n, _, _ in USAGES])
def test_usage_reads_only_real_counts(usage: Any, expected: Usage) -> None:
    assert Usage.from_api(usage) == expected
    assert decode_chat({**chat(), "usage": usage}).usage == expected


COSTS: list[tuple[str, Any, Decimal | None]] = [  # money is exact: a Decimal of the digits sent
    ("number", 0.0001, Decimal("0.0001")),
    ("numeric string", "0.25", Decimal("0.25")),
    ("zero", 0, Decimal(0)),
    ("the largest cost taken (MAX_REPLY_COST)", "1000000", Decimal("1000000")),
    ("beyond MAX_REPLY_COST: not a price anyone was billed", "1e308", None),
    ("negative", -1, None),
    ("NaN", math.nan, None),
    ("infinite", math.inf, None),
    ("infinite string", "1e999", None),
    ("huge integer", 10**400, None),
    ("word", "free", None),
    ("very long string", "1" * 10_000, None),
    ("boolean", True, None),
    ("object", {"usd": 1}, None),
]


@pytest.mark.parametrize(("cost", "expected"), [(c, e) for _, c, e in COSTS], ids=[n for n, _, _ in COSTS])
def test_cost_is_a_finite_non_negative_number_or_none(cost: Any, expected: Decimal | None) -> None:
    assert cost_from_api({"cost": cost}) == expected
    assert decode_chat({**chat(), "usage": {"cost": cost}}).cost == expected


# --- error bodies ----------------------------------------------------------------------------------

ERRORS: list[tuple[str, int, Any, type[APIError], str]] = [
    ("message is a number", 429, {"error": {"message": 12, "code": 429}}, RateLimitError, "12"),
    ("message is an object", 500, {"error": {"message": {"detail": "boom"}}}, ProviderError, "boom"),
    ("message is deep", 500, {"error": {"message": json.loads("[" * NEAR + "]" * NEAR)}}, ProviderError, "HTTP 500"),
    ("message is huge", 500, {"error": {"message": "x" * 1_000_000}}, ProviderError, "x…"),
    ("code is a superscript digit", 400, {"error": {"message": "m", "code": "²"}}, BadRequestError, "status 400"),
    ("code is a long digit string", 400, {"error": {"message": "m", "code": "9" * 5000}}, BadRequestError, "status 400"),
    ("code is a float", 400, {"error": {"message": "m", "code": 429.5}}, BadRequestError, "status 400"),
    ("raw is deep JSON text", 502, {"error": {"message": "m", "metadata": {"raw": "[" * DEEP}}}, ProviderError, "m"),
    ("raw is huge JSON text", 502, {"error": {"message": "m", "metadata": {"raw": "{" + " " * 10**6}}}, ProviderError, "m"),
    ("metadata is a list", 502, {"error": {"message": "m", "metadata": [1]}}, ProviderError, "m"),
    ("error is a list", 502, {"error": ["x"]}, ProviderError, "HTTP 502"),
    ("error is a number", 503, {"error": 5}, ProviderError, "HTTP 503"),
    ("moderation reasons is a number", 403, {"error": {"message": "flagged", "metadata": {"reasons": 5}}},
     ModerationError, "flagged"),
    ("moderation reasons is deep", 403,
     {"error": {"message": "flagged", "metadata": {"reasons": json.loads("[" * NEAR + "]" * NEAR)}}},
     ModerationError, "flagged"),
    ("moderation flagged_input is an object", 403,
     {"error": {"message": "flagged", "metadata": {"flagged_input": {"a": 1}}}}, ModerationError, "flagged"),
]


@pytest.mark.parametrize(
    ("status", "body", "kind", "shown"), [(s, b, k, m) for _, s, b, k, m in ERRORS], ids=[n for n, *_ in ERRORS]
)
def test_error_bodies_of_any_shape_give_their_typed_error(status: int, body: Any, kind: type[APIError], shown: str) -> None:
    error = error_for(status, body, model="openai/gpt-4o")
    assert type(error) is kind
    text = str(error)
    assert shown in text and len(text) < 2000
    is_mode_refusal(error)  # walks the metadata: must not recurse without bound
    json.dumps(error.metadata)
    if isinstance(error, ModerationError):
        assert all(isinstance(r, str) for r in error.reasons)
        assert error.flagged_input is None or isinstance(error.flagged_input, str)


def test_error_metadata_is_a_bounded_copy() -> None:
    deep: Any = "bottom"
    for _ in range(NEAR):
        deep = {"k": deep}
    wide = {str(i): list(range(1000)) for i in range(1000)}
    error = error_for(502, {"error": {"message": "m", "metadata": {"deep": deep, "wide": wide, "s": "y" * 10**6}}},
                      model=None)
    text = json.dumps(error.metadata, ensure_ascii=False)
    assert len(text) < 50_000 and "…" in text


def test_error_inside_a_200_with_wrong_typed_parts() -> None:
    choice_error = {"choices": [{"finish_reason": "error", "error": ["not", "an", "object"]}]}
    error = body_error(choice_error, model="m")
    assert isinstance(error, ProviderError) and error.status == 502
    assert body_error({"choices": [{"finish_reason": "error", "error": {"code": "429", "message": 3}}]},
                      model="m").status == 429  # type: ignore[union-attr]


# --- stream chunks ---------------------------------------------------------------------------------

INVALID_CHUNKS: list[tuple[str, Any, str]] = [
    ("chunk is a list", [1], "expected a JSON object"),
    ("delta is a string", {"choices": [{"delta": "hi"}]}, "delta is a string"),
    ("delta content is a number", {"choices": [{"delta": {"content": 5}}]}, "delta content is a number"),
    ("finish_reason is a list", {"choices": [{"delta": {}, "finish_reason": ["stop"]}]}, "finish_reason is a array"),
]


@pytest.mark.parametrize(("chunk", "why"), [(c, w) for _, c, w in INVALID_CHUNKS], ids=[n for n, _, _ in INVALID_CHUNKS])
def test_wrong_typed_chunks_are_invalid_responses(chunk: Any, why: str) -> None:
    with pytest.raises(InvalidResponseError, match=why):
        decode_chunk(chunk)


def test_readable_odd_chunks() -> None:
    assert decode_chunk({"choices": []}).text == ""
    assert decode_chunk({"choices": [{"delta": None}]}).text == ""
    usage_chunk = decode_chunk({"choices": [], "usage": {"prompt_tokens": "x", "cost": "NaN"}})
    assert usage_chunk.usage == Usage() and usage_chunk.cost is None
    assert decode_chunk(json.loads('{"choices":[{"delta":{"content":"\\udc80"}}]}')).text == "\ufffd"


def test_an_event_stream_that_ends_before_done_is_an_invalid_response() -> None:
    decoder = SSEDecoder()
    assert decoder.feed('data: {"choices": []}') is None and decoder.feed("") == '{"choices": []}'
    with pytest.raises(InvalidResponseError, match=r"ended before \[DONE\]"):
        decoder.flush()
    pending = SSEDecoder()
    pending.feed('data: {"error": {"code": 502}}')
    assert pending.flush() == '{"error": {"code": 502}}'  # a last event without its blank line is still read
    finished = SSEDecoder()
    finished.feed("data: [DONE]"), finished.feed("")
    assert finished.flush() is None
    assert SSEDecoder(require_done=False).flush() is None


# --- embeddings ------------------------------------------------------------------------------------


def embeddings(*items: Any) -> dict[str, Any]:
    return {"model": "m", "data": list(items)}


def b64(*values: float) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


INVALID_EMBEDDINGS: list[tuple[str, Any, str]] = [
    ("data is an object", {"data": {"0": [1.0]}}, "no embeddings"),
    ("item is a list", embeddings([1.0]), "item is not an object"),
    ("vector has a string", embeddings({"embedding": [1.0, "2"]}), "not a list of numbers"),
    ("vector is deep", embeddings({"embedding": json.loads("[" * NEAR + "]" * NEAR)}), "not a list of numbers"),
    ("vector has a huge integer", embeddings({"embedding": [10**400]}), "non-finite"),
    ("vector has NaN", embeddings({"embedding": [math.nan]}), "non-finite"),
    ("vector has infinity", embeddings({"embedding": [1e999]}), "non-finite"),
    ("base64 NaN", embeddings({"embedding": b64(math.nan)}), "non-finite"),
    ("base64 not base64", embeddings({"embedding": "!!!"}), "not valid base64"),
    ("base64 odd length", embeddings({"embedding": base64.b64encode(b"abc").decode()}), "not float32"),
    ("index is a string", embeddings({"index": "0", "embedding": [1.0]}), "index is not an integer"),
    ("index repeated", embeddings({"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}), "indexes"),
    ("index out of range", embeddings({"index": 5, "embedding": [1.0]}), "indexes"),
    ("index negative", embeddings({"index": -1, "embedding": [1.0]}), "indexes"),
]


@pytest.mark.parametrize(("body", "why"), [(b, w) for _, b, w in INVALID_EMBEDDINGS], ids=[n for n, _, _ in INVALID_EMBEDDINGS])
def test_broken_embeddings_are_invalid_responses(body: Any, why: str) -> None:
    with pytest.raises(InvalidResponseError, match=why):
        decode_embeddings(body)


def test_embeddings_are_ordered_by_index_and_a_null_index_is_the_position() -> None:
    shuffled = decode_embeddings(embeddings({"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}))
    assert shuffled.vectors == [[1.0], [2.0]]
    positional = decode_embeddings(embeddings({"index": None, "embedding": [1.0]}, {"embedding": b64(2.0)}))
    assert positional.vectors == [[1.0], [2.0]]


# --- through the public calls ----------------------------------------------------------------------

MODEL = "openai/gpt-4o"
DEEP_BODY = b'{"choices": ' + b"[" * DEEP + b"]" * DEEP + b"}"


def service(server: FakeOpenRouter) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, max_attempts=2)
    # no backoff wait between the two attempts: the answers here are scripted, not rate limits
    return OpenRouterService(settings, registry=Registry(environ={}), transport=Transport(settings, base_delay=0.001, max_delay=0.001))


HOSTILE_ANSWERS: list[tuple[str, Scripted]] = [
    ("deep body", Scripted(body=DEEP_BODY, headers={"Content-Type": "application/json"})),
    ("deep error body", Scripted(status=500, body=DEEP_BODY)),
    ("not utf-8", Scripted(body=b'{"choices": "\xff"}')),
    ("html page", Scripted(status=502, body=b"<html>Bad gateway</html>", headers={"Content-Type": "text/html"})),
    ("content is a number", Scripted(json=chat(42))),
    ("embedding of NaN", Scripted(body=b'{"data": [{"index": 0, "embedding": [NaN]}]}')),
]


@pytest.mark.parametrize("answer", [a for _, a in HOSTILE_ANSWERS], ids=[n for n, _ in HOSTILE_ANSWERS])
async def test_hostile_answers_reach_generate_and_embed_as_typed_errors(answer: Scripted) -> None:
    with FakeOpenRouter() as server:
        async with service(server) as s:
            server.enqueue(answer, answer)
            with pytest.raises(ProviderError) as generated:
                await s.generate("hi", model=MODEL)
            assert generated.value.attempts == 2  # transient: retried once, then given up
            server.enqueue(answer, answer)
            with pytest.raises(ProviderError):
                await s.embed("hi")
            assert server.pending == 0
            assert (await s.generate("hi", model=MODEL)).text  # the service still works afterwards


HOSTILE_EVENTS: list[tuple[str, str, str]] = [
    ("deep event", "[" * DEEP, "nested too deep"),
    ("deep event just readable", "[" * NEAR + "]" * NEAR, "not a JSON object"),
    ("choices is a string", '{"choices": "x"}', "choices"),
    ("choice is a number", '{"choices": [5]}', "choices"),
    ("delta is a list", '{"choices": [{"delta": [1]}]}', "delta is a array"),
    ("delta content is an object", '{"choices": [{"delta": {"content": {"a": 1}}}]}', "delta content"),
    ("finish_reason is a number", '{"choices": [{"delta": {}, "finish_reason": 0}]}', "finish_reason"),
    ("not JSON", "{'single': 'quotes'}", "not JSON"),
]


@pytest.mark.parametrize(("event", "why"), [(e, w) for _, e, w in HOSTILE_EVENTS], ids=[n for n, _, _ in HOSTILE_EVENTS])
async def test_hostile_stream_events_are_invalid_responses(event: str, why: str) -> None:
    good = '{"choices": [{"delta": {"content": "Hel"}}]}'
    with FakeOpenRouter() as server:
        async with service(server) as s:
            server.enqueue(Scripted(sse=[f"data: {good}\n\n", f"data: {event}\n\n", "data: [DONE]\n\n"]))
            stream = s.stream("hi", model=MODEL)
            with pytest.raises(InvalidResponseError, match=why):
                await stream.collect()
            assert stream.text == "Hel" and stream.finish_reason == "error"
            assert (await s.stream("hi", model=MODEL).collect())  # the service still works afterwards


# --- property: no decode function lets anything but an APIError out ------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(),
              st.text(st.characters(codec=None), max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["choices", "message", "delta", "content", "error", "code",
                                                             "message", "metadata", "raw", "reasons", "usage", "cost",
                                                             "data", "embedding", "index", "finish_reason", "id",
                                                             "provider", "model", "text", "type"]), inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(body=ANY_JSON, status=st.integers(min_value=100, max_value=599),
       headers=st.dictionaries(st.sampled_from(["Retry-After", "retry-after-ms", "X-Provider-Name", "X-Generation-Id"]),
                               st.text(max_size=40), max_size=3))
def test_decoders_raise_only_api_errors_on_any_json(body: Any, status: int, headers: dict[str, str]) -> None:
    from openrouter_registry.replies.decode import retry_after_seconds

    for decode in (decode_chat, decode_chunk, decode_embeddings):
        try:
            decode(body)
        except APIError as error:
            str(error)
    error = error_for(status, body, model="m", headers=headers)
    assert isinstance(error, APIError) and str(error)
    json.dumps(error.metadata)
    is_mode_refusal(error)
    found = body_error(body, model="m", headers=headers)
    assert found is None or isinstance(found, APIError)
    wait = retry_after_seconds(headers)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), st.text(st.characters(codec=None), max_size=200)))
def test_loads_body_raises_only_invalid_response_errors(raw: bytes | str) -> None:
    try:
        loads_body(raw)
    except InvalidResponseError:
        pass
