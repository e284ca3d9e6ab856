"""`FakeOpenRouter`: a local HTTP server that answers like OpenRouter, for tests and offline demos.

    with FakeOpenRouter() as server:
        client = ...(base_url=server.base_url, api_key=server.api_key)
        server.enqueue(Scripted(status=429, json={"error": {...}}, headers={"Retry-After": "1"}))
        ...
        assert server.requests[-1].body["model"] == "openai/gpt-4o"

It runs `http.server.ThreadingHTTPServer` on 127.0.0.1 (a free port) in a daemon thread, so it works
from sync and async tests alike. Without a script it answers the way the real API does, byte for byte
where it matters (shapes taken from recorded exchanges): keep-alive whitespace before JSON bodies,
``gen-...`` ids, ``usage`` with ``cost``, SSE with ``: OPENROUTER PROCESSING`` comments and a final
usage chunk with ``choices: []``, OpenRouter's 401/400/404 error bodies. Structured-output requests
get a valid instance of the request's JSON Schema, worded the way the model family words JSON
(see `openrouter_registry.testing.styles`).

The server never logs or prints the ``Authorization`` header (``RecordedRequest``'s repr hides it).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import random
import re
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from .caching import PromptCache
from .styles import family_of, provider_of, style_json
from .toolreplies import call_fragments, plan_tool_calls, reasoning_parts, tool_result_text
from ..models.generator import SCHEMA_MARKER

__all__ = [
    "FakeOpenRouter",
    "Scripted",
    "RecordedRequest",
    "DEFAULT_API_KEY",
    "DEFAULT_REFUSE_MODES",
    "PRICES",
    "MODELS",
    "price_of",
    "SCHEMA_MARKER",
]

DEFAULT_API_KEY = "sk-or-v1-local-test-key"
DEFAULT_REFUSE_MODES: Mapping[str, frozenset[str]] = {
    "mistralai/mixtral-8x7b-instruct": frozenset({"json_schema", "json_object"}),
}
PADDING = "\n         \n\n"
PROCESSING = ": OPENROUTER PROCESSING\n\n"
USER_ID = "user_local"
NO_ENDPOINTS = (
    "No endpoints found that can handle the requested parameters. To learn more about provider routing, "
    "visit: https://openrouter.ai/docs/guides/routing/provider-selection"
)

#: USD per token (prompt, completion) by model id; `price_of` falls back to `DEFAULT_PRICE`.
PRICES: Mapping[str, tuple[float, float]] = {
    "openai/gpt-4o": (2.5e-6, 1e-5),
    "openai/gpt-4o-mini": (1.5e-7, 6e-7),
    "anthropic/claude-3.5-sonnet": (3e-6, 1.5e-5),
    "anthropic/claude-3.5-haiku": (8e-7, 4e-6),
    "meta-llama/llama-3.3-70b-instruct": (1e-7, 2.5e-7),
    "mistralai/mixtral-8x7b-instruct": (2.4e-7, 2.4e-7),
    "google/gemini-pro-1.5": (1.25e-6, 5e-6),
    "openai/text-embedding-3-small": (2e-8, 0.0),
    "openai/text-embedding-3-large": (1.3e-7, 0.0),
}
DEFAULT_PRICE = (1e-6, 2e-6)
EMBEDDING_DIMENSIONS: Mapping[str, int] = {
    "openai/text-embedding-3-large": 3072,
    "openai/text-embedding-3-small": 1536,
}
DEFAULT_EMBEDDING_DIMENSIONS = 1024

_ALNUM = string.ascii_letters + string.digits
_OPENAI_PARAMETERS = [
    "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "presence_penalty", "response_format",
    "seed", "stop", "structured_outputs", "temperature", "tool_choice", "tools", "top_logprobs", "top_p",
    "web_search_options",
]


def price_of(model: str) -> tuple[float, float]:
    """(prompt, completion) USD per token the server charges for ``model``; ``:free`` variants cost 0."""
    base, _, variant = model.partition(":")
    if variant == "free":
        return (0.0, 0.0)
    return PRICES.get(base, DEFAULT_PRICE)


def _model_entry(
    id: str, name: str, created: int, context: int, max_out: int, modality: str, tokenizer: str,
    instruct_type: str | None, moderated: bool, parameters: list[str], description: str,
) -> dict[str, Any]:
    prompt, completion = price_of(id)
    inputs = ["text", "image"] if modality.startswith("text+image") else ["text"]
    return {
        "id": id,
        "canonical_slug": id,
        "hugging_face_id": "",
        "name": name,
        "created": created,
        "description": description,
        "context_length": context,
        "architecture": {
            "modality": modality,
            "input_modalities": inputs,
            "output_modalities": ["text"],
            "tokenizer": tokenizer,
            "instruct_type": instruct_type,
        },
        "pricing": _pricing(id, prompt, completion),
        "top_provider": {"context_length": context, "max_completion_tokens": max_out, "is_moderated": moderated},
        "per_request_limits": None,
        "supported_parameters": parameters,
    }


def _price_text(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _pricing(id: str, prompt: float, completion: float) -> dict[str, str]:
    """A listing's prices, with the cache prices OpenRouter lists for the families the server bills
    caching for (`caching.PromptCache`): Anthropic reads 0.1x and writes 1.25x, OpenAI reads 0.5x."""
    pricing = {
        "prompt": _price_text(prompt), "completion": _price_text(completion), "request": "0", "image": "0",
        "web_search": "0", "internal_reasoning": "0",
    }
    if id.startswith("anthropic/"):
        pricing["input_cache_read"], pricing["input_cache_write"] = _price_text(prompt * 0.1), _price_text(prompt * 1.25)
    elif id.startswith("openai/"):
        pricing["input_cache_read"] = _price_text(prompt * 0.5)
    return pricing


#: What ``GET /api/v1/models`` lists (before `FakeOpenRouter.refuse_modes` is applied): every chat model
#: of `PRICES`, priced as the server bills it (`price_of`).
MODELS: tuple[dict[str, Any], ...] = (
    _model_entry("openai/gpt-4o", "OpenAI: GPT-4o", 1715558400, 128_000, 16_384, "text+image->text", "GPT",
                 None, True, _OPENAI_PARAMETERS, "GPT-4o (\"o\" for \"omni\") is OpenAI's multimodal model."),
    _model_entry("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", 1721260800, 128_000, 16_384, "text+image->text",
                 "GPT", None, True, _OPENAI_PARAMETERS, "GPT-4o mini is OpenAI's small, affordable model."),
    _model_entry("anthropic/claude-3.5-sonnet", "Anthropic: Claude 3.5 Sonnet", 1729555200, 200_000, 8_192,
                 "text+image->text", "Claude", None, True,
                 ["max_tokens", "stop", "temperature", "tool_choice", "tools", "top_k", "top_p"],
                 "Claude 3.5 Sonnet delivers better-than-Opus capabilities at Sonnet speeds."),
    _model_entry("anthropic/claude-3.5-haiku", "Anthropic: Claude 3.5 Haiku", 1730678400, 200_000, 8_192,
                 "text+image->text", "Claude", None, True,
                 ["max_tokens", "stop", "temperature", "tool_choice", "tools", "top_k", "top_p"],
                 "Claude 3.5 Haiku: fast, with better coding, tool use and reasoning."),
    _model_entry("meta-llama/llama-3.3-70b-instruct", "Meta: Llama 3.3 70B Instruct", 1733506137, 131_072, 16_384,
                 "text->text", "Llama3", "llama3", False,
                 ["frequency_penalty", "logit_bias", "logprobs", "max_tokens", "min_p", "presence_penalty",
                  "repetition_penalty", "response_format", "seed", "stop", "structured_outputs", "temperature",
                  "tool_choice", "tools", "top_k", "top_logprobs", "top_p"],
                 "The Meta Llama 3.3 multilingual instruction-tuned 70B model."),
    _model_entry("mistralai/mixtral-8x7b-instruct", "Mistral: Mixtral 8x7B Instruct", 1702166400, 32_768, 16_384,
                 "text->text", "Mistral", "mistral", False,
                 ["frequency_penalty", "max_tokens", "presence_penalty", "repetition_penalty", "seed", "stop",
                  "temperature", "top_k", "top_p"],
                 "Mixtral 8x7B Instruct is a sparse mixture-of-experts model by Mistral AI."),
    _model_entry("google/gemini-pro-1.5", "Google: Gemini 1.5 Pro", 1712620800, 2_000_000, 8_192,
                 "text+image->text", "Gemini", None, False,
                 ["max_tokens", "response_format", "seed", "stop", "structured_outputs", "temperature",
                  "tool_choice", "tools", "top_p"],
                 "Google's multimodal model, with a context of up to 2M tokens."),
)


def _redact(headers: Mapping[str, str]) -> str:
    return repr({k: ("<redacted>" if k in ("authorization", "cookie", "x-api-key") else v) for k, v in headers.items()})


@attrs.frozen
class RecordedRequest:
    """One request the server received. ``headers`` have lower-case names; ``body`` is the parsed JSON
    (None when the body was empty or not JSON); ``raw`` the exact bytes; ``time`` `time.monotonic()`
    at arrival; ``query`` the query string (without ``?``); ``connection`` the client's TCP port, the
    same for requests that came over one kept-alive connection. The repr hides ``Authorization``."""

    method: str
    path: str
    headers: dict[str, str] = attrs.field(repr=_redact)
    body: Any
    raw: bytes = attrs.field(repr=False)
    time: float
    query: str = ""
    connection: int = 0


@attrs.frozen
class Scripted:
    """A canned answer for the next request (any path but ``GET /models``), queued with `FakeOpenRouter.enqueue`.

    ``body`` (raw text or bytes) wins over ``json`` (serialized as given, without padding); ``sse``
    pieces are written one after another as ``text/event-stream``, each flushed separately; ``delay``
    seconds pass before anything is sent; ``close`` drops the connection without any answer.
    """

    status: int = 200
    json: Any = None
    body: str | bytes | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    sse: Sequence[str] | None = None
    close: bool = False

    @classmethod
    def chat(
        cls,
        content: Any = "",
        *,
        model: str = "openai/gpt-4o-mini",
        finish_reason: str = "stop",
        usage: Mapping[str, Any] | None = None,
        provider: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        stream: bool = False,
    ) -> Scripted:
        """A whole ``chat.completion`` reply in one line, e.g.
        ``server.enqueue(Scripted.chat(content={"city": "Paris"}, model="acme/writer-1"))``.

        ``content``: the message text; a str is sent as is (say ``'Sure! {"city": "Paris"}'`` to test
        a parser), any other JSON value (dict, list, number...) is serialized as compact JSON text.
        ``finish_reason``: ``"stop"``, ``"length"`` (a reply cut by ``max_tokens``)... ``usage``:
        replaces the default (token counts from the text lengths, ``cost`` at `price_of` the model).
        The reply carries a ``gen-...`` id, also in the ``X-Generation-Id`` header. ``stream``: the
        same reply streamed (see `Scripted.stream`)."""
        text = content if isinstance(content, str) else json.dumps(content, separators=(",", ":"), ensure_ascii=False)
        generation_id = _generation_id()
        usage = _scripted_usage(model, text) if usage is None else usage
        head = {"id": generation_id, "provider": provider or provider_of(model.split(":", 1)[0]), "model": model}
        headers = {"X-Generation-Id": generation_id, **(headers or {})}
        created = int(time.time())
        if stream:
            pieces = _sse_pieces(head, created, None, text, finish_reason, finish_reason, usage)
            return cls(sse=[piece.decode() for piece in pieces], headers=headers, delay=delay)
        message = {"role": "assistant", "content": text, "refusal": None, "reasoning": None}
        payload = {
            **head,
            "object": "chat.completion",
            "created": created,
            "choices": [
                {"logprobs": None, "finish_reason": finish_reason, "native_finish_reason": finish_reason,
                 "index": 0, "message": message}
            ],
            "usage": dict(usage),
        }
        return cls(json=payload, headers=headers, delay=delay)

    @classmethod
    def stream(cls, content: Any = "", **options: Any) -> Scripted:
        """A whole streamed reply (``text/event-stream``) for a request with ``"stream": true``, as
        OpenRouter sends it: ``: OPENROUTER PROCESSING`` comments, the text in small deltas, a chunk
        with ``finish_reason``, a usage chunk with ``choices: []``, then ``data: [DONE]``. E.g.
        ``server.enqueue(Scripted.stream("Bonjour !", model="acme/writer-1"))`` before
        ``await service.stream(..., model="acme/writer-1").collect()``. The keyword arguments are
        those of `chat` (``model``, ``finish_reason``, ``usage``, ``provider``, ``headers``, ``delay``)."""
        return cls.chat(content, stream=True, **options)


def _sse_pieces(
    head: Mapping[str, Any], created: int, fingerprint: str | None, content: str, finish: str,
    native: str, usage: Mapping[str, Any], calls: list[dict[str, Any]] | None = None,
    reasoning: tuple[str, list[dict[str, Any]]] | None = None,
) -> list[bytes]:
    """A streamed chat reply as OpenRouter sends it: processing comments, the reasoning and the tool calls
    in fragments, the text in 8-character deltas, a chunk with the finish reason, a usage chunk (with the
    finish chunk's choice repeated when the reply has tool calls or reasoning, as since 2026-04, else
    ``choices: []``), then ``[DONE]``."""

    def chunk(choices: list[Any], **extra: Any) -> bytes:
        data: dict[str, Any] = {**head, "object": "chat.completion.chunk", "created": created, "choices": choices}
        if fingerprint is not None:
            data["system_fingerprint"] = fingerprint
        data.update(extra)
        return b"data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"

    def choice(text: str, finish_reason: str | None, native_reason: str | None) -> dict[str, Any]:
        return {
            "index": 0,
            "delta": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
            "native_finish_reason": native_reason,
            "logprobs": None,
        }

    def delta_choice(delta: dict[str, Any]) -> dict[str, Any]:
        return {"index": 0, "delta": {"role": "assistant", "content": None, **delta},
                "finish_reason": None, "native_finish_reason": None, "logprobs": None}

    pieces: list[bytes] = [PROCESSING.encode(), PROCESSING.encode()]
    if reasoning is not None:
        text = reasoning[0]
        for start in range(0, len(text), 16):
            pieces.append(chunk([delta_choice({"reasoning": text[start:start + 16]})]))
        pieces.append(chunk([delta_choice({"reasoning": None, "reasoning_details": reasoning[1]})]))
    for fragments in call_fragments(calls or []):
        pieces.append(chunk([delta_choice({"tool_calls": fragments})]))
        arguments = fragments[0]["function"]["arguments"]
        if arguments == "" and any(c["function"]["arguments"] == "{}" for c in calls or [] if c["id"] == fragments[0].get("id")):
            pieces.append(PROCESSING.encode())  # a keep-alive between a call's head and its arguments
    parts = [content[i:i + 8] for i in range(0, len(content), 8)]
    for index, part in enumerate(parts):
        pieces.append(chunk([choice(part, None, None)]))
        if index == 0 and len(parts) > 1:
            pieces.append(PROCESSING.encode())
    pieces.append(chunk([choice("", finish, native)]))
    # since 2026-04 the usage chunk repeats the finish chunk's choice (earlier: choices [])
    pieces.append(chunk([choice("", finish, native)] if calls is not None or reasoning is not None else [],
                        usage=dict(usage)))
    pieces.append(b"data: [DONE]\n\n")
    return pieces


def _scripted_usage(model: str, text: str) -> dict[str, Any]:
    """A scripted reply's default ``usage``: token counts from the text length, ``cost`` at `price_of`."""
    prompt_tokens, completion_tokens = 10, _tokens(len(text))
    prompt_price, completion_price = price_of(model)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": round(prompt_tokens * prompt_price + completion_tokens * completion_price, 12),
    }


@attrs.frozen
class _Answer:
    """What the handler writes: a whole body, or ``stream`` pieces written with flushes in between."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    stream: Sequence[bytes] | None = None
    delay: float = 0.0
    close: bool = False


def _error(status: int, message: str, *, metadata: Mapping[str, Any] | None = None, user_id: bool = False) -> _Answer:
    error: dict[str, Any] = {"message": message, "code": status}
    if metadata is not None:
        error["metadata"] = dict(metadata)
    payload: dict[str, Any] = {"error": error}
    if user_id:
        payload["user_id"] = USER_ID
    return _Answer(status, {"Content-Type": "application/json"}, json.dumps(payload, separators=(",", ":")).encode())


def _text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or the ``text`` of its content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def _tokens(text_length: int) -> int:
    return max(1, math.ceil(text_length / 4))


def _generation_id(prefix: str = "gen") -> str:
    return f"{prefix}-{int(time.time())}-{''.join(random.choices(_ALNUM, k=20))}"


def _schema_in_prompt(messages: Sequence[Any]) -> Any:
    """The JSON Schema after the last `SCHEMA_MARKER` in the system messages, else in the user
    messages (a client may ask there; a real model reads it wherever it is), or None."""
    found: str | None = None
    for roles in (("system", "developer"), ("user",)):
        for message in messages:
            if isinstance(message, Mapping) and message.get("role") in roles:
                text = _text_of(message.get("content"))
                if SCHEMA_MARKER in text:
                    found = text.rsplit(SCHEMA_MARKER, 1)[1]
        if found is not None:
            break
    if found is None:
        return None
    try:
        schema, _ = json.JSONDecoder().raw_decode(found.lstrip())
    except ValueError:
        return None
    return schema if isinstance(schema, (dict, bool)) else None


def schema_in_response_format(response_format: Any) -> tuple[Any, str | None]:
    """(schema, name) sent in a ``json_schema`` ``response_format``; None for what is not there."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None, None
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping):
        return None, None
    schema = spec["schema"] if isinstance(spec.get("schema"), (Mapping, bool)) else None
    name = spec["name"] if isinstance(spec.get("name"), str) and spec["name"] else None
    return schema, name


@functools.lru_cache(maxsize=256)
def _instance_text(schema_text: str, name: str) -> str:
    """A valid instance of the schema (as JSON text, cached), or ``{}`` when none can be produced."""
    from .instances import UnsatisfiableSchemaError, instance_for

    try:
        return json.dumps(instance_for(json.loads(schema_text), name=name))
    except UnsatisfiableSchemaError:
        return "{}"


def _embedding(model: str, text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text`` (SHA-256 in counter mode, centred, normalised)."""
    seed = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
        for i in range(0, len(block), 4):
            values.append(int.from_bytes(block[i:i + 4], "big") / 0xFFFFFFFF * 2 - 1)
    vector = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrent clients must not wait for SYN retries

    def __init__(self, fake: FakeOpenRouter) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__((fake.host, fake.requested_port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client went away, server stopping: nothing worth printing (and never any header)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY the body waits ~40 ms for the
    # client's delayed ACK on every kept-alive request
    disable_nagle_algorithm = True
    server: _HTTPServer
    server_version = "FakeOpenRouter/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: nothing about requests (least of all their headers) is logged."""

    def _serve(self) -> None:
        try:
            raw = self._read_body()
            answer = self.server.fake._answer(
                self.command, self.path, dict(self.headers.items()), raw, connection=self.client_address[1]
            )
            self._write(answer)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, answer: _Answer) -> None:
        fake = self.server.fake
        if answer.delay > 0 and not fake._sleep(answer.delay):
            answer = attrs.evolve(answer, close=True)
        if answer.close:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = ""
        self.send_response(answer.status, reason)
        skip = {"content-length", "transfer-encoding"}
        for name, value in answer.headers.items():
            if name.lower() not in skip:
                self.send_header(name, value)
        if answer.stream is None:
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
            self.wfile.flush()
            return
        chunked = self.request_version >= "HTTP/1.1"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        for piece in answer.stream:
            if not piece:
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            self.wfile.flush()
            if not fake._sleep(fake.stream_pause):
                self.close_connection = True
                return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


def _default_text(model: str) -> str:
    return f"Hello from {model} (local OpenRouter test server)."


class FakeOpenRouter:
    """A local OpenRouter-compatible HTTP server (see the module docstring).

    ``host`` and ``port`` are where it listens (127.0.0.1 and a free port by default);
    ``api_key`` is the only key accepted; ``refuse_modes`` maps a model id (no ``:variant``) to the
    ``response_format`` types it refuses (404 for json_schema, 400 for json_object, as OpenRouter
    does); ``padding`` adds OpenRouter's keep-alive whitespace before JSON bodies; ``latency`` seconds
    pass before every unscripted answer; ``text_reply`` is the plain-text answer (a string, where
    ``{model}`` is replaced, or a function of the model id).
    """

    #: Seconds between two streamed pieces (SSE), so that clients really read them one by one.
    stream_pause: float = 0.002

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        refuse_modes: Mapping[str, set[str] | frozenset[str]] | None = None,
        padding: bool = True,
        latency: float = 0.0,
        text_reply: str | Callable[[str], str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        source = DEFAULT_REFUSE_MODES if refuse_modes is None else refuse_modes
        self.refuse_modes: dict[str, set[str]] = {model: set(modes) for model, modes in source.items()}
        self.padding = padding
        self.latency = latency
        self.text_reply = text_reply
        #: True: reasoning comes as a ``<think>`` block at the start of the content (``reasoning`` null),
        #: as some open-weight models send it; False: in ``message.reasoning`` and ``reasoning_details``.
        self.think_in_content = False
        self.host, self.requested_port = host, port
        #: Every request but ``GET /models``, in arrival order: the generation path's requests (chat,
        #: embeddings, generation, key...), which scripts answer.
        self.requests: list[RecordedRequest] = []
        #: ``GET /models`` requests (the model catalog's fetches), kept apart from `requests` so that a test
        #: counts the requests of the generation path; scripts never answer them (see `catalog_answer`).
        self.catalog_requests: list[RecordedRequest] = []
        #: Every request of both lists above, in arrival order.
        self.all_requests: list[RecordedRequest] = []
        #: When set, the answer to every ``GET /models`` (e.g. ``Scripted(status=500)``); None: the listing.
        self.catalog_answer: Scripted | None = None
        self.generations: dict[str, dict[str, Any]] = {}
        #: Prompt caching, billed like OpenRouter's providers (`caching.PromptCache`): Anthropic's
        #: breakpoints and OpenAI's automatic prefixes; ``usage`` reports what it read and wrote.
        self.prompt_cache = PromptCache()
        self._scripts: deque[Scripted] = deque()
        self._replies: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"<FakeOpenRouter {where}>"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenRouter:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread; a no-op when already running."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeOpenRouter", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and wake delayed answers. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()
        httpd.shutdown()
        httpd.drop_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeOpenRouter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeOpenRouter:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenRouter is not running: call start() or use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>/api/v1`` (only while running; host 127.0.0.1 unless given)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/api/v1"

    # -- scripting -------------------------------------------------------------------------------

    def enqueue(self, *scripts: Scripted) -> None:
        """Answer the next requests (any path but ``GET /models``, no auth check) with ``scripts``, in order."""
        for script in scripts:
            if not isinstance(script, Scripted):
                raise TypeError(f"enqueue() takes Scripted answers, got {type(script).__name__}")
        with self._lock:
            self._scripts.extend(scripts)

    @property
    def pending(self) -> int:
        """How many scripted answers are still queued."""
        with self._lock:
            return len(self._scripts)

    def set_reply(self, schema_name: str, content: Any) -> None:
        """Answer ``content`` (any JSON value, used as is: it need not validate) to every request whose
        schema is named ``schema_name`` (``json_schema.name``, else the schema's ``title``, else "response").

        ``content`` may also be a function: it gets a valid instance of the request's schema (a fresh
        dict) and returns the value to answer, e.g. ``lambda valid: {**valid, "response_body": "Hi"}``.
        A function of two parameters gets the request's ``messages`` (the list as sent; None when it
        makes a tool call's arguments) as well, to answer from the prompt (ids the prompt lists, say). ``schema_name`` ``"*"`` answers every schema that
        has no reply of its own."""
        if callable(content):
            content = _ReplyFunction.of(content)
        with self._lock:
            self._replies[schema_name] = content

    def clear(self) -> None:
        """Forget recorded requests, queued scripts, replies and generations (``refuse_modes`` stay)."""
        with self._lock:
            self.requests.clear()
            self.catalog_requests.clear()
            self.all_requests.clear()
            self._scripts.clear()
            self._replies.clear()
            self.generations.clear()

    def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; False when it stopped."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    # -- dispatch --------------------------------------------------------------------------------

    def _answer(
        self, method: str, target: str, raw_headers: Mapping[str, str], raw: bytes, *, connection: int = 0
    ) -> _Answer:
        split = urlsplit(target)
        headers: dict[str, str] = {}
        for name, value in raw_headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            body: Any = json.loads(raw) if raw.strip() else None
            malformed = False
        except ValueError:
            body, malformed = None, True
        record = RecordedRequest(method, split.path, headers, body, raw, time.monotonic(), split.query, connection)
        path = split.path.rstrip("/")
        with self._lock:
            self.all_requests.append(record)
        if method == "GET" and path == "/api/v1/models":  # the catalog: outside the scripted queue
            with self._lock:
                self.catalog_requests.append(record)
            script = self.catalog_answer
        else:
            with self._lock:
                self.requests.append(record)
                script = self._scripts.popleft() if self._scripts else None
        if script is not None:
            return self._scripted(script)
        answer = self._route(method, path, parse_qs(split.query), headers, body, malformed)
        if self.latency > 0:
            answer = attrs.evolve(answer, delay=answer.delay + self.latency)
        return answer

    def _scripted(self, script: Scripted) -> _Answer:
        headers = dict(script.headers)
        has_type = any(k.lower() == "content-type" for k in headers)
        if script.close:
            return _Answer(script.status, headers, delay=script.delay, close=True)
        if script.sse is not None:
            if not has_type:
                headers["Content-Type"] = "text/event-stream"
                headers.setdefault("Cache-Control", "no-cache")
            pieces = [p.encode() for p in script.sse]
            return _Answer(script.status, headers, stream=pieces, delay=script.delay)
        if script.body is not None:
            data = script.body.encode() if isinstance(script.body, str) else bytes(script.body)
        elif script.json is not None:
            data = json.dumps(script.json).encode()
        else:
            data = b""
        if data and not has_type:
            headers["Content-Type"] = "application/json"
        return _Answer(script.status, headers, data, delay=script.delay)

    def _route(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str],
        body: Any, malformed: bool,
    ) -> _Answer:
        routes: dict[str, tuple[str, Callable[[], _Answer], bool]] = {
            "/api/v1/chat/completions": ("POST", lambda: self._chat(body), True),
            "/api/v1/embeddings": ("POST", lambda: self._embeddings(body), True),
            "/api/v1/models": ("GET", lambda: self._models(query), False),
            "/api/v1/generation": ("GET", lambda: self._generation(query), True),
            "/api/v1/key": ("GET", self._key, True),
        }
        route = routes.get(path)
        if route is None:
            return _error(404, f"Not Found: {path}")
        wanted, handler, needs_auth = route
        if needs_auth:
            refusal = self._check_auth(headers)
            if refusal is not None:
                return refusal
        if method != wanted:
            return _error(405, f"Method {method} not allowed on {path}")
        if malformed:
            return _error(400, "Invalid JSON body")
        return handler()

    def _check_auth(self, headers: Mapping[str, str]) -> _Answer | None:
        value = headers.get("authorization", "").strip()
        if not value:
            return _error(401, "Missing Authentication header")
        scheme, _, key = value.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            return _error(401, "No auth credentials found")
        return None

    def _json(self, payload: Any, headers: Mapping[str, str] | None = None) -> _Answer:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        if self.padding:
            text = PADDING + text
        return _Answer(200, {"Content-Type": "application/json", **(headers or {})}, text.encode())

    # -- chat completions ------------------------------------------------------------------------

    def _refusal(self, model: str, mode: str | None) -> _Answer | None:
        base = model.split(":", 1)[0]
        modes = self.refuse_modes.get(base) or self.refuse_modes.get(model) or set()
        if mode is None or mode not in modes:
            return None
        if mode == "json_schema":
            return _error(404, NO_ENDPOINTS, user_id=True)
        return _error(
            400,
            "Provider returned error",
            metadata={"provider_name": "DeepInfra", "raw": '{"error":"JSON mode is not supported for this model"}'},
            user_id=True,
        )

    def _chat(self, body: Any) -> _Answer:
        if not isinstance(body, Mapping):
            return _error(400, "Invalid JSON body")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, 'Input required: specify "prompt" or "messages"')
        fallbacks = [m for m in body.get("models") or [] if isinstance(m, str)]
        candidates = [m for m in [body.get("model"), *fallbacks] if isinstance(m, str) and m]
        candidates = list(dict.fromkeys(candidates)) or ["openai/gpt-4o-mini"]
        response_format = body.get("response_format")
        mode = response_format.get("type") if isinstance(response_format, Mapping) else None
        first_refusal: _Answer | None = None
        for requested in candidates:
            refusal = self._refusal(requested, mode)
            if refusal is None:
                return self._complete(requested, body, messages, response_format, mode)
            first_refusal = first_refusal or refusal
        assert first_refusal is not None
        return first_refusal

    def _content(
        self, model: str, messages: list[Any], response_format: Any, mode: str | None
    ) -> str:
        schema, name = schema_in_response_format(response_format)
        if schema is None:
            schema = _schema_in_prompt(messages)
        if name is None:
            title = schema.get("title") if isinstance(schema, Mapping) else None
            name = title if isinstance(title, str) and title else "response"
        json_wanted = schema is not None or mode in ("json_schema", "json_object")
        if not json_wanted:
            return self._plain_text(model)
        sanitized = re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_")[:64]
        with self._lock:
            if name in self._replies:
                value = self._replies[name]
            elif sanitized in self._replies:
                value = self._replies[sanitized]
            else:
                value = self._replies.get("*", _MISSING)
        if value is _MISSING or isinstance(value, _ReplyFunction):
            if schema is None:
                valid: Any = {"response": self._plain_text(model)}
            else:
                valid = json.loads(_instance_text(json.dumps(schema, sort_keys=True), name))
            value = valid if value is _MISSING else value(valid, messages)
        last = messages[-1] if messages else None
        prefill = (
            isinstance(last, Mapping) and last.get("role") == "assistant" and _text_of(last.get("content")).strip() == "{"
        )
        return style_json(value, model, response_format_sent=mode is not None, prefill=prefill)

    def _tool_arguments(self, parameters: Any, name: str) -> Any:
        """A tool call's arguments: the reply set for ``name`` (`set_reply`), else a valid instance."""
        with self._lock:
            value = self._replies.get(name, _MISSING)
        valid = json.loads(_instance_text(json.dumps(parameters, sort_keys=True), name))
        if value is _MISSING:
            return valid
        return value(valid, None) if isinstance(value, _ReplyFunction) else value

    def _plain_text(self, model: str) -> str:
        if self.text_reply is None:
            return _default_text(model)
        if callable(self.text_reply):
            return self.text_reply(model)
        return self.text_reply.replace("{model}", model)

    def _complete(
        self, requested: str, body: Mapping[str, Any], messages: list[Any], response_format: Any, mode: str | None
    ) -> _Answer:
        model = requested.split(":", 1)[0]
        family = family_of(model)
        calls = plan_tool_calls(body, messages, family, self._tool_arguments, f"{time.time_ns()}")
        after_tools = tool_result_text(messages) if mode is None and _schema_in_prompt(messages) is None else None
        if calls is not None:
            content = ""
        else:
            content = after_tools if after_tools is not None else self._content(model, messages, response_format, mode)
        reasoning = reasoning_parts(body, family)
        if reasoning is not None and self.think_in_content:
            content, reasoning = f"<think>{reasoning[0]}</think>\n{content}", None
        # billed like the real thing: the messages, and before them the tools and the response_format schema
        preamble = ""
        if isinstance(body.get("tools"), list):
            preamble += json.dumps(body["tools"], separators=(",", ":"))
        if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
            preamble += json.dumps(response_format.get("json_schema"), separators=(",", ":"))
        prompt_chars = len(preamble) + sum(len(_text_of(m.get("content"))) for m in messages if isinstance(m, Mapping))
        prompt_tokens = _tokens(prompt_chars)
        arguments_chars = sum(len(call["function"]["arguments"]) for call in calls or [])
        reasoning_tokens = _tokens(len(reasoning[0])) if reasoning is not None else 0
        completion_tokens = _tokens(len(content) + arguments_chars) + reasoning_tokens
        finish = "stop" if calls is None else "tool_calls"
        native = ("end_turn" if calls is None else "tool_use") if family == "anthropic" else finish
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < completion_tokens:
            content = content[: limit * 4]
            completion_tokens = limit
            finish = "length"
            native = "max_tokens" if family == "anthropic" else "length"
        prompt_price, completion_price = price_of(requested)
        bill = self.prompt_cache.bill(model, messages, answered_in=self.latency, preamble=preamble)
        if bill.error is not None:
            return _error(400, bill.error)
        cached, written = min(bill.cached_tokens, prompt_tokens), min(bill.cache_write_tokens, prompt_tokens)
        input_cost = (
            (prompt_tokens - cached - written) * prompt_price
            + cached * prompt_price * bill.read_price
            + written * prompt_price * bill.write_price
        )
        cost = round(input_cost + completion_tokens * completion_price, 12)
        details: dict[str, Any] = {"cached_tokens": cached, "cache_write_tokens": written, "audio_tokens": 0}
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": cost,
            "is_byok": False,
            "prompt_tokens_details": details,
            "cost_details": {"upstream_inference_cost": None},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        }
        generation_id = _generation_id()
        created = int(time.time())
        provider = provider_of(model)
        fingerprint = "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10] if family == "openai" else None
        with self._lock:
            self.generations[generation_id] = {
                "id": generation_id,
                "model": model,
                "provider_name": provider,
                "total_cost": cost,
                "tokens_prompt": prompt_tokens,
                "tokens_completion": completion_tokens,
                "native_tokens_prompt": prompt_tokens,
                "native_tokens_completion": completion_tokens,
                "native_tokens_cached": cached,
                "native_tokens_cache_write": written,
                "finish_reason": finish,
                "native_finish_reason": native,
                "streamed": bool(body.get("stream")),
                "cancelled": False,
                "latency": int(self.latency * 1000),
                "generation_time": int(self.latency * 1000),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(created)),
                "is_byok": False,
            }
        headers = {"X-Generation-Id": generation_id}
        head: dict[str, Any] = {"id": generation_id, "provider": provider, "model": model}
        if body.get("stream") is True:
            return self._stream(head, created, fingerprint, content, finish, native, usage, headers, calls, reasoning)
        message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else content),
                                   "refusal": None, "reasoning": reasoning[0] if reasoning is not None else None}
        if reasoning is not None:
            message["reasoning_details"] = reasoning[1]
        if calls is not None:
            message["tool_calls"] = calls
        payload: dict[str, Any] = {
            **head,
            "object": "chat.completion",
            "created": created,
            "choices": [
                {
                    "logprobs": None,
                    "finish_reason": finish,
                    "native_finish_reason": native,
                    "index": 0,
                    "message": message,
                }
            ],
        }
        if fingerprint is not None:
            payload["system_fingerprint"] = fingerprint
        payload["usage"] = usage
        return self._json(payload, headers)

    def _stream(
        self, head: Mapping[str, Any], created: int, fingerprint: str | None, content: str, finish: str,
        native: str, usage: Mapping[str, Any], headers: Mapping[str, str],
        calls: list[dict[str, Any]] | None = None, reasoning: tuple[str, list[dict[str, Any]]] | None = None,
    ) -> _Answer:
        return _Answer(
            200,
            {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers},
            stream=_sse_pieces(head, created, fingerprint, content, finish, native, usage, calls, reasoning),
        )

    # -- other endpoints -------------------------------------------------------------------------

    def _embeddings(self, body: Any) -> _Answer:
        if not isinstance(body, Mapping):
            return _error(400, "Invalid JSON body")
        model = body.get("model")
        raw_input = body.get("input")
        if not isinstance(model, str) or not model:
            return _error(400, "model is required")
        texts = [raw_input] if isinstance(raw_input, str) else raw_input
        if not isinstance(texts, list) or not texts:
            return _error(400, "input must be a non-empty string or list of strings")
        texts = [t if isinstance(t, str) else json.dumps(t) for t in texts]
        base = model.split(":", 1)[0]
        dimensions = body.get("dimensions")
        if dimensions is None:
            dimensions = EMBEDDING_DIMENSIONS.get(base, DEFAULT_EMBEDDING_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 0 < dimensions <= 65_536:
            return _error(400, "dimensions must be a positive integer")
        prompt_tokens = sum(_tokens(len(t)) for t in texts)
        cost = round(prompt_tokens * price_of(model)[0], 15)
        payload = {
            "object": "list",
            "data": [
                {"object": "embedding", "embedding": _embedding(base, text, dimensions), "index": i}
                for i, text in enumerate(texts)
            ],
            # OpenRouter reports the upstream name here (without the "openai/" prefix).
            "model": base.split("/", 1)[-1],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens,
                "cost": cost,
                "is_byok": False,
                "cost_details": {"upstream_inference_cost": cost},
            },
            "provider": provider_of(base),
            "id": _generation_id("gen-emb"),
        }
        return self._json(payload)

    def _models(self, query: Mapping[str, list[str]]) -> _Answer:
        wanted = {p for value in query.get("supported_parameters", []) for p in value.split(",") if p}
        data: list[dict[str, Any]] = []
        for entry in MODELS:
            refused = self.refuse_modes.get(entry["id"], set())
            parameters = [
                p for p in entry["supported_parameters"]
                if not (p == "structured_outputs" and "json_schema" in refused)
                and not (p == "response_format" and "json_object" in refused)
            ]
            if wanted <= set(parameters):
                data.append({**entry, "supported_parameters": parameters})
        return self._json({"data": data})

    def _generation(self, query: Mapping[str, list[str]]) -> _Answer:
        ids = query.get("id") or [""]
        with self._lock:
            data = self.generations.get(ids[0])
        if data is None:
            return _error(404, f"Generation {ids[0]} not found")
        return self._json({"data": data})

    def _key(self) -> _Answer:
        with self._lock:
            spent = sum(float(g["total_cost"]) for g in self.generations.values())
        data = {
            "label": "local-test-key",
            "limit": None,
            "usage": round(spent, 12),
            "limit_remaining": None,
            "is_free_tier": False,
            "rate_limit": {"requests": -1, "interval": "10s"},
        }
        return self._json({"data": data})


_MISSING: Any = object()


@attrs.frozen
class _ReplyFunction:
    """A `FakeOpenRouter.set_reply` function, called with the valid instance, and with the request's
    messages too when it takes two parameters."""

    function: Callable[..., Any]
    wants_messages: bool

    @classmethod
    def of(cls, function: Callable[..., Any]) -> _ReplyFunction:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: the one-argument form
            return cls(function, False)
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        varargs = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        return cls(function, varargs or len(positional) >= 2)

    def __call__(self, valid: Any, messages: list[Any] | None) -> Any:
        return self.function(valid, messages) if self.wants_messages else self.function(valid)
