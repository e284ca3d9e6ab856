"""`FaultServer`: a local OpenRouter-shaped server that answers with faults, for soak tests and benchmarks.

    with FaultServer(seed=7) as server:            # the default mix: mostly faults, some normal answers
        settings = Settings.from_env(base_url=server.base_url, api_key=server.api_key, timeout=2)
        ...
        server.stats()                              # {"ok": 812, "status_429": 95, ...}: what it served

    with FaultServer(mix={"ok": 1, "drip": 1}, process=True) as server:   # its own process
        ...

or, from a shell: ``python -m openrouter_registry.testing.faultserver '{"mix": {"ok": 1, "reset": 1}}'``
(the `FaultServer` arguments as JSON; prints ``listening <port>``).

One asyncio event loop (in a daemon thread, or with ``process=True`` in a child process so it never
competes with the client for the GIL) serves any number of connections at once, HTTP/1.1 with
keep-alive. Each request to ``/chat/completions`` (JSON or ``"stream": true``) or ``/embeddings``
(with or without the ``/api/v1`` prefix) gets one answer drawn from ``mix`` by a ``random.Random(seed)``
in arrival order. Any ``Authorization`` is accepted. The kinds (`KINDS`):

- ``ok``: a normal answer: a chat completion (content ``{"city": "Paris", "country": "France"}``,
  usage with cost), an SSE stream of that content ending in a usage chunk and ``[DONE]``, or one
  8-float embedding per input.
- ``status_429`` (with ``Retry-After: 1``), ``status_500``, ``status_502``, ``status_503``, ``status_524``,
  ``status_529``: OpenRouter's JSON error body with that status.
- ``reset``: the connection is reset (TCP RST) as soon as the request has been read.
- ``truncated``: the answer stops half-way and the connection closes (a JSON body shorter than its
  ``Content-Length``; a stream with no ``[DONE]``: cut inside an event and closed or, half the time,
  a body that ends properly between two events).
- ``html``: a 502 HTML error page (what a proxy in front of the API sends).
- ``error_200``: HTTP 200 whose body is ``{"error": {"code": 502, ...}}``.
- ``choice_error``: HTTP 200 with ``choices[0].finish_reason == "error"`` (an embeddings request gets
  ``error_200``).
- ``drip``: the headers of a normal answer, then one byte every ``drip_interval`` seconds.
- ``oversize``: ``oversize_bytes`` of content (one huge JSON string; for a stream, one huge event line),
  sent as fast as the client reads it.
- ``midstream``: a stream that sends two deltas, then OpenRouter's mid-stream error chunk
  (``{"error": {"code": 502, ...}, "choices": [{"finish_reason": "error", ...}]}``); a JSON request gets
  ``error_200``.
- ``keepalive``: headers, then only keep-alive (``: OPENROUTER PROCESSING`` comments for a stream,
  whitespace for a JSON body) every ``keepalive_interval`` seconds, never an answer.

``drip`` and ``keepalive`` go on until the client disconnects or ``hang_limit`` seconds have passed.
The server logs nothing and keeps nothing but counters (`stats`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

from .child import start_server_process, stop_server_process

__all__ = ["FaultServer", "KINDS", "DEFAULT_MIX", "STATUS_KINDS", "serve"]

STATUS_KINDS: Mapping[str, int] = {
    "status_429": 429,
    "status_500": 500,
    "status_502": 502,
    "status_503": 503,
    "status_524": 524,
    "status_529": 529,
}
KINDS: tuple[str, ...] = (
    "ok",
    *STATUS_KINDS,
    "reset",
    "truncated",
    "html",
    "error_200",
    "choice_error",
    "drip",
    "oversize",
    "midstream",
    "keepalive",
)
#: Weights of the default mix: a third normal answers, the rest spread over every fault.
DEFAULT_MIX: Mapping[str, float] = {"ok": 8.0, **{kind: 1.0 for kind in KINDS if kind != "ok"}}

CONTENT = '{"city": "Paris", "country": "France"}'
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 524: "A Timeout Occurred", 529: "Site Overloaded"}
_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_HTML = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
         b"</h1></center><hr><center>cloudflare</center></body></html>")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error(status: int, message: str) -> bytes:
    return _json({"error": {"message": message, "code": status}, "user_id": "user_fault"})


def _usage() -> dict[str, Any]:
    return {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21, "cost": 0.000105}


def _head(status: int, content_type: str, *, length: int | None, extra: Mapping[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Type: {content_type}"]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    lines.extend(f"{name}: {value}" for name, value in (extra or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


class _Request:
    __slots__ = ("path", "stream", "inputs", "model")

    def __init__(self, path: str, body: bytes) -> None:
        self.path = path.split("?", 1)[0].rstrip("/").removeprefix("/api/v1")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        self.stream = payload.get("stream") is True
        raw_input = payload.get("input")
        self.inputs = len(raw_input) if isinstance(raw_input, list) else 1
        model = payload.get("model")
        self.model = model if isinstance(model, str) else "openai/gpt-4o-mini"


class _App:
    """Chooses and writes the answers of one server; all its state lives on the server's loop."""

    def __init__(self, *, mix: Mapping[str, float], seed: int, drip_interval: float, keepalive_interval: float,
                 oversize_bytes: int, hang_limit: float, latency: float) -> None:
        unknown = set(mix) - set(KINDS)
        if unknown or not mix or any(w < 0 for w in mix.values()) or not sum(mix.values()):
            raise ValueError(f"mix must weigh kinds among {', '.join(KINDS)} (unknown: {sorted(unknown)})")
        self.kinds = [kind for kind in mix if mix[kind] > 0]
        self.weights = [mix[kind] for kind in self.kinds]
        self.rng = random.Random(seed)
        self.drip_interval = drip_interval
        self.keepalive_interval = keepalive_interval
        self.oversize_bytes = oversize_bytes
        self.hang_limit = hang_limit
        self.latency = latency
        self.counts: collections.Counter[str] = collections.Counter()
        self.ids = 0

    # --- bodies -----------------------------------------------------------------------------------

    def _id(self) -> str:
        self.ids += 1
        return f"gen-fault-{self.ids:09d}"

    def _chat(self, request: _Request, content: str = CONTENT) -> bytes:
        return _json({
            "id": self._id(), "provider": "OpenAI", "model": request.model, "object": "chat.completion",
            "created": int(time.time()),
            "choices": [{"index": 0, "finish_reason": "stop", "native_finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": _usage(),
        })

    def _events(self, request: _Request, content: str = CONTENT) -> list[bytes]:
        head = {"id": self._id(), "provider": "OpenAI", "model": request.model, "object": "chat.completion.chunk"}

        def event(choices: list[Any], **extra: Any) -> bytes:
            return b"data: " + _json({**head, "choices": choices, **extra}) + b"\n\n"

        pieces = [content] if len(content) > 1024 else [content[i:i + 12] for i in range(0, len(content), 12)]
        events = [b": OPENROUTER PROCESSING\n\n"]
        events += [event([{"index": 0, "delta": {"role": "assistant", "content": p}, "finish_reason": None}])
                   for p in pieces]
        events += [event([{"index": 0, "delta": {}, "finish_reason": "stop"}]), event([], usage=_usage()),
                   b"data: [DONE]\n\n"]
        return events

    def _embeddings(self, request: _Request) -> bytes:
        data = [{"object": "embedding", "index": i, "embedding": [round(0.125 * (i + k + 1), 3) for k in range(8)]}
                for i in range(request.inputs)]
        return _json({"id": self._id(), "object": "list", "model": request.model, "provider": "OpenAI",
                      "data": data, "usage": {"prompt_tokens": 4, "total_tokens": 4, "cost": 0.0000005}})

    def _normal(self, request: _Request) -> bytes:
        return self._embeddings(request) if request.path == "/embeddings" else self._chat(request)

    # --- answers ----------------------------------------------------------------------------------

    def choose(self) -> str:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        self.counts[kind] += 1
        return kind

    async def answer(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Write the answer to ``request``; False when the connection must not be reused."""
        if request.path == "/_stats":
            body = _json(dict(self.counts))
            writer.write(_head(200, "application/json", length=len(body)) + body)
            return True
        if request.path not in ("/chat/completions", "/embeddings"):
            body = _error(404, f"Not Found: {request.path}")
            writer.write(_head(404, "application/json", length=len(body)) + body)
            return True
        kind = self.choose()
        if self.latency:
            await asyncio.sleep(self.latency)
        chat = request.path == "/chat/completions"
        streaming = chat and request.stream
        if kind in ("choice_error", "midstream") and not chat or kind == "midstream" and not streaming:
            kind = "error_200"
        if kind in STATUS_KINDS:
            status = STATUS_KINDS[kind]
            body = _error(status, f"Injected fault: HTTP {status}")
            extra = {"Retry-After": "1"} if status == 429 else None
            writer.write(_head(status, "application/json", length=len(body), extra=extra) + body)
            return True
        if kind == "reset":
            _reset(writer)
            return False
        if kind == "html":
            writer.write(_head(502, "text/html", length=len(_HTML)) + _HTML)
            return True
        if kind == "error_200":
            body = _json({"id": self._id(), "error": {"code": 502, "message": "Injected fault: provider error"}})
            writer.write(_head(200, "application/json", length=len(body)) + body)
            return True
        if kind == "choice_error":
            return await self._choice_error(request, writer, streaming)
        if kind == "keepalive":
            await self._keepalive(writer, streaming)
            return False
        content = "x" * self.oversize_bytes if kind == "oversize" else CONTENT
        if streaming:
            events = self._events(request, content)
            if kind == "midstream":
                error = {"id": self._id(), "error": {"code": 502, "message": "Injected fault: mid-stream"},
                         "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
                events = events[:3] + [b"data: " + _json(error) + b"\n\n", b"data: [DONE]\n\n"]
            return await self._stream(writer, events, kind)
        body = self._chat(request, content) if chat else self._normal(request)
        if kind == "oversize" and not chat:
            body = body[:-1] + b',"padding":"' + b" " * self.oversize_bytes + b'"}'
        return await self._body(writer, body, kind)

    async def _body(self, writer: asyncio.StreamWriter, body: bytes, kind: str) -> bool:
        writer.write(_head(200, "application/json", length=len(body)))
        if kind == "truncated":
            writer.write(body[: len(body) // 2])
            await writer.drain()
            writer.close()
            return False
        if kind == "drip":
            await self._drip(writer, body)
            return False
        await self._write_all(writer, body)
        return True

    async def _stream(self, writer: asyncio.StreamWriter, events: list[bytes], kind: str) -> bool:
        writer.write(_head(200, "text/event-stream", length=None, extra={"Cache-Control": "no-cache"}))
        if kind == "drip":
            await self._drip(writer, b"".join(events), chunked=True)
            return False
        if kind == "truncated":
            cut = b"".join(events[:-3])
            if self.rng.random() < 0.5:  # the body ends cleanly between two events, before [DONE]
                writer.write(_chunk(cut) + b"0\r\n\r\n")
                return True
            writer.write(_chunk(cut + events[-3][: len(events[-3]) // 2]))  # cut inside an event, then closed
            await writer.drain()
            writer.close()
            return False
        for event in events:
            await self._write_all(writer, event, chunked=True)
        writer.write(b"0\r\n\r\n")
        return True

    async def _choice_error(self, request: _Request, writer: asyncio.StreamWriter, streaming: bool) -> bool:
        choice = {"index": 0, "finish_reason": "error", "error": {"code": 503, "message": "Injected fault: choice"}}
        if streaming:
            event = b"data: " + _json({"id": self._id(), "choices": [{**choice, "delta": {}}]}) + b"\n\n"
            return await self._stream(writer, [event, b"data: [DONE]\n\n"], "choice_error")
        body = _json({"id": self._id(), "model": request.model, "choices": [{**choice, "message": {"content": ""}}]})
        writer.write(_head(200, "application/json", length=len(body)) + body)
        return True

    async def _write_all(self, writer: asyncio.StreamWriter, data: bytes, *, chunked: bool = False) -> None:
        """Write ``data`` in pieces of at most 256 KB, waiting for the client to read each (so an
        oversized answer never sits whole in the server's buffers)."""
        step = 256 * 1024
        for start in range(0, max(len(data), 1), step):
            piece = data[start:start + step]
            writer.write(_chunk(piece) if chunked else piece)
            await writer.drain()

    async def _drip(self, writer: asyncio.StreamWriter, data: bytes, *, chunked: bool = False) -> None:
        deadline = time.monotonic() + self.hang_limit
        for i in range(len(data)):
            if time.monotonic() > deadline:
                break
            byte = data[i:i + 1]
            writer.write(_chunk(byte) if chunked else byte)
            await writer.drain()
            await asyncio.sleep(self.drip_interval)
        writer.close()

    async def _keepalive(self, writer: asyncio.StreamWriter, streaming: bool) -> None:
        if streaming:
            writer.write(_head(200, "text/event-stream", length=None, extra={"Cache-Control": "no-cache"}))
            piece = _chunk(b": OPENROUTER PROCESSING\n\n")
        else:
            writer.write(_head(200, "application/json", length=None))
            piece = _chunk(b"\n")
        deadline = time.monotonic() + self.hang_limit
        while time.monotonic() < deadline:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(self.keepalive_interval)
        writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """The next request on a connection, None at its end (or when it is not HTTP we can read)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length > _MAX_BODY:
        return None
    try:
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return _Request(parts[1], body)


async def serve(app: _App, *, host: str = "127.0.0.1", port: int = 0,
                ready: asyncio.Future[int] | None = None) -> None:
    """Serve ``app`` until cancelled; ``ready`` gets the bound port once listening."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None or not await app.answer(request, writer):
                    break
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # a client that went away, or the server stopping
        finally:
            if not writer.is_closing():
                writer.close()

    server = await asyncio.start_server(connection, host, port, backlog=1024, limit=_MAX_HEAD)
    async with server:
        if ready is not None:
            ready.set_result(int(server.sockets[0].getsockname()[1]))
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """``python -m openrouter_registry.testing.faultserver '<config JSON>'``: serve until terminated;
    print ``listening <port>`` once ready."""
    import sys

    config = json.loads((argv if argv is not None else sys.argv[1:])[0])

    async def run() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(serve(_App(**config), ready=ready))
        print(f"listening {await ready}", flush=True)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(run())


class FaultServer:
    """Runs the fault-injecting server in a daemon thread, or with ``process=True`` in a child process.

    ``mix`` weighs the kinds of `KINDS` (default `DEFAULT_MIX`); ``seed`` makes the sequence of kinds
    repeatable; ``drip_interval``, ``keepalive_interval``, ``oversize_bytes``, ``hang_limit`` and
    ``latency`` (seconds before each answer) tune the faults. ``base_url`` and ``api_key`` are set
    while it runs; `stats` counts the kinds served so far.
    """

    api_key = "sk-or-v1-fault-server-key"

    def __init__(self, mix: Mapping[str, float] | None = None, *, seed: int = 0, drip_interval: float = 1.0,
                 keepalive_interval: float = 0.2, oversize_bytes: int = 64 * 1024 * 1024, hang_limit: float = 600.0,
                 latency: float = 0.0, process: bool = False) -> None:
        self.config: dict[str, Any] = {
            "mix": dict(DEFAULT_MIX if mix is None else mix), "seed": seed, "drip_interval": drip_interval,
            "keepalive_interval": keepalive_interval, "oversize_bytes": oversize_bytes, "hang_limit": hang_limit,
            "latency": latency,
        }
        _App(**self.config)  # validate the mix now, not in the server's thread
        self.process = process
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Future[None] | None = None
        self._app: _App | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<FaultServer {self.base_url if self.port else 'stopped'} seed={self.config['seed']}>"

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FaultServer is not running: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> FaultServer:
        if self.port is not None:
            return self
        if self.process:
            self._child, self.port = start_server_process(
                "openrouter_registry.testing.faultserver", [json.dumps(self.config)], timeout=60, what="fault server"
            )
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._app = _App(**self.config)
        self._thread = threading.Thread(target=loop.run_forever, name="FaultServer", daemon=True)
        self._thread.start()
        ready: asyncio.Future[int] = loop.create_future()

        async def begin() -> asyncio.Future[None]:
            assert self._app is not None
            return asyncio.ensure_future(serve(self._app, ready=ready))

        self._task = asyncio.run_coroutine_threadsafe(begin(), loop).result(30)
        self.port = asyncio.run_coroutine_threadsafe(asyncio.wait_for(asyncio.shield(ready), 30), loop).result(31)
        return self

    def stats(self) -> dict[str, int]:
        """How many answers of each kind the server has chosen so far (``GET /_stats``)."""
        with urllib.request.urlopen(self.base_url + "/_stats", timeout=60) as answer:
            counts: dict[str, int] = json.loads(answer.read())
        return counts

    def stop(self) -> None:
        self.port = None
        child, self._child = self._child, None
        if child is not None:
            stop_server_process(child)
        loop, self._loop = self._loop, None
        if loop is not None:
            task = self._task

            async def finish() -> None:
                if task is not None:
                    task.cancel()
                for other in asyncio.all_tasks():
                    if other is not asyncio.current_task():
                        other.cancel()
                await asyncio.sleep(0)

            asyncio.run_coroutine_threadsafe(finish(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            loop.close()
            self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
