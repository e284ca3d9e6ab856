"""`Transport`: the pooled HTTP of a service (one client per event loop), with retries, backoff,
deadlines, size caps and typed errors.

    async with Transport(settings) as transport:
        body, attempts = await transport.post_json("/chat/completions", payload, headers, model="openai/gpt-4o")
        async with transport.stream_data("/chat/completions", payload, headers, model="openai/gpt-4o") as stream:
            async for chunk in stream:        # decoded SSE JSON chunks, comments skipped, up to [DONE]
                ...
            stream.attempts                   # requests it took to open the stream

Retry policy (the `backoff` library drives the loop): up to ``settings.max_attempts`` requests in
all. Retried: HTTP 408, 429, 500, 502, 503, 524, 529; a 400 whose ``error.code`` is one of those;
an HTTP 200 whose body is such an error; connection failures (`errors.ConnectionError`); timeouts
(`errors.TimeoutError`); invalid (non-JSON) upstream responses. Never retried: 400, 401, 402, 403,
404 and every other status, and `errors.PoolTimeoutError` (nothing was sent). The wait honours ``retry-after-ms`` / ``Retry-After`` (seconds or an
HTTP date, capped at ``settings.retry_after_max``), else it is ``min(base_delay * 2**n, max_delay)``
times a jitter factor in [0.75, 1). Each retry is logged at WARNING on the ``openrouter_registry``
logger with status, model, attempt and delay. The error finally raised carries ``attempts``.

Bounds: an attempt (waiting for one of ``settings.max_connections`` pool slots, connecting, sending,
reading the whole body) ends within ``settings.timeout``; a stream, once open, within
``settings.stream_idle_timeout`` of each data event and ``settings.stream_timeout`` in all; a body
(decompressed) and an SSE line or event hold at most ``settings.max_response_bytes``. So a call ends
within ``max_attempts x timeout`` plus the backoff waits, whatever the server does.

Request headers (which hold the API key) never reach an exception, its ``__context__``, or a log
record: httpx exceptions are replaced, not chained, and only their class name is reported.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import random
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import backoff
import httpx

from .headers import revealed
from .backends import AiohttpTransport, certificate_problem, make_client, raw_pieces, read_declared
from ..replies.decode import (
    InvalidResponseError,
    SSEDecoder,
    body_error,
    error_for,
    is_transient,
    loads_body,
    loads_chunk,
    retry_after_seconds,
)
from ..errors import APIError, CertificateError, ConnectionError, PoolTimeoutError, TimeoutError
from .events import RetryObserver, notify_retry
from ..settings import Settings
from .sselines import LineSplitter, decoded

__all__ = ["Transport", "StreamHandle", "retry_delay", "encode_body"]

log = logging.getLogger("openrouter_registry")

T = TypeVar("T")
R = TypeVar("R")

#: How httpx encodes ``json=`` (``json.dumps(..., ensure_ascii=False, separators=(",", ":"), allow_nan=False)``),
#: built once (``json.dumps`` with options builds an encoder per call); `encode_body`'s fallback.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
#: orjson's ``dumps``, imported on first request (never by ``import openrouter_registry``).
_dumps: Callable[..., bytes] | None = None
_DUMPS_OPTIONS = 0


def encode_body(body: Mapping[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON, the bytes every stack sends (so cassettes match on both).

    orjson encodes (about 2 µs for a structured-generation body; Python's encoder about 15); what it
    cannot encode as Python's ``json`` would (integers beyond 64 bits, non-str keys, datetimes,
    dataclasses, subclasses of str/int/dict/list, nesting past 254 levels) goes to Python's encoder,
    which also raises what it always raised. orjson writes NaN and infinity as ``null``: a body with
    a ``null`` value is encoded again by Python's encoder, which refuses NaN and infinity
    (``ValueError``). Floats may be spelled differently (orjson ``1e-7``, Python ``1e-07``): the same
    number, valid JSON either way."""
    global _dumps, _DUMPS_OPTIONS
    data = body if type(body) is dict else dict(body)
    if _dumps is None:
        import orjson

        # types Python's json refuses (or encodes as their base type) go to it, so the result is the same
        _DUMPS_OPTIONS = (
            orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
        )
        _dumps = orjson.dumps
    try:
        encoded = _dumps(data, option=_DUMPS_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _JSON.encode(data).encode()
    if b":null" in encoded or b",null" in encoded or b"[null" in encoded:  # maybe a NaN or an infinity
        return _JSON.encode(data).encode()
    return encoded

#: Lines read after ``[DONE]`` to reach the end of the body (so its connection can be reused).
DRAIN_LINES = 16
DRAIN_SECONDS = 1.0


def retry_delay(
    retry: int,
    *,
    base_delay: float,
    max_delay: float,
    retry_after: float | None = None,
    retry_after_max: float = 60.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    The server's ``retry_after`` wins, capped at ``retry_after_max``; otherwise exponential backoff
    ``min(base_delay * 2**retry, max_delay)`` multiplied by a jitter factor drawn from [0.75, 1.0].
    """
    if retry_after is not None:
        return max(0.0, min(retry_after, retry_after_max))
    factor = (rng or random).uniform(0.75, 1.0)
    return min(base_delay * 2.0**retry, max_delay) * factor


def _give_up(error: Exception) -> bool:
    """backoff's giveup predicate: stop unless the error is a transient `APIError` that OpenRouter's
    side caused (a local pool that ran dry is not worth another attempt: nothing was sent)."""
    return isinstance(error, PoolTimeoutError) or not (isinstance(error, APIError) and is_transient(error))


def _with_attempts(error: APIError, attempts: int) -> APIError:
    """Record ``attempts`` on ``error`` and refresh its message (which mentions them)."""
    error.attempts = attempts
    error.args = (error._compose(),)
    return error


@attrs.define
class _Call:
    """The state of one logical request across its attempts."""

    model: str
    attempts: int = 0
    #: The caller's own retry observer (one call's span or events), besides the context's.
    listener: RetryObserver | None = None
    #: This call's own whole-attempt deadline (seconds) and attempt limit; None: the settings'.
    timeout: float | None = None
    max_attempts: int | None = None
    #: The first attempt's failure (made outside backoff, see `Transport._retrying`), for backoff to judge.
    replay: APIError | None = None


#: The wait (seconds) that the response behind an error asked for with ``Retry-After``.
_RETRY_AFTER: weakref.WeakKeyDictionary[APIError, float] = weakref.WeakKeyDictionary()


@attrs.define(eq=False)
class _Deadlines:
    """The whole-attempt deadlines (``seconds`` after each attempt starts) of one event loop's attempts.

    Every attempt gets the same ``seconds``, so they expire in the order they started, and one timer,
    set for the oldest, serves them all: an ``asyncio.timeout(seconds)`` per attempt pushed a timer into
    the loop's heap and cancelled it again, a twentieth of the transport's CPU per request. Each attempt
    runs in an ``asyncio.timeout(None)``; when its time has come it is rescheduled to now, and asyncio
    cancels the attempt and raises `TimeoutError` exactly as for a timeout of its own."""

    loop: asyncio.AbstractEventLoop
    seconds: float
    #: Attempts in flight, in start order, with the loop time each must end by.
    pending: dict[asyncio.Timeout, float] = attrs.Factory(dict)
    timer: asyncio.TimerHandle | None = None

    def watch(self, timeout: asyncio.Timeout) -> None:
        """Expire ``timeout`` (entered, with no deadline of its own) ``seconds`` from now, unless `forget` comes first."""
        end = self.loop.time() + self.seconds
        self.pending[timeout] = end
        if self.timer is None:
            self.timer = self.loop.call_at(end, self._expire)

    def forget(self, timeout: asyncio.Timeout) -> None:
        """``timeout``'s block is ending: no deadline for it any more."""
        self.pending.pop(timeout, None)

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        pending = self.pending
        while pending:
            timeout, end = next(iter(pending.items()))
            if end > now:  # the oldest attempt still in flight: its turn comes later
                self.timer = self.loop.call_at(end, self._expire)
                return
            del pending[timeout]
            timeout.reschedule(now)  # asyncio cancels its task now, as at the end of its own timeout


@attrs.define(eq=False)
class _Pool:
    """What belongs to one event loop: its client (connections are bound to the loop that opened them)
    and the gate that admits at most ``max_connections`` requests at once."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    gate: asyncio.Semaphore
    owned: bool
    deadlines: _Deadlines
    direct: httpx.AsyncBaseTransport | None = None  # sends a built request straight to the client's transport
    closer: AsyncGenerator[None, None] | None = None
    #: The aiohttp stack without a proxy: `Transport.post_json` sends through it with no httpx objects.
    lean: AiohttpTransport | None = None
    #: The client's default headers plus ``Content-Type: application/json`` (lower-case name -> header),
    #: what httpx would add to a JSON request; the lean path starts from them.
    defaults: dict[str, tuple[str, str]] = attrs.Factory(dict)

    def lean_headers(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """The headers the lean path sends: the defaults, ``headers`` on top (names compare case-insensitively)."""
        merged = self.defaults.copy()
        for name, value in headers.items():
            merged[name.lower()] = (name, value)
        return list(merged.values())

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, the response's body still to be read."""
        if self.direct is not None:
            return await self.direct.handle_async_request(request)
        return await self.client.send(request, stream=True)


async def _closing(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Suspended for the life of the loop; the loop's ``shutdown_asyncgens`` (``asyncio.run`` calls it
    before closing the loop) finalizes it, which closes ``client`` while its loop can still run that."""
    try:
        yield
    finally:
        try:
            await client.aclose()
            await asyncio.sleep(0)  # the sockets' connection_lost callbacks run before the loop may close
        except Exception as exc:  # a client that cannot close cleanly is dropped all the same
            log.debug("closing an HTTP client failed (%s)", type(exc).__name__)


def _start(generator: AsyncGenerator[None, None]) -> None:
    """Run ``generator`` to its first ``yield`` now (it awaits nothing before), registering it with the loop."""
    try:
        generator.asend(None).send(None)
    except StopIteration:
        pass


@attrs.define
class _Phase:
    """Where an attempt is, for the error its deadline gives: waiting for a pool slot, or exchanging."""

    waiting: bool = True


def _body_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body, decompressed in bounded pieces (`sselines.decoded`); a body already in memory (a
    response built by ``httpx.MockTransport``, say) as it is."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return decoded(response.aiter_raw(), response.headers.get("content-encoding", ""))
    return _pieces(content)


async def _pieces(content: bytes) -> AsyncIterator[bytes]:
    yield content


class Transport:
    """Pooled HTTP for a service: one client per event loop, retries with backoff, deadlines, size caps."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
    ) -> None:
        self.settings = settings
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._given = client
        self._pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._host = urlsplit(settings.base_url).netloc
        self._urls: dict[str, httpx.URL] = {}
        # decorated once: building backoff's wrapper on every call cost a twentieth of a request's CPU
        self._retry = self._retry_policy(settings.max_attempts)
        #: The wrappers for per-call ``max_attempts`` values other than the settings', built on first use.
        self._retries: dict[int, Callable[..., Awaitable[Any]]] = {settings.max_attempts: self._retry}

    def _retry_policy(self, max_attempts: int) -> Callable[..., Awaitable[Any]]:
        """`_one_attempt` under backoff's loop, for at most ``max_attempts`` requests."""
        return backoff.on_exception(
            self._waits,
            APIError,
            max_tries=max_attempts,
            jitter=None,
            giveup=_give_up,
            on_backoff=self.log_retry,
            logger=None,
        )(self._one_attempt)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.settings.base_url!r}, max_attempts={self.settings.max_attempts})"

    # --- lifecycle ---------------------------------------------------------------------------------

    def _pool(self) -> _Pool:
        """The running loop's pool, made on first use. Pools of loops that have closed are forgotten
        (their connections died with their loop)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None and (pool.owned is False or not pool.client.is_closed):
            return pool
        with self._lock:
            for other in [key for key in self._pools if key.is_closed()]:
                del self._pools[other]
            client, direct = (self._given, None) if self._given is not None else make_client(self.settings)
            gate = asyncio.Semaphore(self.settings.max_connections)
            pool = _Pool(loop, client, gate, self._given is None, _Deadlines(loop, self.settings.timeout), direct)
            if isinstance(direct, AiohttpTransport):
                pool.lean = direct
                pool.defaults = {name.lower(): (name, value) for name, value in client.headers.multi_items()}
                pool.defaults.setdefault("content-type", ("Content-Type", "application/json"))
            if pool.owned:
                pool.closer = _closing(client)
                _start(pool.closer)
            self._pools[loop] = pool
        return pool

    @property
    def client(self) -> httpx.AsyncClient:
        """The running event loop's client: created on first use, then reused (call from a coroutine)."""
        return self._pool().client

    async def aclose(self) -> None:
        """Close every client this transport created, whatever loop it belongs to (a client passed in
        belongs to the caller). Never raises; a later call opens a new client. A loop that ends
        (``asyncio.run`` returning) closes its own client first, so no socket outlives its loop."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        current = asyncio.get_running_loop()
        for pool in pools:
            if pool.closer is None or pool.loop.is_closed():
                continue
            try:
                if pool.loop is current:
                    await pool.closer.aclose()
                elif pool.loop.is_running():  # another thread's loop: close it there
                    done = asyncio.run_coroutine_threadsafe(pool.closer.aclose(), pool.loop)
                    await asyncio.wait_for(asyncio.wrap_future(done), timeout=5.0)
            except Exception as exc:  # a pool that cannot close cleanly is dropped all the same
                log.debug("closing an HTTP client failed (%s)", type(exc).__name__)

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def url(self, path: str) -> str:
        """``settings.base_url`` + ``path``."""
        return self.settings.base_url + "/" + path.lstrip("/")

    def _parsed(self, url: str) -> httpx.URL:
        """``url`` parsed once (httpx parses a string URL on every request: a tenth of its CPU per request)."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    # --- requests ----------------------------------------------------------------------------------

    async def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        model: str,
        check: Callable[[Any], object] | None = None,
        on_retry: RetryObserver | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> tuple[Any, int]:
        """POST ``body`` as JSON to ``settings.base_url + path``; return (decoded JSON body, attempts used).

        An HTTP error, an HTTP 200 whose body is an error, and an `APIError` raised by ``check(body)``
        are retried when `is_transient`; the last one is raised with ``attempts`` set. ``check``'s
        return value is ignored (so a decoder such as `decode_embeddings` can serve as the check).
        Each attempt (waiting for a pool slot, connecting, sending, reading the whole body) ends
        within ``timeout`` seconds (default ``settings.timeout``); at most ``max_attempts`` requests
        are made (default ``settings.max_attempts``). ``on_retry`` gets a `RetryEvent` before each retry.
        """
        url = self.url(path)
        encoded: list[bytes] = []  # the body as JSON, encoded once for every attempt (lean path only)

        async def once(call: _Call) -> Any:
            status, received, content = await self._exchange(call, url, body, headers, encoded)
            if not 200 <= status < 300:
                raise self._http_error(status, received, content, call)
            data = loads_body(content)
            error = body_error(data, model=model, headers=received, attempts=call.attempts)
            if error is not None:
                raise error
            if check is not None:
                check(data)
            return data

        return await self._retrying(once, model, on_retry, timeout, max_attempts)

    def stream_data(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        model: str,
        on_retry: RetryObserver | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> StreamHandle:
        """POST ``body`` with ``"stream": true``; the returned `StreamHandle` yields each decoded SSE
        JSON chunk (comments skipped) until ``[DONE]``.

        Opening the stream is retried like `post_json` until the response status is known and OK;
        once it is, nothing is retried: an error chunk (top-level ``error`` or ``finish_reason:
        "error"``) raises its typed error, a dropped connection raises `errors.ConnectionError`, a
        stream that sends no data event for ``settings.stream_idle_timeout`` seconds or runs longer
        than ``settings.stream_timeout`` raises `errors.TimeoutError`.
        Nothing is sent before the first ``async for`` step. ``on_retry`` as for `post_json`; ``timeout``
        and ``max_attempts`` bound opening the stream, as for `post_json`.
        """
        return StreamHandle(
            self, self.url(path), {**body, "stream": True}, headers, model=model, on_retry=on_retry, timeout=timeout,
            max_attempts=max_attempts,
        )

    # --- machinery ---------------------------------------------------------------------------------

    async def _retrying(
        self,
        operation: Callable[[_Call], Awaitable[T]],
        model: str,
        listener: RetryObserver | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> tuple[T, int]:
        """Run ``operation`` under the retry policy; return (its result, attempts used).

        The first attempt runs outside backoff's loop (entering it cost about as much CPU as the
        attempt's own bookkeeping); when it fails, backoff gets its error as its own first try's
        (`_one_attempt` raises it again) and decides as always: give up, or log, wait and retry."""
        call = _Call(model, attempts=1, listener=listener, timeout=timeout, max_attempts=max_attempts)
        try:
            try:
                return await operation(call), 1
            except APIError as error:
                call.replay = error
            retry = self._retry
            if max_attempts is not None:
                retry = self._retries.get(max_attempts) or self._retries.setdefault(
                    max_attempts, self._retry_policy(max_attempts)
                )
            result: T = await retry(operation, call)
        except APIError as error:
            raise _with_attempts(error, call.attempts)
        return result, call.attempts

    async def _one_attempt(self, operation: Callable[[_Call], Awaitable[T]], call: _Call) -> T:
        replay = call.replay
        if replay is not None:  # backoff's first try: the first attempt, already made
            call.replay = None
            raise replay
        call.attempts += 1
        return await operation(call)

    def _waits(self) -> Generator[float, Any, None]:
        """backoff's wait generator, one per call: primed with send(None), then sent each raised error."""
        retry = 0
        error = yield 0.0
        while True:
            error = yield retry_delay(
                retry,
                base_delay=self.base_delay,
                max_delay=self.max_delay,
                retry_after=_RETRY_AFTER.get(error),
                retry_after_max=self.settings.retry_after_max,
                rng=self._rng,
            )
            retry += 1

    def log_retry(self, details: Mapping[str, Any]) -> None:
        """backoff's ``on_backoff``: every retry passes here, with its error and the wait before it."""
        error = details["exception"]
        call: _Call = details["args"][1]
        reason = f"status {error.status}" if error.status is not None else type(error).__name__
        log.warning(
            "OpenRouter request failed (%s, model %s) on attempt %d of %d; retrying in %.2fs",
            reason,
            call.model,
            details["tries"],
            call.max_attempts or self.settings.max_attempts,
            details["wait"],
        )
        notify_retry(
            error.status, details["wait"], model=call.model, attempt=details["tries"], error=type(error).__name__,
            listener=call.listener,
        )

    async def _exchange(
        self, call: _Call, url: str, body: Mapping[str, Any], headers: Mapping[str, str], encoded: list[bytes]
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One non-streaming attempt (see `_slotted`): (status, response headers, whole body). On the
        aiohttp stack (no proxy) straight through the aiohttp session, with no httpx Request or Response
        (a third of our CPU per request); otherwise through the httpx client (`_attempt`)."""
        pool = self._pool()
        lean = pool.lean
        if lean is None:
            response, content, _ = await self._attempt(call, url, body, headers, stream=False)
            assert content is not None
            return response.status_code, response.headers, content
        if not encoded:
            encoded.append(encode_body(body))
        sent = pool.lean_headers(headers)
        settings = self.settings
        # no read timeout of aiohttp's own: the attempt's deadline (``settings.timeout``, started earlier)
        # always ends a silent read first, and re-arming a timer on every received piece costs CPU

        async def work() -> tuple[tuple[int, Mapping[str, str], bytes], bool]:
            # `_send`'s mapping of httpx failures, inline (no closure and coroutine per step); the typed
            # error is raised outside the except block, so it never chains the httpx exception
            failure: APIError | None = None
            try:
                response = await lean.exchange("POST", url, sent, encoded[0], connect=settings.connect_timeout, read=None)
            except httpx.HTTPError as exc:
                failure = self._transport_error(exc, call)
            if failure is not None:
                raise failure
            try:
                received = response.headers
                encoding = received.get("content-encoding", "")
                declared = received.get("content-length", "")
                if not encoding and declared.isdigit() and int(declared) <= settings.max_response_bytes:
                    # aiohttp reads no further than the declared length: within the cap, one read
                    try:
                        content = await read_declared(response)
                    except httpx.HTTPError as exc:
                        failure = self._transport_error(exc, call)
                    if failure is not None:
                        raise failure
                else:
                    pieces = decoded(raw_pieces(response), encoding) if encoding else raw_pieces(response)
                    content = await self._read_body(received, pieces, call)
                return (response.status, received, content), False
            finally:
                response.release()

        return await self._slotted(call, pool, work)

    async def _attempt(
        self, call: _Call, url: str, body: Mapping[str, Any], headers: Mapping[str, str], *, stream: bool
    ) -> tuple[httpx.Response, bytes | None, _Pool]:
        """One attempt through the httpx client (see `_slotted`): (response, whole body, pool). With
        ``stream``, a 2xx event stream comes back open instead (body None) and keeps its slot: the
        caller releases it (``pool.gate.release()``) once closed."""
        pool = self._pool()
        request = pool.client.build_request(  # the key becomes text only inside httpx's Request
            "POST", self._parsed(url), content=encode_body(body), headers=revealed(headers.items())
        )
        request.headers.setdefault("Content-Type", "application/json")  # as httpx's ``json=`` would

        async def work() -> tuple[tuple[httpx.Response, bytes | None, _Pool], bool]:
            response = await self._send(lambda: pool.send(request), call)
            if stream and response.is_success and response.headers.get("content-type", "").startswith("text/event-stream"):
                return (response, None, pool), True  # the slot goes with the open stream
            try:
                content = await self._read_body(response.headers, _body_pieces(response), call)
            finally:
                await response.aclose()
            return (response, content, pool), False

        return await self._slotted(call, pool, work)

    async def _slotted(self, call: _Call, pool: _Pool, work: Callable[[], Awaitable[tuple[R, bool]]]) -> R:
        """Run ``work()`` holding one of ``pool``'s slots, all within ``settings.timeout`` (waiting for the
        slot included); ``work`` returns (result, keep): with keep the slot stays taken, for the caller
        to release. Out of time while waiting for the slot: `PoolTimeoutError`; after: `TimeoutError`."""
        phase = _Phase()
        failure: APIError | None = None
        held = False
        try:
            async with asyncio.timeout(None) as deadline:
                if call.timeout is None:
                    pool.deadlines.watch(deadline)  # ``settings.timeout`` from now
                else:  # this call's own deadline
                    deadline.reschedule(pool.loop.time() + call.timeout)
                try:
                    await pool.gate.acquire()
                    held, phase.waiting = True, False
                    result, keep = await work()
                    held = not keep
                    return result
                finally:
                    pool.deadlines.forget(deadline)
        except builtins.TimeoutError:
            if not deadline.expired():
                raise
            failure = self._deadline_error(call, phase)
        finally:
            if held:
                pool.gate.release()
        raise failure

    async def _send(self, send: Callable[[], Awaitable[R]], call: _Call) -> R:
        """Await ``send()``, turning httpx failures into our typed errors (never chained: the httpx
        exception holds the request, and the request holds the key)."""
        failure: APIError
        try:
            return await send()
        except httpx.HTTPError as exc:
            failure = self._transport_error(exc, call)
        raise failure

    async def _read_body(self, headers: Mapping[str, str], pieces: AsyncIterator[bytes], call: _Call) -> bytes:
        """The whole body (``pieces``: decompressed, in bounded steps), at most ``settings.max_response_bytes``:
        past that, `InvalidResponseError` and the rest is never read (closing the response drops the connection)."""
        limit = self.settings.max_response_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(call)
        # one growing buffer, not a list of pieces: a body refused at the cap never held more than the
        # cap plus the buffer's slack (a list of 64 KiB pieces cost 1.3x the cap in allocator overhead)
        first: bytes = b""
        buffer: bytearray | None = None
        size = 0
        failure: APIError | None = None
        try:
            async for piece in pieces:
                size += len(piece)
                if size > limit:
                    failure = self._too_large(call)
                    break
                if buffer is not None:
                    buffer += piece
                elif not first:
                    first = piece
                else:
                    buffer = bytearray(first)
                    buffer += piece
        except httpx.HTTPError as exc:
            failure = self._transport_error(exc, call)
        except InvalidResponseError as invalid:
            invalid.model = invalid.model or call.model
            failure = _with_attempts(invalid, call.attempts)
        if failure is not None:
            del first, buffer
            raise failure
        return first if buffer is None else bytes(buffer)

    def _too_large(self, call: _Call) -> InvalidResponseError:
        return InvalidResponseError(
            f"Invalid upstream response: larger than {self.settings.max_response_bytes} bytes "
            "(raise OPENROUTER_MAX_RESPONSE_BYTES if such answers are expected)",
            model=call.model,
            attempts=call.attempts,
        )

    def _deadline_error(self, call: _Call, phase: _Phase) -> APIError:
        """The error for an attempt that ran out of its time (the call's ``timeout``, else ``settings.timeout``)."""
        limit = call.timeout or self.settings.timeout
        if phase.waiting:
            return PoolTimeoutError(
                f"The local connection pool was exhausted: no connection came free within {limit:g}s "
                f"({self.settings.max_connections} requests already in flight, OPENROUTER_MAX_CONNECTIONS)",
                model=call.model,
                attempts=call.attempts,
            )
        source = "timeout=" if call.timeout else "OPENROUTER_TIMEOUT"
        return TimeoutError(
            f"No complete answer from OpenRouter at {self._host} within {limit:g}s ({source})",
            model=call.model,
            attempts=call.attempts,
        )

    def _transport_error(self, exc: httpx.HTTPError, call: _Call) -> APIError:
        """The typed error for an httpx exception; only its class name is kept (its text may quote headers)."""
        name = type(exc).__name__
        host = self._host
        if isinstance(exc, httpx.TimeoutException):
            limit = self.settings.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else call.timeout or self.settings.timeout
            return TimeoutError(
                f"No answer from OpenRouter at {host} within {limit:g}s ({name})", model=call.model, attempts=call.attempts
            )
        if isinstance(exc, httpx.DecodingError):
            return InvalidResponseError(
                f"Invalid upstream response: the body could not be decompressed ({name})",
                model=call.model,
                attempts=call.attempts,
            )
        problem = certificate_problem(exc) if isinstance(exc, (httpx.ConnectError, httpx.ProxyError)) else None
        if problem is not None:
            return CertificateError(
                f"The TLS certificate of {host} (or of the proxy in between) failed verification: {problem}",
                model=call.model, attempts=call.attempts,
            )
        if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)):
            return ConnectionError(
                f"Could not reach OpenRouter at {host} ({name})", model=call.model, attempts=call.attempts
            )
        return APIError(f"Could not send the request to OpenRouter at {host} ({name})", model=call.model, attempts=call.attempts)

    def _http_error(self, status: int, headers: Mapping[str, str], content: bytes, call: _Call) -> APIError:
        """The typed error for a non-2xx response, remembering any Retry-After it asked for."""
        try:
            data: Any = loads_body(content)
        except InvalidResponseError:
            data = None
        error = error_for(status, data, model=call.model, headers=headers, attempts=call.attempts)
        wait = retry_after_seconds(headers)
        if wait is not None:
            _RETRY_AFTER[error] = wait
        return error

    async def _open_stream(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        model: str,
        listener: RetryObserver | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> tuple[httpx.Response, _Pool, int]:
        """Send the streaming request (with retries) until a 2xx event stream is open. The pool slot
        it took is the caller's to release (``pool.gate.release()``) once the stream is closed."""
        sent_headers = dict(headers)
        if not any(name.lower() == "accept" for name in sent_headers):
            sent_headers["Accept"] = "text/event-stream"

        async def once(call: _Call) -> tuple[httpx.Response, _Pool]:
            response, content, pool = await self._attempt(call, url, body, sent_headers, stream=True)
            if content is None:
                return response, pool
            if not response.is_success:
                raise self._http_error(response.status_code, response.headers, content, call)
            # An HTTP 200 that is not an event stream: an error body, or nothing usable.
            data = loads_body(content)
            error = body_error(data, model=model, headers=response.headers, attempts=call.attempts)
            raise error or InvalidResponseError(
                "Invalid upstream response: expected an event stream", model=model, attempts=call.attempts
            )

        (response, pool), attempts = await self._retrying(once, model, listener, timeout, max_attempts)
        return response, pool, attempts


class StreamHandle:
    """One streamed request: an async iterator of decoded SSE JSON chunks.

    ``attempts`` is the number of requests it took to open the stream (0 before the first
    ``async for`` step, final once the first chunk has arrived); ``status`` and ``generation_id``
    (from the ``X-Generation-Id`` header) are set when the stream is open. Errors raised while
    opening or reading carry ``attempts`` too. Use ``async with`` (or `aclose`) to give the
    connection back to the pool when you stop before the end.
    """

    def __init__(
        self,
        transport: Transport,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        model: str,
        on_retry: RetryObserver | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self._transport = transport
        self._on_retry = on_retry
        self._limits = (timeout, max_attempts)
        self._url = url
        self._body = body
        self._headers = headers
        self.model = model
        self.attempts = 0
        self.status: int | None = None
        self.generation_id: str | None = None
        #: The chunk that carried an error mid-stream (its usage and cost, when OpenRouter sent them).
        self.error_chunk: Mapping[str, Any] | None = None
        self._events: AsyncGenerator[Mapping[str, Any], None] | None = None
        self._closed = False
        self._end = 0.0  # the loop time the stream must end by, set when it opens

    def __repr__(self) -> str:
        return f"StreamHandle(model={self.model!r}, attempts={self.attempts}, status={self.status})"

    def __aiter__(self) -> StreamHandle:
        return self

    async def __anext__(self) -> Mapping[str, Any]:
        if self._closed:
            raise StopAsyncIteration
        if self._events is None:
            self._events = self._run()
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop reading and release the connection. Idempotent."""
        self._closed = True
        events, self._events = self._events, None
        if events is not None:
            await events.aclose()

    async def __aenter__(self) -> StreamHandle:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[Mapping[str, Any], None]:
        transport = self._transport
        settings = transport.settings
        response, pool, self.attempts = await transport._open_stream(
            self._url, self._body, self._headers, self.model, self._on_retry, *self._limits
        )
        try:
            self.status = response.status_code
            self.generation_id = response.headers.get("x-generation-id")
            call = _Call(self.model, attempts=self.attempts)
            loop = asyncio.get_running_loop()
            self._end = loop.time() + settings.stream_timeout
            lines = self._lines(response)
            decoder = SSEDecoder()
            event_size = 0
            while not decoder.done:
                # keep-alive comments do not count: the idle limit runs until the next data event
                idle_end = loop.time() + settings.stream_idle_timeout
                payload: str | None = None
                while payload is None:
                    line = await self._next_line(lines, call, idle_end)
                    if line is None:
                        payload = decoder.flush()
                        if payload is not None:
                            yield self._decode(payload, response)
                        return
                    event_size = 0 if not line else event_size + len(line)
                    if event_size > settings.max_response_bytes:
                        raise self._invalid("an event is longer than OPENROUTER_MAX_RESPONSE_BYTES")
                    payload = decoder.feed(line)
                    if decoder.done:
                        break
                if payload is not None:
                    yield self._decode(payload, response)
            await self._drain(lines, call)
        finally:
            try:
                await response.aclose()
            finally:
                pool.gate.release()

    async def _lines(self, response: httpx.Response) -> AsyncIterator[str]:
        """The body's lines, split at CR, LF and CRLF only (`LineSplitter`), each at most
        ``settings.max_response_bytes`` long."""
        splitter = LineSplitter(self._transport.settings.max_response_bytes)
        async for piece in _body_pieces(response):
            for line in splitter.feed(piece):
                yield line
        for line in splitter.flush():
            yield line

    async def _drain(self, lines: AsyncIterator[str], call: _Call) -> None:
        """Read what little follows ``[DONE]`` (the chunked-body terminator) so the connection goes back
        to the pool instead of being closed. Bounded by `DRAIN_LINES` and `DRAIN_SECONDS`; a failure
        here is ignored: every chunk was delivered, the connection is just not reused."""
        deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
        try:
            for _ in range(DRAIN_LINES):
                if await self._next_line(lines, call, deadline) is None:
                    return
        except APIError:
            return

    async def _next_line(self, lines: AsyncIterator[str], call: _Call, idle_end: float) -> str | None:
        """The next line, None at the end of the body; waits until ``idle_end`` at most (and never past
        the stream's total deadline); failures become typed errors."""
        failure: APIError
        end = min(idle_end, self._end)
        try:
            async with asyncio.timeout_at(end) as deadline:
                return await lines.__anext__()
        except StopAsyncIteration:
            return None
        except httpx.HTTPError as exc:
            failure = self._transport._transport_error(exc, call)
        except InvalidResponseError as invalid:
            invalid.model = invalid.model or self.model
            failure = _with_attempts(invalid, self.attempts)
        except builtins.TimeoutError:
            if not deadline.expired():
                raise
            settings = self._transport.settings
            if end >= self._end:
                message = f"OpenRouter's stream did not end within {settings.stream_timeout:g}s (OPENROUTER_STREAM_TIMEOUT)"
            else:
                message = (
                    f"OpenRouter's stream sent no data for {settings.stream_idle_timeout:g}s "
                    "(OPENROUTER_STREAM_IDLE_TIMEOUT)"
                )
            failure = TimeoutError(message, model=self.model, attempts=self.attempts)
        raise failure

    def _invalid(self, what: str) -> InvalidResponseError:
        return InvalidResponseError(f"Invalid upstream response: {what}", model=self.model, attempts=self.attempts)

    def _decode(self, payload: str, response: httpx.Response) -> Mapping[str, Any]:
        try:
            chunk = loads_chunk(payload)
        except APIError as invalid:
            raise _with_attempts(invalid, self.attempts)
        error = body_error(chunk, model=self.model, headers=response.headers, attempts=self.attempts)
        if error is not None:
            self.error_chunk = chunk  # OpenRouter may bill the failed reply: its usage is in this chunk
            raise error
        return chunk
