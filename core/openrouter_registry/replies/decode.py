"""Decoding OpenRouter's answers: JSON bodies, typed errors, chat replies, SSE streams, embeddings.

Pure functions over bytes, strings and decoded JSON (no HTTP library here), so every shape seen in
the real recordings can be tested without a socket:

- `loads_body`: a JSON body, tolerant of OpenRouter's keep-alive whitespace before the ``{``.
- `error_for` / `body_error`: the typed `APIError` for an HTTP error, or for an error delivered
  inside an HTTP 200 (top-level ``error``, or ``choices[0].finish_reason == "error"``).
- `is_transient`: whether an error is worth retrying.
- `decode_chat`, `decode_chunk`, `decode_embeddings`: the values a caller wants.
- `SSEDecoder` / `iter_sse_data`: the ``data:`` payloads of a server-sent event stream.

Nothing here ever sees request headers, so no message can contain the API key.

Hostile or broken answers: every decode failure is an `InvalidResponseError` (or, for an error body,
its typed `APIError`); no builtin exception leaves this module. Nesting too deep for the parser,
bytes that are not UTF-8, numbers out of range and fields of the wrong type are all answers that are
"not usable". Strings taken from a body never hold lone surrogates (they become U+FFFD, so a reply
can always be sent back in a re-ask or printed), and the error metadata kept on an exception is a
bounded copy (depth and size), so nothing that later walks it can recurse without limit.
"""

from __future__ import annotations

from decimal import Decimal
import base64
import email.utils
import json
import math
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ..schemas.fastjson import MAPPING, MISS, fast_loads
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CertificateError,
    ConnectionError,
    InsufficientCreditsError,
    InvalidResponseError,
    ModelNotAvailableError,
    ModerationError,
    ProviderError,
    RateLimitError,
    TimeoutError,
)
from ..result import NO_PARTS, Reply, ReplyParts, ToolCall, Usage, cost_from_api

__all__ = [
    "TRANSIENT_STATUSES",
    "InvalidResponseError",
    "EmbeddingReply",
    "StreamChunk",
    "SSEDecoder",
    "loads_body",
    "error_for",
    "body_error",
    "decode_chat_checked",
    "is_transient",
    "retry_after_seconds",
    "decode_chat",
    "decode_chunk",
    "decode_embeddings",
    "iter_sse_data",
    "loads_chunk",
    "clean_text",
    "split_think",
    "tool_call_of",
    "parse_arguments",
    "ToolCallFragment",
]

#: Statuses (HTTP or ``error.code``) that a later attempt may well not see again.
TRANSIENT_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 524, 529})

#: The status given to an error inside an HTTP 200 that carries no usable ``code``.
UNSPECIFIED_PROVIDER_STATUS = 502

_DETAIL_LIMIT = 200
_SNIPPET_LIMIT = 80
_MESSAGE_LIMIT = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Provider messages longer than this (``metadata.raw``) are shown as text, not parsed as JSON.
_PARSE_DETAIL_LIMIT = 64 * 1024
#: Bounds of the copy of ``error.metadata`` kept on an exception.
_METADATA_DEPTH = 8
_METADATA_ITEMS = 256
_METADATA_STRING = 4096
#: Token counts above this are not counts (a 64-bit signed maximum).
_MAX_COUNT = 2**63 - 1


# --- small readers ---------------------------------------------------------------------------------


def _as_status(value: Any) -> int | None:
    """An HTTP-like status from an int or a numeric string (``429`` or ``"429"``); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 100 <= value <= 599 else None
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= 3 and text.isascii() and text.isdigit():
            return _as_status(int(text))
    return None


def clean_text(value: str) -> str:
    """``value`` with lone surrogates (legal in JSON escapes, not in UTF-8) replaced by U+FFFD."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def _str_or_none(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) and value else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header value by case-insensitive name (works for plain dicts and httpx.Headers alike)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def _shorten(text: str, limit: int = _DETAIL_LIMIT) -> str:
    flat = " ".join(clean_text(text[: limit * 4]).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _message_in(value: Any, depth: int = 0) -> str | None:
    """The most specific human message inside a provider's raw error (JSON text, dict or plain text)."""
    if depth > 4:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] in "{[" and len(text) <= _PARSE_DETAIL_LIMIT:
            try:
                return _message_in(json.loads(text), depth + 1)
            except (ValueError, RecursionError):
                return text
        return text
    if isinstance(value, MAPPING):
        for key in ("error", "message", "detail", "error_message", "msg"):
            found = _message_in(value.get(key), depth + 1)
            if found:
                return found
    if isinstance(value, list) and value:
        return _message_in(value[0], depth + 1)
    return None


# --- bodies ----------------------------------------------------------------------------------------



def loads_body(raw: bytes | str) -> Any:
    """Decode a JSON body, skipping keep-alive whitespace (and a BOM) before it.

    Raises `InvalidResponseError` (a transient `ProviderError`) for an empty or non-JSON body, a body
    that is not UTF-8, nested too deep for the parser, or too large to hold in memory.
    """
    if type(raw) is bytes:
        value = fast_loads(raw)  # the usual body (see fastjson); the json module below decides the rest
        if value is not MISS:
            return value
    failure: str
    try:
        text = bytes(raw).decode("utf-8") if isinstance(raw, (bytes, bytearray, memoryview)) else raw
        text = text.lstrip("\ufeff \t\r\n")
        if not text:
            failure = "empty body"
        else:
            return json.loads(text)
    except UnicodeDecodeError:
        failure = "the body is not UTF-8 text"
    except RecursionError:
        failure = "the JSON is nested too deep to read"
    except MemoryError:
        failure = "the body is too large to decode"
    except ValueError:  # json.JSONDecodeError, and integers longer than Python converts
        failure = f"not JSON ({_shorten(text, _SNIPPET_LIMIT)!r})"
    raise InvalidResponseError(f"Invalid upstream response: {failure}")


# --- errors ----------------------------------------------------------------------------------------

_CLASSES: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: ModerationError,
    404: ModelNotAvailableError,
    408: TimeoutError,
    429: RateLimitError,
}


def _class_for(status: int) -> type[APIError]:
    if status in _CLASSES:
        return _CLASSES[status]
    if 500 <= status <= 599:
        return ProviderError
    return APIError


def _error_object(body: Any) -> Mapping[str, Any] | None:
    """``body["error"]`` as a mapping (a bare string becomes ``{"message": ...}``), or the body itself
    when it looks like an error object; None when there is nothing error-like."""
    if not isinstance(body, MAPPING):
        return None
    error = body.get("error")
    if isinstance(error, MAPPING):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    if isinstance(body.get("message"), str):
        return body
    return None


def _bounded(value: Any, budget: list[int], depth: int = 0) -> Any:
    """A copy of decoded JSON cut to `_METADATA_DEPTH` levels, `_METADATA_ITEMS` values in all and
    `_METADATA_STRING` characters per string; what is cut off becomes ``"…"``."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _METADATA_DEPTH:
        return "…"
    if isinstance(value, str):
        return clean_text(value if len(value) <= _METADATA_STRING else value[:_METADATA_STRING] + "…")
    if isinstance(value, MAPPING):
        return {clean_text(str(k)): _bounded(v, budget, depth + 1) for k, v in list(value.items())[: budget[0]]}
    if isinstance(value, list):
        return [_bounded(v, budget, depth + 1) for v in value[: budget[0]]]
    if value is None or isinstance(value, bool) or isinstance(value, int) and abs(value) <= _MAX_COUNT:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return "…"


def _metadata(value: Any) -> dict[str, Any]:
    """``error.metadata`` as a bounded copy; ``reasons`` (a list of strings) and ``flagged_input`` (a
    string) are dropped when they have another type, since `ModerationError` reads them."""
    if not isinstance(value, MAPPING):
        return {}
    metadata: dict[str, Any] = _bounded(value, [_METADATA_ITEMS])
    reasons = metadata.get("reasons")
    if "reasons" in metadata and not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        del metadata["reasons"]
    if "flagged_input" in metadata and not isinstance(metadata["flagged_input"], str):
        del metadata["flagged_input"]
    return metadata


def _error_message(value: Any) -> str | None:
    """``error.message`` as text: a string, a number, or the message found inside an object or list."""
    if isinstance(value, str):
        text = value.strip()
        return (clean_text(text) if len(text) <= _MESSAGE_LIMIT else _shorten(text, _MESSAGE_LIMIT)) or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _shorten(repr(value))
    found = _message_in(value)
    return _shorten(found) if found else None


def error_for(
    status: int,
    body: Any,
    *,
    model: str | None,
    headers: Mapping[str, str] | None = None,
    attempts: int = 1,
) -> APIError:
    """The typed error for an HTTP ``status`` and its decoded ``body`` (any value, None included).

    A 400 whose ``error.code`` is transient (408/429/5xx) is mapped by that code, so it is retried
    like one. ``status`` on the error is the code used for the mapping. The message is OpenRouter's
    ``error.message``, followed by the provider's own message from ``metadata.raw`` when that says more.
    """
    error = _error_object(body)
    code = _as_status(error.get("code")) if error is not None else None
    effective = code if status == 400 and code in TRANSIENT_STATUSES else status
    metadata = _metadata(error.get("metadata") if error is not None else None)

    message = (_error_message(error.get("message")) if error is not None else None) or _status_message(status, headers)
    detail = _message_in(metadata.get("raw"))
    if detail:
        detail = _shorten(detail)
        if detail.lower() not in message.lower():
            message = f"{message.rstrip('.')}: {detail}"

    provider = (
        _str_or_none(metadata.get("provider_name"))
        or _str_or_none(_header(headers, "X-Provider-Name"))
        or (_str_or_none(body.get("provider")) if isinstance(body, MAPPING) else None)  # a stream chunk names it
    )
    body_id = body.get("id") if isinstance(body, MAPPING) else None
    generation_id = _str_or_none(body_id) or _str_or_none(_header(headers, "X-Generation-Id"))
    return _class_for(effective)(
        message,
        status=effective,
        model=model,
        generation_id=generation_id,
        provider=provider,
        metadata=metadata,
        attempts=attempts,
    )


def _status_message(status: int, headers: Mapping[str, str] | None) -> str:
    """``HTTP <status> from OpenRouter``; for a redirect, where it pointed (redirects are not followed)."""
    location = _header(headers, "Location") if 300 <= status < 400 else None
    if not location:
        return f"HTTP {status} from OpenRouter"
    from ..settings import without_credentials

    return (
        f"HTTP {status} from OpenRouter: redirected to {_shorten(without_credentials(location))} "
        "(redirects are not followed; set OPENROUTER_BASE_URL to the address that answers)"
    )


def body_error(
    body: Any,
    *,
    model: str | None,
    headers: Mapping[str, str] | None = None,
    attempts: int = 1,
) -> APIError | None:
    """The error inside an HTTP 200 body, or None when the body is not an error.

    Two shapes: a top-level ``error`` object (``{"error": {"code": 429, ...}}``, also the last chunk
    of a stream that failed after tokens were sent), and ``choices[0].finish_reason == "error"`` with
    ``choices[0].error``. The status is ``error.code``; without a usable code it is 502 (a provider
    failure). The model named in the body wins over ``model``.
    """
    if not isinstance(body, MAPPING):
        return None
    top = body.get("error")
    if top is not None and isinstance(top, (dict, str, Mapping)) and top:  # None: no ABC check
        error = _error_object(body) or {}
        status = _as_status(error.get("code")) or UNSPECIFIED_PROVIDER_STATUS
        named_model = _str_or_none(body.get("model")) or model
        return error_for(status, body, model=named_model, headers=headers, attempts=attempts)
    choice = _first_choice(body)
    if choice is None or choice.get("finish_reason") != "error":
        return None
    named_model = _str_or_none(body.get("model")) or model
    inner = choice.get("error")
    if not isinstance(inner, MAPPING):
        inner = {"message": _str_or_none(inner) or 'The provider reported an error (finish_reason "error")'}
    status = _as_status(inner.get("code")) or UNSPECIFIED_PROVIDER_STATUS
    wrapped = {"error": inner, "id": body.get("id"), "provider": body.get("provider")}
    return error_for(status, wrapped, model=named_model, headers=headers, attempts=attempts)


def is_transient(error: APIError) -> bool:
    """True when sending the same request again may succeed: a transient status or error code
    (408, 429, 500, 502, 503, 524, 529), a timeout, a connection failure, an invalid upstream response."""
    if isinstance(error, CertificateError):
        return False  # the same certificate fails again
    if isinstance(error, (TimeoutError, ConnectionError, InvalidResponseError)):
        return True
    return error.status in TRANSIENT_STATUSES


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: datetime | None = None) -> float | None:
    """The wait a response asks for: ``retry-after-ms`` (milliseconds), else ``Retry-After`` (seconds,
    integer or decimal, or an HTTP date). None when absent or unreadable; never negative."""
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        seconds = _seconds(millis)
        if seconds is not None:
            return seconds / 1000.0
    value = _header(headers, "retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


# --- chat ------------------------------------------------------------------------------------------


def _first_choice(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], MAPPING):
        return choices[0]
    return None


def _content_text(content: Any, what: str = "message content") -> str:
    """Message content as text: a string, None (""), or content parts whose text parts are joined
    (parts of other types, such as images, are skipped). Any other type is not a usable answer."""
    if content is None:
        return ""
    if isinstance(content, str):
        return clean_text(content)
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, MAPPING) and isinstance(part.get("text"), str):
                if part.get("type", "text") in ("text", "output_text"):
                    texts.append(part["text"])
        return clean_text("".join(texts))
    raise InvalidResponseError(f"Invalid upstream response: the {what} is a {_json_type(content)}, not text")


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _finish_reason(choice: Mapping[str, Any]) -> str | None:
    """``finish_reason``: a string or null; anything else is not a usable answer."""
    value = choice.get("finish_reason")
    if value is None or isinstance(value, str):
        return _str_or_none(value)
    raise InvalidResponseError(f"Invalid upstream response: finish_reason is a {_json_type(value)}, not a string")


def _require_mapping(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, MAPPING):
        raise InvalidResponseError(f"Invalid upstream response: expected a JSON object for {what}")
    return body


def decode_chat(body: Mapping[str, Any]) -> Reply:
    """A chat completion body as a `Reply`. An error body raises its typed error; a body without
    choices raises `InvalidResponseError` ("no choices in response")."""
    data = _require_mapping(body, "a chat completion")
    error = body_error(data, model=None)
    if error is not None:
        raise error
    return decode_chat_checked(data)


def decode_chat_checked(body: Mapping[str, Any]) -> Reply:
    """`decode_chat` for a body that `body_error` has passed already (`Transport.post_json` checks every
    HTTP 200 body before its ``check``)."""
    data = _require_mapping(body, "a chat completion")
    choice = _first_choice(data)
    if choice is None:
        raise InvalidResponseError(
            "Invalid upstream response: no choices in response",
            model=_str_or_none(data.get("model")),
            generation_id=_str_or_none(data.get("id")),
            provider=_str_or_none(data.get("provider")),
        )
    message = choice.get("message")
    parts = NO_PARTS
    if isinstance(message, MAPPING):
        content = message.get("content")
        # ASCII text (the usual content) is its own clean text; anything else goes through _content_text
        text = content if type(content) is str and content.isascii() else _content_text(content)
        parts = _message_parts(message)
        if parts.reasoning or "<think>" in text[:64]:
            text, reasoning = split_think(text, parts.reasoning)
            if reasoning != parts.reasoning:
                parts = attrs.evolve(parts, reasoning=reasoning)
    elif message is None and "text" in choice:  # the legacy completions shape
        text = _content_text(choice.get("text"), "choice text")
    elif message is None:
        raise InvalidResponseError("Invalid upstream response: a choice without a message")
    else:
        raise InvalidResponseError(f"Invalid upstream response: the message is a {_json_type(message)}, not an object")
    get = data.get
    usage = get("usage")
    cost = cost_from_api(usage)
    # a non-empty ASCII string is what _str_or_none gives back as it is: the usual value of these fields
    finish_reason = choice.get("finish_reason")
    if type(finish_reason) is not str or not finish_reason or not finish_reason.isascii():
        finish_reason = _finish_reason(choice)
    if parts.tool_calls and finish_reason in (None, "stop"):
        finish_reason = "tool_calls"  # some providers say "stop" for a reply of tool calls
    model, provider, generation_id = get("model"), get("provider"), get("id")
    return Reply(
        text=text,
        finish_reason=finish_reason,
        model=model if type(model) is str and model and model.isascii() else _str_or_none(model),
        provider=provider if type(provider) is str and provider and provider.isascii() else _str_or_none(provider),
        generation_id=(
            generation_id if type(generation_id) is str and generation_id and generation_id.isascii()
            else _str_or_none(generation_id)
        ),
        usage=Usage.from_api(usage),
        cost=cost,
        raw=data,
        cost_source=None if cost is None else "api",
        parts=parts,
    )


def _objects(value: Any, what: str) -> tuple[Mapping[str, Any], ...]:
    """A list of objects as received (null or missing: empty); anything else is not a usable answer."""
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, MAPPING) for item in value):
        return tuple(value)
    raise InvalidResponseError(f"Invalid upstream response: {what} is not a list of objects")


def _message_parts(message: Mapping[str, Any]) -> ReplyParts:
    """What a message holds besides its content. The usual reply holds none of it: one lookup each."""
    get = message.get
    calls, reasoning, details = get("tool_calls"), get("reasoning"), get("reasoning_details")
    annotations, images = get("annotations"), get("images")
    if calls is None and reasoning is None and details is None and annotations is None and images is None:
        return NO_PARTS
    if reasoning is None:
        reasoning = get("reasoning_content")  # the DeepSeek name some providers pass through
    if reasoning is not None and not isinstance(reasoning, str):
        raise InvalidResponseError(f"Invalid upstream response: message.reasoning is a {_json_type(reasoning)}, not text")
    return ReplyParts(
        tuple(tool_call_of(raw, index) for index, raw in enumerate(_objects(calls, "message.tool_calls"))),
        clean_text(reasoning) if reasoning else None,
        _objects(details, "message.reasoning_details"),
        _objects(annotations, "message.annotations"),
        _objects(images, "message.images"),
        message,
    )


_THINK_OPEN = re.compile(r"^\s*<think>")
_THINK_CLOSE = "</think>"


def split_think(text: str, reasoning: str | None) -> tuple[str, str | None]:
    """A ``<think>`` block at the start of ``text`` moved out: (what follows it, the reasoning).

    With a reasoning field the content is left alone and only the field's own ``<think>`` tags are
    taken off. A block cut off before ``</think>`` (the length limit) is all reasoning, with no text."""
    if reasoning:
        opened = _THINK_OPEN.match(reasoning)
        if opened is not None:
            inner = reasoning[opened.end():]
            end = inner.rfind(_THINK_CLOSE)
            reasoning = (inner[:end] if end >= 0 else inner).strip() or None
        return text, reasoning
    opened = _THINK_OPEN.match(text) if "<think>" in text[:64] else None
    if opened is None:
        return text, reasoning
    rest = text[opened.end():]
    end = rest.find(_THINK_CLOSE)
    if end < 0:
        return "", rest.strip() or None
    return rest[end + len(_THINK_CLOSE):].lstrip(), rest[:end].strip() or None


def _call_id(value: Any, index: int) -> str:
    if isinstance(value, str) and value:
        return clean_text(value)
    return f"call_{index}"  # a provider that sent no id: the index keeps the calls of one reply apart


def tool_call_of(raw: Mapping[str, Any], index: int = 0) -> ToolCall:
    """One ``message.tool_calls`` entry as a `ToolCall` (``arguments`` parsed, repaired when malformed)."""
    function = raw.get("function")
    if not isinstance(function, MAPPING):
        raise InvalidResponseError("Invalid upstream response: a tool call without a function object")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidResponseError("Invalid upstream response: a tool call without a function name")
    arguments = function.get("arguments")
    if isinstance(arguments, MAPPING):  # a few providers send the object itself
        text = json.dumps(arguments, ensure_ascii=False)
    elif arguments is None or isinstance(arguments, str):
        text = clean_text(arguments or "")
    else:
        raise InvalidResponseError(f"Invalid upstream response: tool call arguments are a {_json_type(arguments)}")
    return ToolCall(_call_id(raw.get("id"), index), clean_text(name), parse_arguments(text), text)


def parse_arguments(text: str) -> Any:
    """Tool call arguments as JSON data: ``{}`` for an empty string (a tool without parameters streams
    ``""``), else the JSON, else what the local repair of structured replies makes of it, else None."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    from .structured import parse_json_reply

    return parse_json_reply(text, None)


# --- streaming -------------------------------------------------------------------------------------


@attrs.frozen
class StreamChunk:
    """One decoded ``chat.completion.chunk``: the text delta and whatever else it carried.

    ``usage`` and ``cost`` are None except on the chunk that reports usage (normally the last one).
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    cost: Decimal | None = None
    model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    tool_calls: tuple[ToolCallFragment, ...] = ()
    reasoning: str = ""
    reasoning_details: tuple[Mapping[str, Any], ...] = ()
    annotations: tuple[Mapping[str, Any], ...] = ()
    images: tuple[Mapping[str, Any], ...] = ()


@attrs.frozen
class ToolCallFragment:
    """One ``delta.tool_calls`` entry: the call at ``index``; ``id`` and ``name`` on its first fragment,
    ``arguments`` a piece of the JSON string to append."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


def _fragments(value: Any) -> tuple[ToolCallFragment, ...]:
    fragments = []
    for position, raw in enumerate(_objects(value, "delta.tool_calls")):
        index = raw.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024:
            raise InvalidResponseError("Invalid upstream response: a tool call fragment's index is not a small integer")
        function = raw.get("function")
        function = function if isinstance(function, MAPPING) else {}
        arguments = function.get("arguments")
        if isinstance(arguments, MAPPING):
            arguments = json.dumps(arguments, ensure_ascii=False)
        elif arguments is not None and not isinstance(arguments, str):
            raise InvalidResponseError("Invalid upstream response: a tool call fragment's arguments are not text")
        fragments.append(
            ToolCallFragment(index, _str_or_none(raw.get("id")), _str_or_none(function.get("name")), clean_text(arguments or ""))
        )
    return tuple(fragments)


def _delta_extras(delta: Mapping[str, Any]) -> dict[str, Any]:
    """A delta's parts besides its content (tool call fragments, reasoning, annotations, images)."""
    get = delta.get
    extras: dict[str, Any] = {}
    if get("tool_calls") is not None:
        extras["tool_calls"] = _fragments(get("tool_calls"))
    reasoning = get("reasoning")
    if reasoning is None:
        reasoning = get("reasoning_content")
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise InvalidResponseError("Invalid upstream response: delta.reasoning is not text")
        extras["reasoning"] = clean_text(reasoning)
    for key in ("reasoning_details", "annotations", "images"):
        if get(key) is not None:
            extras[key] = _objects(get(key), f"delta.{key}")
    return extras


_DELTA_EXTRAS = ("tool_calls", "reasoning", "reasoning_content", "reasoning_details", "annotations", "images")


def decode_chunk(chunk: Mapping[str, Any], *, model: str | None = None, attempts: int = 1) -> StreamChunk:
    """Decode one SSE JSON chunk. A chunk with a top-level ``error`` or ``finish_reason: "error"``
    raises the typed error (its status from ``error.code``, int or string)."""
    data = _require_mapping(chunk, "a stream chunk")
    error = body_error(data, model=model, attempts=attempts)
    if error is not None:
        raise error
    choices = data.get("choices")
    if choices is not None and not (isinstance(choices, list) and all(isinstance(c, MAPPING) for c in choices[:1])):
        raise InvalidResponseError("Invalid upstream response: a stream chunk's choices are not a list of objects")
    choice = _first_choice(data)
    text, finish_reason = "", None
    extras: dict[str, Any] = {}
    if choice is not None:
        delta = choice.get("delta")
        if isinstance(delta, MAPPING):
            text = _content_text(delta.get("content"), "delta content")
            if len(delta) > 2 or any(key in delta for key in _DELTA_EXTRAS):  # role and content: the usual delta
                extras = _delta_extras(delta)
        elif delta is not None:
            raise InvalidResponseError(f"Invalid upstream response: a delta is a {_json_type(delta)}, not an object")
        finish_reason = _finish_reason(choice)
    usage_value = data.get("usage")
    usage = Usage.from_api(usage_value) if isinstance(usage_value, MAPPING) else None
    return StreamChunk(
        text=text,
        finish_reason=finish_reason,
        usage=usage,
        cost=cost_from_api(usage_value),
        model=_str_or_none(data.get("model")),
        provider=_str_or_none(data.get("provider")),
        generation_id=_str_or_none(data.get("id")),
        **extras,
    )


class SSEDecoder:
    """Incremental server-sent-events decoder: feed it lines (without their line terminator), get the
    ``data`` payload of each complete event.

    Comment lines (``: OPENROUTER PROCESSING``) and fields other than ``data`` are ignored; several
    ``data:`` lines of one event are joined with ``\\n``; a blank line ends an event. After the
    ``[DONE]`` sentinel `done` is True and every later line is ignored.

    OpenRouter ends every stream with ``[DONE]``; with ``require_done`` (the default), a body that ends
    without it and without a pending event makes `flush` raise `InvalidResponseError`, so a stream cut
    short between two events is an error, not a quietly shorter reply.
    """

    DONE = "[DONE]"

    def __init__(self, *, require_done: bool = True) -> None:
        self._data: list[str] = []
        self.done = False
        self.require_done = require_done

    def feed(self, line: str) -> str | None:
        """Consume one line; return the event's data when ``line`` completed an event, else None."""
        if self.done:
            return None
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if not colon:
            value = ""
        elif value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        return None

    def flush(self) -> str | None:
        """End of stream: the data of an event that was not followed by a blank line, if any.

        Raises `InvalidResponseError` when there is none, ``[DONE]`` never came and ``require_done``."""
        payload = self._dispatch()
        if payload is None and not self.done and self.require_done:
            raise InvalidResponseError("Invalid upstream response: the event stream ended before [DONE]")
        return payload

    def _dispatch(self) -> str | None:
        if not self._data:
            return None
        payload = "\n".join(self._data)
        self._data = []
        if payload.strip() == self.DONE:
            self.done = True
            return None
        return payload


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` payloads of an SSE stream given as lines, up to (not including) ``[DONE]``; lines
    that end without ``[DONE]`` just end."""
    decoder = SSEDecoder(require_done=False)
    for line in lines:
        payload = decoder.feed(line)
        if payload is not None:
            yield payload
        if decoder.done:
            return
    payload = decoder.flush()
    if payload is not None:
        yield payload


def loads_chunk(payload: str) -> Mapping[str, Any]:
    """One SSE ``data`` payload as a JSON object; `InvalidResponseError` when it is not one."""
    value = loads_body(payload)
    if not isinstance(value, MAPPING):
        raise InvalidResponseError("Invalid upstream response: a stream chunk is not a JSON object")
    return value


# --- embeddings ------------------------------------------------------------------------------------


@attrs.frozen
class EmbeddingReply:
    """A decoded ``/embeddings`` answer: one vector per input, in input order."""

    vectors: list[list[float]]
    model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    usage: Usage = Usage()
    cost: Decimal | None = None


def _vector(value: Any) -> list[float]:
    """An embedding as floats: a JSON number list, or base64 little-endian float32 (``encoding_format``)."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise InvalidResponseError("Invalid upstream response: an embedding is not valid base64") from None
        if len(raw) % 4:
            raise InvalidResponseError("Invalid upstream response: a base64 embedding is not float32 data")
        vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    elif isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        try:
            vector = [float(x) for x in value]
        except OverflowError:  # an integer beyond a float's range
            vector = [math.inf]
    else:
        raise InvalidResponseError("Invalid upstream response: an embedding is not a list of numbers")
    if not all(map(math.isfinite, vector)):
        raise InvalidResponseError("Invalid upstream response: an embedding holds a non-finite number")
    return vector


def decode_embeddings(body: Any) -> EmbeddingReply:
    """An ``/embeddings`` body as an `EmbeddingReply`, vectors ordered by ``index``.

    An error body raises its typed error; a missing or empty ``data`` list raises
    `InvalidResponseError` ("no embeddings in response"), which is transient, so a transport given
    this function as its ``check`` retries it.
    """
    data = _require_mapping(body, "an embeddings response")
    error = body_error(data, model=None)
    if error is not None:
        raise error
    items = data.get("data")
    model = _str_or_none(data.get("model"))
    if not isinstance(items, list) or not items:
        raise InvalidResponseError(
            "Invalid upstream response: no embeddings in response",
            model=model,
            generation_id=_str_or_none(data.get("id")),
            provider=_str_or_none(data.get("provider")),
        )
    indexed: list[tuple[int, list[float]]] = []
    for position, item in enumerate(items):
        if not isinstance(item, MAPPING):
            raise InvalidResponseError("Invalid upstream response: an embeddings item is not an object")
        index = item.get("index")
        index = position if index is None else index
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidResponseError("Invalid upstream response: an embedding's index is not an integer")
        indexed.append((index, _vector(item.get("embedding"))))
    indexed.sort(key=lambda entry: entry[0])
    if [index for index, _ in indexed] != list(range(len(indexed))):
        # a repeated or missing index would pair texts with the wrong vectors
        raise InvalidResponseError("Invalid upstream response: the embeddings' indexes are not 0 to n-1")
    usage = data.get("usage")
    return EmbeddingReply(
        vectors=[vector for _, vector in indexed],
        model=model,
        provider=_str_or_none(data.get("provider")),
        generation_id=_str_or_none(data.get("id")),
        usage=Usage.from_api(usage),
        cost=cost_from_api(usage),
    )
