"""`LoadServer`: a fast local OpenRouter-compatible server for load tests and benchmarks.

    with LoadServer(latency=0.2, rate_limit_every=0) as server:
        client = ...(base_url=server.base_url, api_key=server.api_key)

or, from a shell::

    python -m openrouter_registry.testing.loadserver --port 8099 --latency 0.2

Unlike the threaded `FakeOpenRouter` (one thread per connection, every request recorded, scriptable),
this server is one asyncio event loop in its own process, so thousands of requests can wait out
their simulated model ``latency`` at once (a timer each, no thread) and the server never competes
with the client under test for the GIL. It records nothing and cannot be scripted; it answers:

- ``POST /api/v1/chat/completions``: a real-shaped reply (keep-alive whitespace before the JSON,
  a ``gen-`` id, ``provider``, ``usage`` with ``cost``), worded as `FakeOpenRouter` words it. The
  content is a valid instance of the request's ``response_format`` JSON Schema (or of a schema
  given in the prompt after ``JSON Schema:``), built once per schema and cached. With ``"stream":
  true`` it answers SSE: a ``: OPENROUTER PROCESSING`` comment at once, the chunks after
  ``latency``, then the usage chunk and ``data: [DONE]``.
- ``POST /api/v1/embeddings`` and ``GET /api/v1/models``, as `FakeOpenRouter` does.
- ``rate_limit_every=N``: every Nth request (counted over all requests) gets OpenRouter's 429 body
  with ``Retry-After: <retry_after>`` (whole seconds, as OpenRouter sends it) at once.

Requests without ``Authorization: Bearer <api_key>`` get OpenRouter's 401. The server logs nothing.
The paths are also served without the ``/api/v1`` prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import string
import subprocess
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from .server import (
    DEFAULT_API_KEY,
    DEFAULT_EMBEDDING_DIMENSIONS,
    EMBEDDING_DIMENSIONS,
    MODELS,
    PADDING,
    PROCESSING,
    _embedding,
    _instance_text,
    _schema_in_prompt,
    _text_of,
    _tokens,
    price_of,
    schema_in_response_format,
)
from .child import start_server_process, stop_server_process
from .styles import family_of, provider_of, style_json

__all__ = ["LoadServer", "serve"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 429: "Too Many Requests"}
_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024
_ALNUM = string.ascii_letters + string.digits
_PADDING = PADDING.encode()


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _error_body(status: int, message: str, **extra: Any) -> bytes:
    error: dict[str, Any] = {"message": message, "code": status}
    error.update(extra)
    return _json_bytes({"error": error, "user_id": "user_local"})


@lru_cache(maxsize=1024)
def _reply_content(model: str, schema_text: str | None, name: str, mode: str | None, prefill: bool) -> str:
    """The assistant text for ``model``: a valid instance of the schema (JSON text) worded as the
    family words JSON; plain text when no JSON was asked for (no schema, no JSON ``mode``)."""
    if schema_text is not None:
        value: Any = json.loads(_instance_text(schema_text, name))
    elif mode in ("json_schema", "json_object"):
        value = {"response": f"Hello from {model}."}
    else:
        return f"Hello from {model} (local OpenRouter load server)."
    return style_json(value, model, response_format_sent=mode is not None, prefill=prefill)


@lru_cache(maxsize=1024)
def _schema_key(response_format_text: str) -> tuple[str | None, str, str | None]:
    """(canonical schema text or None, schema name, mode) for a ``response_format`` (as JSON)."""
    response_format = json.loads(response_format_text)
    mode = response_format.get("type") if isinstance(response_format, Mapping) else None
    return _canonical(*schema_in_response_format(response_format)) + (mode if isinstance(mode, str) else None,)


def _canonical(schema: Any, name: str | None) -> tuple[str | None, str]:
    if name is None:
        title = schema.get("title") if isinstance(schema, Mapping) else None
        name = title if isinstance(title, str) and title else "response"
    return (None if schema is None else json.dumps(schema, sort_keys=True)), name


@lru_cache(maxsize=256)
def _embeddings_body(model: str, texts: tuple[str, ...], dimensions: int) -> bytes:
    base = model.split(":", 1)[0]
    prompt_tokens = sum(_tokens(len(t)) for t in texts)
    cost = round(prompt_tokens * price_of(model)[0], 15)
    return _PADDING + _json_bytes({
        "object": "list",
        "data": [{"object": "embedding", "embedding": _embedding(base, t, dimensions), "index": i}
                 for i, t in enumerate(texts)],
        "model": base.split("/", 1)[-1],
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens, "cost": cost, "is_byok": False,
                  "cost_details": {"upstream_inference_cost": cost}},
        "provider": provider_of(base),
        "id": f"gen-emb-{int(time.time())}-{''.join(random.choices(_ALNUM, k=20))}",
    })


_MODELS_BODY = _PADDING + _json_bytes({"data": list(MODELS)})


_ID = "@@generation@@"
_CREATED = '"@@created@@"'


@lru_cache(maxsize=512)
def _chat_template(raw: bytes, padding: bytes) -> tuple[int, bytes, tuple[bytes, ...] | None]:
    """(status, body, SSE pieces or None) answering the chat request ``raw``, with `_ID` and
    `_CREATED` where each answer puts its own generation id and time. Cached by the request's
    bytes: a load test sends the same few bodies again and again, and the server must stay cheap."""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return 400, _error_body(400, "Invalid JSON body"), None
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, _error_body(400, 'Input required: specify "prompt" or "messages"'), None
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        model = "openai/gpt-4o-mini"
    model = model.split(":", 1)[0]
    response_format = payload.get("response_format")
    schema_text, name, mode = _schema_key(json.dumps(response_format))
    if schema_text is None:
        schema_text, name = _canonical(_schema_in_prompt(messages), None)
    last = messages[-1]
    prefill = isinstance(last, dict) and last.get("role") == "assistant" and last.get("content") == "{"
    content = _reply_content(model, schema_text, name, mode, prefill)
    prompt_chars = sum(len(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
    if schema_text is not None and response_format is not None:
        prompt_chars += len(schema_text)
    prompt_tokens = _tokens(prompt_chars)
    completion_tokens = _tokens(len(content))
    prompt_price, completion_price = price_of(model)
    cost = round(prompt_tokens * prompt_price + completion_tokens * completion_price, 12)
    usage = {
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens, "cost": cost, "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "cost_details": {"upstream_inference_cost": None},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    head: dict[str, Any] = {"id": _ID, "provider": provider_of(model), "model": model}
    fingerprint = {"system_fingerprint": "fp_local_load"} if family_of(model) == "openai" else {}
    if payload.get("stream") is True:
        def chunk(choices: list[Any], **extra: Any) -> bytes:
            data = {**head, "object": "chat.completion.chunk", "created": _CREATED, "choices": choices,
                    **fingerprint, **extra}
            return b"data: " + _json_bytes(data) + b"\n\n"

        def choice(text: str, finish: str | None) -> dict[str, Any]:
            return {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": finish,
                    "native_finish_reason": finish, "logprobs": None}

        pieces = [chunk([choice(content[i:i + 16], None)]) for i in range(0, len(content), 16)]
        pieces += [chunk([choice("", "stop")]), chunk([], usage=usage), b"data: [DONE]\n\n"]
        return 200, b"", tuple(pieces)
    reply = {
        **head, "object": "chat.completion", "created": _CREATED,
        "choices": [{"logprobs": None, "finish_reason": "stop", "native_finish_reason": "stop", "index": 0,
                     "message": {"role": "assistant", "content": content, "refusal": None, "reasoning": None}}],
        **fingerprint, "usage": usage,
    }
    return 200, padding + _json_bytes(reply), None


class _Answer:
    """What to write for one request: a whole ``body``, or an SSE stream: ``first`` at once and
    ``rest`` later (both already in chunked transfer encoding)."""

    __slots__ = ("status", "headers", "body", "first", "rest", "delay")

    def __init__(self, status: int, body: bytes = b"", *, headers: Sequence[tuple[str, str]] = (),
                 first: bytes | None = None, rest: bytes = b"", delay: float = 0.0) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.first = first
        self.rest = rest
        self.delay = delay


class _App:
    """Routing and reply building (no I/O), shared by every connection of one server."""

    def __init__(self, *, api_key: str, latency: float, rate_limit_every: int, retry_after: int,
                 padding: bool) -> None:
        self.auth = f"Bearer {api_key}"
        self.latency = latency
        self.rate_limit_every = rate_limit_every
        self.retry_after = retry_after
        self.padding = _PADDING if padding else b""
        self.count = 0
        self.ids = 0
        self.prefix = "".join(random.choices(_ALNUM, k=12))

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        self.count += 1
        path = path.split("?", 1)[0].rstrip("/")
        if path.startswith("/api/v1"):
            path = path[len("/api/v1"):]
        if self.rate_limit_every > 0 and self.count % self.rate_limit_every == 0:
            return self._rate_limited()
        if path == "/models":
            return self._allowed(method, "GET") or _Answer(200, _MODELS_BODY, delay=self.latency)
        if path not in ("/chat/completions", "/embeddings"):
            return _Answer(404, _error_body(404, f"Not Found: {path}"))
        auth = headers.get("authorization", "")
        if not auth.strip():
            return _Answer(401, _error_body(401, "Missing Authentication header"))
        if auth.strip() != self.auth:
            return _Answer(401, _error_body(401, "No auth credentials found"))
        refused = self._allowed(method, "POST")
        if refused is not None:
            return refused
        if path == "/chat/completions":
            return self._chat(body)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _Answer(400, _error_body(400, "Invalid JSON body"))
        return self._embeddings(payload)

    def _allowed(self, method: str, wanted: str) -> _Answer | None:
        if method == wanted:
            return None
        return _Answer(405, _error_body(405, f"Method {method} not allowed"))

    def _rate_limited(self) -> _Answer:
        reset = int((time.time() + self.retry_after) * 1000)
        body = _error_body(429, "Rate limit exceeded: local load server (every "
                           f"{self.rate_limit_every}th request).",
                           metadata={"headers": {"X-RateLimit-Limit": str(self.rate_limit_every),
                                                 "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}})
        return _Answer(429, body, headers=(("Retry-After", str(self.retry_after)),))

    def _generation_id(self) -> str:
        self.ids += 1
        return f"gen-{int(time.time())}-{self.prefix}{self.ids:08d}"

    def _chat(self, raw: bytes) -> _Answer:
        status, body, pieces = _chat_template(raw, self.padding)
        if status != 200:
            return _Answer(status, body)
        generation = self._generation_id()
        ids, created = generation.encode(), b"%d" % int(time.time())
        headers = (("X-Generation-Id", generation),)
        if pieces is None:
            body = body.replace(_ID.encode(), ids).replace(_CREATED.encode(), created)
            return _Answer(200, body, headers=headers, delay=self.latency)
        rest = b"".join(_chunk(p.replace(_ID.encode(), ids).replace(_CREATED.encode(), created)) for p in pieces)
        return _Answer(200, headers=headers, first=_chunk(PROCESSING.encode()), rest=rest, delay=self.latency)

    def _embeddings(self, payload: dict[str, Any]) -> _Answer:
        model = payload.get("model")
        raw = payload.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(model, str) or not model or not isinstance(texts, list) or not texts:
            return _Answer(400, _error_body(400, "model and a non-empty input are required"))
        base = model.split(":", 1)[0]
        dimensions = payload.get("dimensions") or EMBEDDING_DIMENSIONS.get(base, DEFAULT_EMBEDDING_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 0 < dimensions <= 65_536:
            return _Answer(400, _error_body(400, "dimensions must be a positive integer"))
        key = tuple(t if isinstance(t, str) else json.dumps(t) for t in texts)
        return _Answer(200, _embeddings_body(model, key, dimensions), delay=self.latency)


def _head(status: int, headers: Sequence[tuple[str, str]], *, length: int | None, content_type: str,
          close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"Content-Type: {content_type}"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
        lines.append("Cache-Control: no-cache")
    else:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: requests are answered one at a time, in order (pipelined ones wait)."""

    def __init__(self, app: _App) -> None:
        self.app = app
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Answer the next whole request in the buffer, if there is one."""
        transport = self.transport
        if transport is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self._fail(413)
            return
        try:
            head = bytes(self.buffer[:end]).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, target, version = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        except ValueError:
            self._fail(400)
            return
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = self._dechunk(start)
            if parsed is None:
                return
            body, consumed = parsed
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                self._fail(400)
                return
            if length > _MAX_BODY:
                self._fail(413)
                return
            if len(self.buffer) < start + length:
                return
            body, consumed = bytes(self.buffer[start:start + length]), start + length
        del self.buffer[:consumed]
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        self.busy = True
        answer = self.app.answer(method, target, headers, body)
        if answer.first is not None:
            transport.write(_head(answer.status, answer.headers, length=None, content_type="text/event-stream",
                                  close=close) + answer.first)
        if answer.delay > 0:
            self.timer = asyncio.get_running_loop().call_later(answer.delay, self._finish, answer, close)
        else:
            self._finish(answer, close)

    def _dechunk(self, start: int) -> tuple[bytes, int] | None:
        """(body, bytes consumed) of a chunked request body, or None while incomplete."""
        parts: list[bytes] = []
        at = start
        while True:
            line_end = self.buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(self.buffer[at:line_end]).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0 and self.buffer[line_end:line_end + 4] != b"\r\n\r\n":
                    return None
                return b"".join(parts), (trailer_end if trailer_end >= 0 else line_end) + 4
            if len(self.buffer) < line_end + 2 + size + 2:
                return None
            parts.append(bytes(self.buffer[line_end + 2:line_end + 2 + size]))
            at = line_end + 2 + size + 2

    def _finish(self, answer: _Answer, close: bool) -> None:
        self.timer = None
        transport = self.transport
        if transport is None:
            return
        if answer.first is not None:
            transport.write(answer.rest + b"0\r\n\r\n")
        else:
            transport.write(_head(answer.status, answer.headers, length=len(answer.body),
                                  content_type="application/json", close=close) + answer.body)
        self.busy = False
        if close:
            transport.close()
        elif self.buffer:
            self._next()

    def _fail(self, status: int) -> None:
        if self.transport is not None:
            body = _error_body(status, _REASONS[status])
            self.transport.write(_head(status, (), length=len(body), content_type="application/json", close=True)
                                 + body)
            self.transport.close()


async def serve(*, host: str = "127.0.0.1", port: int = 0, api_key: str = DEFAULT_API_KEY, latency: float = 0.0,
                rate_limit_every: int = 0, retry_after: int = 1, padding: bool = True,
                ready: asyncio.Future[int] | None = None) -> None:
    """Serve until cancelled; ``ready`` (if given) gets the bound port once listening."""
    app = _App(api_key=api_key, latency=latency, rate_limit_every=rate_limit_every, retry_after=retry_after,
               padding=padding)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(app), host, port, backlog=4096, reuse_address=True)
    async with server:
        bound = int(server.sockets[0].getsockname()[1])
        if ready is not None:
            ready.set_result(bound)
        await server.serve_forever()


class LoadServer:
    """Runs `serve` in a subprocess (``python -m openrouter_registry.testing.loadserver``).

    Use it as a context manager; ``base_url`` (``http://127.0.0.1:<port>/api/v1``) and ``api_key``
    are set while it runs. ``latency`` seconds pass before each answer; ``rate_limit_every=N``
    answers every Nth request 429 with ``Retry-After: <retry_after>``; ``uvloop`` uses uvloop in the
    server process when it is installed.
    """

    def __init__(self, *, latency: float = 0.0, rate_limit_every: int = 0, retry_after: int = 1,
                 api_key: str = DEFAULT_API_KEY, padding: bool = True, uvloop: bool = True,
                 start_timeout: float = 30.0) -> None:
        if latency < 0 or rate_limit_every < 0 or retry_after < 0:
            raise ValueError("latency, rate_limit_every and retry_after must not be negative")
        self.latency = latency
        self.rate_limit_every = rate_limit_every
        self.retry_after = retry_after
        self.api_key = api_key
        self.padding = padding
        self.uvloop = uvloop
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<LoadServer {self.base_url if self.port else 'stopped'} latency={self.latency}>"

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("LoadServer is not running: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> LoadServer:
        if self._process is not None:
            return self
        args = ["--port", "0", "--latency", str(self.latency), "--rate-limit-every", str(self.rate_limit_every),
                "--retry-after", str(self.retry_after)]
        if not self.padding:
            args.append("--no-padding")
        if not self.uvloop:
            args.append("--no-uvloop")
        self._process, self.port = start_server_process(
            "openrouter_registry.testing.loadserver", args, timeout=self.start_timeout, what="load server",
            env={"OPENROUTER_LOADSERVER_KEY": self.api_key},  # not on the command line (visible in `ps`)
        )
        return self

    def stop(self) -> None:
        process, self._process, self.port = self._process, None, None
        if process is not None:
            stop_server_process(process, timeout=5)

    def __enter__(self) -> LoadServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m openrouter_registry.testing.loadserver",
                                     description="A fast local OpenRouter-compatible server for load tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-limit-every", type=int, default=0, help="answer every Nth request 429")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of those 429s")
    parser.add_argument("--no-padding", action="store_true", help="no keep-alive whitespace before JSON bodies")
    parser.add_argument("--no-uvloop", action="store_true", help="the standard event loop even if uvloop is installed")
    args = parser.parse_args(argv)
    api_key = os.environ.get("OPENROUTER_LOADSERVER_KEY") or DEFAULT_API_KEY

    async def run() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(serve(host=args.host, port=args.port, api_key=api_key, latency=args.latency,
                                           rate_limit_every=args.rate_limit_every, retry_after=args.retry_after,
                                           padding=not args.no_padding, ready=ready))
        first: set[asyncio.Future[Any]] = {task, ready}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            print(f"listening {ready.result()} http://{args.host}:{ready.result()}/api/v1", flush=True)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    runner: Any = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop  # type: ignore[import-not-found,unused-ignore]

            runner = uvloop.run
        except ImportError:
            pass
    runner(run())


if __name__ == "__main__":
    main()
