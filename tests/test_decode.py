"""`openrouter_registry.replies.decode`: bodies, typed errors, chat replies, SSE and embeddings.

The bodies below are copied byte for byte from the real recordings in
/work/shared/reference/recordings (file named beside each); `test_every_recording_decodes` also
sweeps those files directly when they are present.
"""

from __future__ import annotations

from decimal import Decimal

import base64
import json
import struct
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.replies.decode import (
    EmbeddingReply,
    InvalidResponseError,
    SSEDecoder,
    StreamChunk,
    body_error,
    decode_chat,
    decode_chunk,
    decode_embeddings,
    error_for,
    is_transient,
    iter_sse_data,
    loads_body,
    loads_chunk,
    retry_after_seconds,
)
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
from openrouter_registry.result import Usage

RECORDINGS = Path("/work/shared/reference/recordings")

# ruby_llm__claude-3.5-haiku-basic__2025-09.yml (keep-alive padding before the JSON)
HAIKU_BASIC = (
    '\n         \n{"id":"gen-1758725659-rK5yU7xPbTx7T6K3tyEv","provider":"Anthropic","model":"anthropic/claude-3.5-haiku",'
    '"object":"chat.completion","created":1758725659,"choices":[{"logprobs":null,"finish_reason":"stop",'
    '"native_finish_reason":"stop","index":0,"message":{"role":"assistant","content":"4","refusal":null,'
    '"reasoning":null}}],"usage":{"prompt_tokens":16,"completion_tokens":5,"total_tokens":21}}'
)
# raix__llama-3-8b-free-lepton__2024-11.yml (old usage: no cost, no details), padding shortened
LEPTON = (
    '\n         \n\n         \n{"id":"gen-1731288650-XUq3WyEJOxhengNF9FHk","provider":"Lepton",'
    '"model":"meta-llama/llama-3-8b-instruct","object":"chat.completion","created":1731288650,"choices":'
    '[{"logprobs":null,"finish_reason":"stop","index":0,"message":{"role":"assistant","content":'
    '"Yes, Ruby on Rails is a web application framework.","refusal":""}}],"usage":{"prompt_tokens":45,'
    '"completion_tokens":25,"total_tokens":70}}'
)
# openrouter-api.md, response as recorded from the real API (2025+: cost and *_details)
GPT4O_MINI: dict[str, Any] = {
    "id": "gen-1764926476-0N0195qHFzGljvYKVijc", "provider": "OpenAI", "model": "openai/gpt-4o-mini",
    "object": "chat.completion", "created": 1764926476,
    "choices": [{"logprobs": None, "finish_reason": "stop", "native_finish_reason": "stop", "index": 0,
                 "message": {"role": "assistant", "content": "...", "refusal": None, "reasoning": None}}],
    "system_fingerprint": "fp_aa07c96156",
    "usage": {"prompt_tokens": 29, "completion_tokens": 33, "total_tokens": 62, "cost": 0.00002415,
              "is_byok": False, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
              "cost_details": {"upstream_inference_cost": None},
              "completion_tokens_details": {"reasoning_tokens": 7}},
}

# ruby_llm__401-no-auth-credentials__2025-09.yml / ruby_llm__401-missing-authentication-header__2026-06.yml
E401 = '{"error":{"message":"No auth credentials found","code":401}}'
E401_HEADER = '{"error":{"message":"Missing Authentication header","code":401}}'
# issue-report__402-insufficient-credits__body-only__2026-04.json
E402 = (
    '{"error":{"message":"This request requires more credits, or fewer max_tokens. You requested up to 65536 '
    'tokens, but can only afford 10114. To increase, visit https://openrouter.ai/settings/credits and upgrade to '
    'a paid account","code":402,"metadata":{"provider_name":null}},"user_id":"user_"}'
)
# openrouter-api.md, errors table: 403 carries metadata.reasons and metadata.flagged_input
E403 = {"error": {"code": 403, "message": "Input was flagged by moderation",
                  "metadata": {"reasons": ["violence", "harassment"], "flagged_input": "kill the ...",
                               "provider_name": "OpenAI", "model_slug": "openai/gpt-4o"}}}
# raix__404-no-endpoints-llama-3-8b-free__2025-04.yml
E404 = (
    '{"error":{"message":"No endpoints found for meta-llama/llama-3-8b-instruct:free.","code":404},'
    '"user_id":"user_2eKz796ioaKIH2YpbgwvQVnUCGx"}'
)
# pydantic-ai__429-upstream-rate-limited-gemini-free__2025-11.yaml (parsed_body, as JSON)
E429 = {"error": {"code": 429, "message": "Provider returned error", "metadata": {
    "provider_name": "Google",
    "raw": "google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add "
           "your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations"}},
    "user_id": "user_2wT5ElBE4Es3R4QrNLpZiXICmQP"}
# pydantic-ai__http200-with-429-error-body.yaml (HTTP 200)
OK_WITH_429 = {"error": {"code": 429, "message": "Provider returned error", "metadata": {
    "provider_name": "Google",
    "raw": "google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream; please retry shortly."}},
    "user_id": "user_2uRh0l3Yi3hdjBArTOSmLXWJBc4"}
# pydantic-ai__400-provider-returned-error-o3__2026-05.yaml
E400_O3 = {"error": {"code": 400, "message": "Provider returned error", "metadata": {
    "is_byok": False, "provider_name": "OpenAI",
    "raw": "{\n  \"error\": {\n    \"message\": \"Unsupported value: 'none' is not supported with the "
           "'o3-2025-04-16' model. Supported values are: 'low', 'medium', and 'high'.\",\n    \"type\": "
           "\"invalid_request_error\",\n    \"param\": \"reasoning.effort\",\n    \"code\": \"unsupported_value\"\n  }\n}"}},
    "user_id": "user_3DfsYqCbMj02iPyZE8iAToOBgKo"}
# activeagent__400-provider-returned-error-azure-gpt-4o__2025-08.yml
E400_AZURE = (
    '{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\\n  \\"error\\": {\\n    '
    '\\"message\\": \\"Missing required parameter: \'messages[1].content[1].file.file_id\'.\\",\\n    \\"type\\": '
    '\\"invalid_request_error\\",\\n    \\"param\\": \\"messages[1].content[1].file.file_id\\",\\n    \\"code\\": '
    '\\"missing_required_parameter\\"\\n  }\\n}","provider_name":"Azure"}},"user_id":"user_2eQUOcQCBVawo2tt464cvhH6ned"}'
)
# ruby_llm__400-context-length-exceeded__2025-09.yml
E400_CONTEXT = (
    '{"error":{"message":"This endpoint\'s maximum context length is 200000 tokens. However, you requested about '
    '2500021 tokens (2500021 of text input). Please reduce the length of either one, or use the \\"middle-out\\" '
    'transform to compress your prompt automatically.","code":400,"metadata":{"provider_name":null}}}'
)

# llm-openrouter__models-list+gpt-4o-stream__2024-11.yaml: a comment between chunks, usage without cost
GPT4O_STREAM_2024 = (
    'data: {"id":"gen-1731200404-o7j2EtP4m5Ti0YjZFoLz","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1731200404,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}],"system_fingerprint":"fp_45cf54deae"}\n\n'  # noqa: E501
    'data: {"id":"gen-1731200404-o7j2EtP4m5Ti0YjZFoLz","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1731200404,"choices":[{"index":0,"delta":{"role":"assistant","content":"G"},"finish_reason":null,"logprobs":null}],"system_fingerprint":"fp_45cf54deae"}\n\n'  # noqa: E501
    'data: {"id":"gen-1731200404-o7j2EtP4m5Ti0YjZFoLz","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1731200404,"choices":[{"index":0,"delta":{"role":"assistant","content":"ully"},"finish_reason":null,"logprobs":null}],"system_fingerprint":"fp_45cf54deae"}\n\n'  # noqa: E501
    'data: {"id":"gen-1731200404-o7j2EtP4m5Ti0YjZFoLz","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1731200404,"choices":[{"index":0,"delta":{"role":"assistant","content":"ipper"},"finish_reason":null,"logprobs":null}],"system_fingerprint":"fp_45cf54deae"}\n\n'  # noqa: E501
    'data: {"id":"gen-1731200404-o7j2EtP4m5Ti0YjZFoLz","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1731200404,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","logprobs":null}],"system_fingerprint":"fp_45cf54deae"}\n\n'  # noqa: E501
    ': OPENROUTER PROCESSING\n\n'
    'data: {"id":"gen-1731200404-o7j2EtP4m5Ti0YjZFoLz","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1731200404,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}],"usage":{"prompt_tokens":17,"completion_tokens":5,"total_tokens":22}}\n\n'  # noqa: E501
    'data: [DONE]\n\n'
)
# pydantic-ai__stream-mid-stream-error-chunk-minimax__2025-11.yaml: the last data chunk
MINIMAX_ERROR_CHUNK = (
    '{"id":"gen-1762179802-UN8pkJI4AGZvryk0kFnb","provider":"Minimax","error":{"code":400,"message":"Token limit '
    'reached"},"model":"minimax/minimax-m2:free","object":"chat.completion.chunk","created":1762179802,"choices":'
    '[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"native_finish_reason":null,'
    '"logprobs":null}],"usage":{"prompt_tokens":43,"completion_tokens":10,"total_tokens":53,"cost":0,"is_byok":false,'
    '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"cost_details":{"upstream_inference_cost":null,'
    '"upstream_inference_prompt_cost":0,"upstream_inference_completions_cost":0},"completion_tokens_details":'
    '{"reasoning_tokens":11,"image_tokens":0}}}'
)


def _embeddings_body(order: list[int]) -> str:
    """ruby_llm__embeddings-text-embedding-3-small-multi__2026-08.yml, vectors shortened to 3 numbers."""
    vectors = {0: [-0.0137, 0.0057, -0.0137], 1: [0.1, 0.2, 0.3], 2: [0.4, 0.5, 0.6]}
    data = [{"object": "embedding", "embedding": vectors[i], "index": i} for i in order]
    return "\n         \n" + json.dumps({
        "object": "list", "data": data, "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 3, "total_tokens": 3, "cost": 6e-08, "is_byok": False,
                  "cost_details": {"upstream_inference_cost": 6e-08}},
        "provider": "OpenAI", "id": "gen-emb-1787150071-alSj98b6YZi7IrVS68pQ"})


# --- loads_body ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [HAIKU_BASIC, HAIKU_BASIC.encode(), "\ufeff" + HAIKU_BASIC, LEPTON])
def test_loads_body_skips_keep_alive_padding(raw: str | bytes) -> None:
    assert loads_body(raw)["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "not JSON"),
        ("\n   \n", "empty body"),
        (b"", "empty body"),
        (b"\xff\xfe{}", "not UTF-8"),
        ('{"id": "gen-1", "choices": [', "not JSON"),
    ],
)
def test_loads_body_rejects_non_json_as_transient_provider_error(raw: str | bytes, fragment: str) -> None:
    with pytest.raises(InvalidResponseError, match=fragment) as info:
        loads_body(raw)
    assert isinstance(info.value, ProviderError)
    assert is_transient(info.value)


# --- error_for -------------------------------------------------------------------------------------


def _body(raw: str | dict[str, Any]) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


@pytest.mark.parametrize(
    ("status", "raw", "cls", "code", "fragments", "provider", "transient"),
    [
        (401, E401, AuthenticationError, 401, ["No auth credentials found", "OPENROUTER_API_KEY"], None, False),
        (401, E401_HEADER, AuthenticationError, 401, ["Missing Authentication header"], None, False),
        (402, E402, InsufficientCreditsError, 402, ["can only afford 10114", "settings/credits"], None, False),
        (403, E403, ModerationError, 403, ["flagged by moderation", "Reasons: violence, harassment"], "OpenAI", False),
        (404, E404, ModelNotAvailableError, 404, ["No endpoints found for meta-llama/llama-3-8b-instruct:free"], None,
         False),
        (429, E429, RateLimitError, 429,
         ["OpenRouter API rate limit exceeded", "Provider returned error: google/gemini-2.0-flash-exp:free is "
          "temporarily rate-limited upstream"], "Google", True),
        (400, E400_O3, BadRequestError, 400,
         ["Provider returned error: Unsupported value: 'none' is not supported with the 'o3-2025-04-16' model"],
         "OpenAI", False),
        (400, E400_AZURE, BadRequestError, 400,
         ["Provider returned error: Missing required parameter: 'messages[1].content[1].file.file_id'"], "Azure",
         False),
        (400, E400_CONTEXT, BadRequestError, 400, ["maximum context length is 200000 tokens", '"middle-out"'], None,
         False),
        (408, {"error": {"message": "Request timed out", "code": 408}}, TimeoutError, 408, ["Request timed out"], None,
         True),
    ],
)
def test_error_for_maps_recorded_error_bodies(
    status: int, raw: str | dict[str, Any], cls: type[APIError], code: int, fragments: list[str],
    provider: str | None, transient: bool,
) -> None:
    error = error_for(status, _body(raw), model="some/model")
    assert type(error) is cls
    assert (error.status, error.provider, error.model) == (code, provider, "some/model")
    for fragment in fragments:
        assert fragment in str(error)
    assert is_transient(error) is transient


def test_moderation_error_carries_reasons_and_flagged_input() -> None:
    error = error_for(403, E403, model="openai/gpt-4o")
    assert isinstance(error, ModerationError)
    assert error.reasons == ["violence", "harassment"]
    assert error.flagged_input == "kill the ..."
    assert error.metadata["model_slug"] == "openai/gpt-4o"


@pytest.mark.parametrize(
    ("code", "cls", "status"),
    [
        (429, RateLimitError, 429),
        ("429", RateLimitError, 429),
        (408, TimeoutError, 408),
        ("503", ProviderError, 503),
        (524, ProviderError, 524),
        (529, ProviderError, 529),
        (400, BadRequestError, 400),
        ("unsupported_value", BadRequestError, 400),
        (401, BadRequestError, 400),  # only transient codes override the HTTP 400
        (None, BadRequestError, 400),
    ],
)
def test_400_with_a_transient_error_code_maps_by_that_code(code: Any, cls: type[APIError], status: int) -> None:
    error = error_for(400, {"error": {"message": "Provider returned error", "code": code}}, model=None)
    assert (type(error), error.status) == (cls, status)
    assert is_transient(error) is (status != 400)


@pytest.mark.parametrize("status", [500, 502, 503, 524, 529])
def test_5xx_is_a_transient_provider_error(status: int) -> None:
    error = error_for(status, {"error": {"message": "Upstream down", "code": status}}, model="m")
    assert type(error) is ProviderError and error.status == status and is_transient(error)


@pytest.mark.parametrize("status", [405, 409, 418, 422, 301])
def test_other_statuses_are_plain_non_transient_api_errors(status: int) -> None:
    error = error_for(status, {"error": {"message": "odd", "code": status}}, model="m")
    assert type(error) is APIError and not is_transient(error)


@pytest.mark.parametrize("body", [None, "<html>bad gateway</html>", [1, 2], {}, {"unrelated": True}, {"error": {}}])
def test_error_for_without_a_usable_error_object_says_http_status(body: Any) -> None:
    error = error_for(502, body, model="m")
    assert type(error) is ProviderError
    assert str(error).startswith("HTTP 502 from OpenRouter.")


def test_error_for_reads_a_bare_string_error_and_a_non_string_message() -> None:
    assert error_for(401, {"error": "Unauthorized"}, model=None).api_message == "Unauthorized"
    assert "123" in error_for(400, {"error": {"message": 123}}, model=None).api_message


def test_generation_id_from_body_or_header_case_insensitively() -> None:
    with_id = error_for(500, {"id": "gen-body", "error": {"message": "x", "code": 500}}, model=None,
                        headers={"X-Generation-Id": "gen-header"})
    assert with_id.generation_id == "gen-body"
    from_header = error_for(500, {"error": {"message": "x", "code": 500}}, model=None,
                            headers={"x-generation-id": "gen-header"})
    assert from_header.generation_id == "gen-header"
    assert "generation gen-header" in str(from_header)


def test_provider_header_is_a_fallback_for_metadata_provider_name() -> None:
    error = error_for(503, {"error": {"message": "x", "code": 503}}, model=None, headers={"X-Provider-Name": "Azure"})
    assert error.provider == "Azure"
    assert error_for(503, E429, model=None, headers={"X-Provider-Name": "Azure"}).provider == "Google"


def test_raw_detail_is_shortened_and_not_repeated() -> None:
    long_raw = {"error": {"message": "Provider returned error", "code": 502, "metadata": {"raw": "x" * 5000}}}
    error = error_for(502, long_raw, model=None)
    assert len(error.api_message) < 260 and error.api_message.endswith("…")
    same = {"error": {"message": "Boom happened", "code": 502, "metadata": {"raw": "boom happened"}}}
    assert error_for(502, same, model=None).api_message == "Boom happened"
    plain = {"error": {"message": "Provider returned error", "code": 502, "metadata": {"raw": {"detail": "gpu oom"}}}}
    assert error_for(502, plain, model=None).api_message == "Provider returned error: gpu oom"


def test_attempts_are_in_the_error_and_its_message() -> None:
    error = error_for(503, {"error": {"message": "down", "code": 503}}, model="m", attempts=3)
    assert error.attempts == 3 and "after 3 attempts" in str(error)


# --- body_error ------------------------------------------------------------------------------------


def test_http_200_with_recorded_429_error_body() -> None:
    error = body_error(OK_WITH_429, model="google/gemini-2.0-flash-exp:free")
    assert isinstance(error, RateLimitError)
    assert (error.status, error.provider) == (429, "Google")
    assert "temporarily rate-limited upstream" in str(error)
    assert is_transient(error)


@pytest.mark.parametrize(
    ("inner", "cls", "status", "transient"),
    [
        ({"code": 502, "message": "Upstream error"}, ProviderError, 502, True),
        ({"code": "429", "message": "Rate limited"}, RateLimitError, 429, True),
        ({"code": 400, "message": "Bad content"}, BadRequestError, 400, False),
        ({"message": "no code"}, ProviderError, 502, True),
        (None, ProviderError, 502, True),
    ],
)
def test_finish_reason_error_in_choices(inner: Any, cls: type[APIError], status: int, transient: bool) -> None:
    body: dict[str, Any] = {
        "id": "gen-9", "model": "openai/gpt-4o", "provider": "OpenAI",
        "choices": [{"index": 0, "finish_reason": "error", "message": {"role": "assistant", "content": "partial"}}],
    }
    if inner is not None:
        body["choices"][0]["error"] = inner
    error = body_error(body, model="requested/model")
    assert type(error) is cls
    assert error is not None and (error.status, error.generation_id, error.model) == (status, "gen-9", "openai/gpt-4o")
    assert is_transient(error) is transient


@pytest.mark.parametrize("body", [json.loads(HAIKU_BASIC), GPT4O_MINI, None, "text", [1], {"error": None}, {"error": {}}])
def test_body_error_is_none_for_success_and_non_error_bodies(body: Any) -> None:
    assert body_error(body, model="m") is None


def test_body_error_top_level_code_as_string_and_missing() -> None:
    error = body_error({"error": {"message": "Overloaded", "code": "529"}}, model="m", attempts=2)
    assert type(error) is ProviderError and error.status == 529 and error.attempts == 2
    no_code = body_error({"error": {"message": "Something failed"}}, model="m")
    assert type(no_code) is ProviderError and no_code.status == 502


# --- is_transient ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionError("down"), True),
        (TimeoutError("slow"), True),
        (InvalidResponseError("garbage"), True),
        (ProviderError("no status"), False),
        (APIError("x", status=429), True),
        (APIError("x", status=409), False),
        (BadRequestError("x", status=400), False),
    ],
)
def test_is_transient(error: APIError, transient: bool) -> None:
    assert is_transient(error) is transient


# --- retry_after_seconds ---------------------------------------------------------------------------

NOW = datetime(2025, 11, 3, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "1"}, 1.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 9.0),
        ({"Retry-After": "Mon, 03 Nov 2025 12:00:30 GMT"}, 30.0),
        ({"Retry-After": "Mon, 03 Nov 2025 11:59:00 GMT"}, 0.0),
        ({"Retry-After": "whenever"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str] | None, seconds: float | None) -> None:
    assert retry_after_seconds(headers, now=NOW) == seconds


# --- decode_chat -----------------------------------------------------------------------------------


def test_decode_chat_recorded_haiku_body() -> None:
    reply = decode_chat(loads_body(HAIKU_BASIC))
    assert (reply.text, reply.finish_reason, reply.model, reply.provider, reply.generation_id) == (
        "4", "stop", "anthropic/claude-3.5-haiku", "Anthropic", "gen-1758725659-rK5yU7xPbTx7T6K3tyEv")
    assert reply.usage == Usage(16, 5, 21) and reply.cost is None


def test_decode_chat_old_usage_without_cost() -> None:
    reply = decode_chat(loads_body(LEPTON))
    assert reply.text == "Yes, Ruby on Rails is a web application framework."
    assert (reply.usage.total_tokens, reply.cost, reply.provider) == (70, None, "Lepton")


def test_decode_chat_usage_details_and_cost() -> None:
    reply = decode_chat(GPT4O_MINI)
    assert reply.usage == Usage(29, 33, 62, cached_tokens=4, reasoning_tokens=7)
    assert reply.cost == Decimal("0.00002415")
    assert reply.raw is GPT4O_MINI


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (None, ""),
        ("plain", "plain"),
        ([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "b"}],
         "ab"),
        (["x", {"text": "y"}], "xy"),
    ],
)
def test_decode_chat_content_shapes(content: Any, text: str) -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    assert decode_chat(body).text == text


def test_decode_chat_tolerates_missing_usage_provider_and_message() -> None:
    reply = decode_chat({"choices": [{"text": "legacy"}]})
    assert (reply.text, reply.model, reply.provider, reply.generation_id, reply.finish_reason) == (
        "legacy", None, None, None, None)
    assert reply.usage == Usage() and reply.cost is None


@pytest.mark.parametrize("body", [{"id": "gen-1", "model": "m"}, {"choices": []}, {"choices": None}, {"choices": ["x"]}])
def test_decode_chat_without_choices(body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError, match="no choices in response"):
        decode_chat(body)


def test_decode_chat_raises_the_error_in_an_error_body() -> None:
    with pytest.raises(RateLimitError):
        decode_chat(OK_WITH_429)
    with pytest.raises(InvalidResponseError):
        decode_chat([1, 2])  # type: ignore[arg-type]


# --- SSE -------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_iter_sse_data_skips_comments_between_chunks_and_stops_at_done() -> None:
    payloads = list(iter_sse_data(_lines(GPT4O_STREAM_2024 + "data: {\"after\": \"done\"}\n\n")))
    assert len(payloads) == 6
    chunks = [decode_chunk(json.loads(p)) for p in payloads]
    assert "".join(c.text for c in chunks) == "Gullyipper"
    assert [c.finish_reason for c in chunks].count("stop") == 1
    assert chunks[-1].usage == Usage(17, 5, 22) and chunks[-1].cost is None
    assert all(c.provider == "OpenAI" and c.generation_id == "gen-1731200404-o7j2EtP4m5Ti0YjZFoLz" for c in chunks)


def test_sse_multi_line_data_other_fields_and_crlf() -> None:
    lines = [
        ": OPENROUTER PROCESSING", "",
        "event: message", "id: 7", "retry: 100",
        'data: {"a":', "data:  1}", "",  # two data lines are joined with \n; one leading space is dropped
        "data:{\"b\":2}\r", "\r",
        "data", "",  # a field with no colon: empty data, dispatched as ""
        "",
    ]
    assert list(iter_sse_data(lines)) == ['{"a":\n 1}', '{"b":2}', ""]


def test_sse_flushes_an_unterminated_last_event_and_decoder_state() -> None:
    assert list(iter_sse_data(['data: {"x": 1}'])) == ['{"x": 1}']
    decoder = SSEDecoder()
    assert decoder.feed("data: [DONE]") is None and decoder.feed("") is None
    assert decoder.done and decoder.feed("data: more") is None and decoder.feed("") is None


def test_decode_chunk_usage_on_the_finish_chunk() -> None:
    # ruby_llm__claude-haiku-4.5-stream__2026-06.yml: usage rides on the finish_reason chunk
    chunk = decode_chunk({
        "id": "gen-1780944361-X5HAtL0Z2NQp8nHAiT6F", "model": "anthropic/claude-4.5-haiku-20251001",
        "provider": "Amazon Bedrock",
        "choices": [{"index": 0, "delta": {"content": "", "role": "assistant"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 15, "completion_tokens": 9, "total_tokens": 24, "cost": 0.00006},
    })
    assert chunk == StreamChunk(text="", finish_reason="stop", usage=Usage(15, 9, 24), cost=Decimal("0.00006"),
                                model="anthropic/claude-4.5-haiku-20251001", provider="Amazon Bedrock",
                                generation_id="gen-1780944361-X5HAtL0Z2NQp8nHAiT6F")


def test_decode_chunk_usage_chunk_with_empty_choices_and_null_delta_content() -> None:
    chunk = decode_chunk({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "cost": "0.5"}})
    assert (chunk.text, chunk.finish_reason, chunk.usage, chunk.cost) == ("", None, Usage(1, 2, 3), 0.5)
    assert decode_chunk({"choices": [{"delta": {"content": None}}]}).usage is None


def test_decode_chunk_recorded_mid_stream_error_chunk_raises_typed_error() -> None:
    with pytest.raises(BadRequestError, match="Token limit reached") as info:
        decode_chunk(loads_chunk(MINIMAX_ERROR_CHUNK), attempts=2)
    error = info.value
    assert (error.status, error.model, error.provider, error.generation_id, error.attempts) == (
        400, "minimax/minimax-m2:free", "Minimax", "gen-1762179802-UN8pkJI4AGZvryk0kFnb", 2)


@pytest.mark.parametrize(
    ("chunk", "cls"),
    [
        ({"error": {"code": "502", "message": "Upstream died"}, "choices": []}, ProviderError),
        ({"choices": [{"delta": {"content": ""}, "finish_reason": "error",
                       "error": {"code": 429, "message": "Rate limited"}}]}, RateLimitError),
    ],
)
def test_decode_chunk_error_shapes(chunk: dict[str, Any], cls: type[APIError]) -> None:
    with pytest.raises(cls):
        decode_chunk(chunk)


def test_loads_chunk_rejects_non_objects() -> None:
    with pytest.raises(InvalidResponseError):
        loads_chunk("[1, 2]")
    with pytest.raises(InvalidResponseError):
        loads_chunk("{broken")


# --- embeddings ------------------------------------------------------------------------------------


def test_decode_embeddings_recorded_shape_in_index_order() -> None:
    reply = decode_embeddings(loads_body(_embeddings_body([2, 0, 1])))
    assert reply == EmbeddingReply(
        vectors=[[-0.0137, 0.0057, -0.0137], [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
        model="text-embedding-3-small", provider="OpenAI", generation_id="gen-emb-1787150071-alSj98b6YZi7IrVS68pQ",
        usage=Usage(3, 0, 3), cost=Decimal("6e-08"),
    )


def test_decode_embeddings_base64_and_missing_index() -> None:
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    reply = decode_embeddings({"data": [{"embedding": packed}, {"embedding": [1, 2]}]})
    assert reply.vectors == [[0.5, -1.0, 2.0], [1.0, 2.0]]
    assert reply.usage == Usage() and reply.cost is None and reply.model is None


@pytest.mark.parametrize("body", [{"data": []}, {"object": "list"}, {"data": None, "model": "m"}])
def test_decode_embeddings_without_vectors_is_transient(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidResponseError, match="no embeddings in response") as info:
        decode_embeddings(body)
    assert is_transient(info.value)


@pytest.mark.parametrize(
    "body", [{"data": [{"embedding": ["a"]}]}, {"data": ["x"]}, {"data": [{"embedding": "!!notbase64"}]},
             {"data": [{"embedding": base64.b64encode(b"abc").decode()}]}, "text"],
)
def test_decode_embeddings_rejects_malformed_vectors(body: Any) -> None:
    with pytest.raises(InvalidResponseError):
        decode_embeddings(body)


def test_decode_embeddings_raises_an_error_body() -> None:
    with pytest.raises(RateLimitError):
        decode_embeddings(OK_WITH_429)


# --- every recording -------------------------------------------------------------------------------


def _recorded_responses(path: Path) -> Iterator[tuple[str, int, str]]:
    """(uri, status, body text) for every interaction of a vcrpy / Ruby VCR / go-vcr file."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    class Loader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
        pass

    Loader.add_constructor("!binary", lambda loader, node: base64.b64decode(loader.construct_scalar(node)))
    document: Any = yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    for item in document.get("http_interactions") or document.get("interactions") or []:
        request, response = item["request"], item["response"]
        uri = request.get("uri") or request.get("url") or ""
        status = response["status"]["code"] if isinstance(response.get("status"), dict) else response["code"]
        if "parsed_body" in response:
            body: Any = json.dumps(response["parsed_body"])
        else:
            raw = response["body"]["string"] if isinstance(response["body"], dict) else response["body"]
            body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        yield uri, int(status), body


def _recordings() -> list[Path]:
    if not RECORDINGS.is_dir():
        return []
    return sorted(p for p in RECORDINGS.iterdir() if p.suffix in (".yml", ".yaml"))


@pytest.mark.skipif(not RECORDINGS.is_dir(), reason="reference recordings not present")
@pytest.mark.parametrize("path", _recordings(), ids=lambda p: p.name)
def test_every_recording_decodes(path: Path) -> None:
    checked = 0
    for uri, status, body in _recorded_responses(path):
        if "/chat/completions" in uri and status >= 400:
            mapped = error_for(status, loads_body(body), model="m")
            assert isinstance(mapped, APIError) and not str(mapped).startswith("HTTP ")
            assert is_transient(mapped) is (status in (408, 429) or status >= 500)
        elif "/chat/completions" in uri and body.lstrip().startswith(("data:", ":")):
            try:
                chunks = [decode_chunk(loads_chunk(p)) for p in iter_sse_data(body.splitlines())]
            except APIError as stream_error:
                assert "mid-stream-error" in path.name and "Token limit reached" in str(stream_error)
            else:
                assert chunks and any(c.usage is not None and c.usage.total_tokens > 0 for c in chunks)
        elif "/chat/completions" in uri:
            data = loads_body(body)
            error = body_error(data, model="m")
            if error is not None:
                assert "http200-with-429" in path.name and isinstance(error, RateLimitError)
            else:
                reply = decode_chat(data)
                assert reply.generation_id and reply.usage.total_tokens > 0
        elif "/embeddings" in uri:
            vectors = decode_embeddings(loads_body(body))
            assert len(vectors.vectors) == 3 and vectors.cost is not None
        else:
            continue
        checked += 1
    assert checked or "responses-api" in path.name


def test_the_402_issue_report_body() -> None:
    path = RECORDINGS / "issue-report__402-insufficient-credits__body-only__2026-04.json"
    raw = path.read_text() if path.is_file() else E402
    error = error_for(402, loads_body(raw), model="google/gemini-2.5-pro")
    assert isinstance(error, InsufficientCreditsError) and "can only afford 10114" in str(error)
    assert not is_transient(error)
