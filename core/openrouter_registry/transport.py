"""`Transport`: the one pooled HTTP client of a service, with retries, backoff and typed errors.

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
404 and every other status. The wait honours ``retry-after-ms`` / ``Retry-After`` (seconds or an
HTTP date, capped at ``settings.retry_after_max``), else it is ``min(base_delay * 2**n, max_delay)``
times a jitter factor in [0.75, 1). Each retry is logged at WARNING on the ``openrouter_registry``
logger with status, model, attempt and delay. The error finally raised carries ``attempts``.

Request headers (which hold the API key) never reach an exception, its ``__context__``, or a log
record: httpx exceptions are replaced, not chained, and only their class name is reported.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import backoff
import httpx

from .decode import (
    InvalidResponseError,
    SSEDecoder,
    body_error,
    error_for,
    is_transient,
    loads_body,
    loads_chunk,
    retry_after_seconds,
)
from .errors import APIError, ConnectionError, TimeoutError
from .events import notify_retry
from .settings import Settings

__all__ = ["Transport", "StreamHandle", "retry_delay", "LIMITS"]

log = logging.getLogger("openrouter_registry")

T = TypeVar("T")

#: Connection pool size: enough for many concurrent generations over keep-alive connections.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=32, keepalive_expiry=30.0)
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
    """backoff's giveup predicate: stop unless the error is a transient `APIError`."""
    return not (isinstance(error, APIError) and is_transient(error))


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
    hint: tuple[APIError, float] | None = None  # the Retry-After that came with this error


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Transport:
    """One pooled httpx.AsyncClient for the life of a service; retries with backoff."""

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
        self._client = client
        self._owns_client = client is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"Transport(base_url={self.settings.base_url!r}, max_attempts={self.settings.max_attempts})"

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client: created on first use (keep-alive, `LIMITS`, the settings' timeouts), then reused."""
        loop = _running_loop()
        if self._client is not None and self._owns_client and self._loop is not loop:
            # Pooled connections belong to the event loop that opened them: after ``asyncio.run`` ends,
            # the next run gets a new pool instead of "Event loop is closed" (the old one dies with its loop).
            self._client = None
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._loop = loop
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.timeout, connect=self.settings.connect_timeout),
                limits=LIMITS,
                follow_redirects=False,
            )
            self._owns_client = True
        return self._client

    async def aclose(self) -> None:
        """Close the client this transport created (a client passed in belongs to the caller)."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def url(self, path: str) -> str:
        """``settings.base_url`` + ``path``."""
        return self.settings.base_url + "/" + path.lstrip("/")

    # --- requests ----------------------------------------------------------------------------------

    async def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        model: str,
        check: Callable[[Any], object] | None = None,
    ) -> tuple[Any, int]:
        """POST ``body`` as JSON to ``settings.base_url + path``; return (decoded JSON body, attempts used).

        An HTTP error, an HTTP 200 whose body is an error, and an `APIError` raised by ``check(body)``
        are retried when `is_transient`; the last one is raised with ``attempts`` set. ``check``'s
        return value is ignored (so a decoder such as `decode_embeddings` can serve as the check).
        """
        url = self.url(path)

        async def once(call: _Call) -> Any:
            response = await self._send(lambda: self.client.post(url, json=dict(body), headers=dict(headers)), call)
            if not response.is_success:
                raise self._http_error(response, response.content, call)
            data = loads_body(response.content)
            error = body_error(data, model=model, headers=response.headers, attempts=call.attempts)
            if error is not None:
                raise error
            if check is not None:
                check(data)
            return data

        return await self._retrying(once, model)

    def stream_data(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str], *, model: str
    ) -> StreamHandle:
        """POST ``body`` with ``"stream": true``; the returned `StreamHandle` yields each decoded SSE
        JSON chunk (comments skipped) until ``[DONE]``.

        Opening the stream is retried like `post_json` until the response status is known and OK;
        once it is, nothing is retried: an error chunk (top-level ``error`` or ``finish_reason:
        "error"``) raises its typed error, a dropped connection raises `errors.ConnectionError`.
        Nothing is sent before the first ``async for`` step.
        """
        return StreamHandle(self, self.url(path), {**body, "stream": True}, headers, model=model)

    # --- machinery ---------------------------------------------------------------------------------

    async def _retrying(self, operation: Callable[[_Call], Awaitable[T]], model: str) -> tuple[T, int]:
        """Run ``operation`` under the retry policy; return (its result, attempts used)."""
        call = _Call(model)

        async def attempt() -> T:
            call.attempts += 1
            call.hint = None
            return await operation(call)

        def waits() -> Generator[float, Any, None]:
            # backoff primes the generator with send(None), then sends each raised exception.
            retry = 0
            error = yield 0.0
            while True:
                retry_after = call.hint[1] if call.hint is not None and call.hint[0] is error else None
                error = yield retry_delay(
                    retry,
                    base_delay=self.base_delay,
                    max_delay=self.max_delay,
                    retry_after=retry_after,
                    retry_after_max=self.settings.retry_after_max,
                    rng=self._rng,
                )
                retry += 1

        def log_retry(details: Mapping[str, Any]) -> None:
            error = details["exception"]
            reason = f"status {error.status}" if error.status is not None else type(error).__name__
            log.warning(
                "OpenRouter request failed (%s, model %s) on attempt %d of %d; retrying in %.2fs",
                reason,
                model,
                details["tries"],
                self.settings.max_attempts,
                details["wait"],
            )
            notify_retry(error.status, details["wait"], model=model, attempt=details["tries"], error=type(error).__name__)

        retrying = backoff.on_exception(
            waits,
            APIError,
            max_tries=self.settings.max_attempts,
            jitter=None,
            giveup=_give_up,
            on_backoff=log_retry,
            logger=None,
        )(attempt)
        try:
            result: T = await retrying()
        except APIError as error:
            raise _with_attempts(error, call.attempts)
        return result, call.attempts

    async def _send(self, send: Callable[[], Awaitable[httpx.Response]], call: _Call) -> httpx.Response:
        """Await ``send()``, turning httpx failures into our typed errors (never chained: the httpx
        exception holds the request, and the request holds the key)."""
        failure: APIError
        try:
            return await send()
        except httpx.HTTPError as exc:
            failure = self._transport_error(exc, call)
        raise failure

    def _transport_error(self, exc: httpx.HTTPError, call: _Call) -> APIError:
        """The typed error for an httpx exception; only its class name is kept (its text may quote headers)."""
        name = type(exc).__name__
        host = urlsplit(self.settings.base_url).netloc
        if isinstance(exc, httpx.TimeoutException):
            limit = self.settings.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.settings.timeout
            return TimeoutError(
                f"No answer from OpenRouter at {host} within {limit:g}s ({name})", model=call.model, attempts=call.attempts
            )
        if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)):
            return ConnectionError(
                f"Could not reach OpenRouter at {host} ({name})", model=call.model, attempts=call.attempts
            )
        return APIError(f"Could not send the request to OpenRouter at {host} ({name})", model=call.model, attempts=call.attempts)

    def _http_error(self, response: httpx.Response, content: bytes, call: _Call) -> APIError:
        """The typed error for a non-2xx response, remembering any Retry-After it asked for."""
        try:
            data: Any = loads_body(content)
        except InvalidResponseError:
            data = None
        error = error_for(response.status_code, data, model=call.model, headers=response.headers, attempts=call.attempts)
        wait = retry_after_seconds(response.headers)
        if wait is not None:
            call.hint = (error, wait)
        return error

    async def _open_stream(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], model: str
    ) -> tuple[httpx.Response, int]:
        """Send the streaming request (with retries) until a 2xx event stream is open."""
        sent_headers = dict(headers)
        if not any(name.lower() == "accept" for name in sent_headers):
            sent_headers["Accept"] = "text/event-stream"

        async def once(call: _Call) -> httpx.Response:
            request = self.client.build_request("POST", url, json=dict(body), headers=sent_headers)
            response = await self._send(lambda: self.client.send(request, stream=True), call)
            streaming = response.headers.get("content-type", "").startswith("text/event-stream")
            if response.is_success and streaming:
                return response
            try:
                content = await self._send_read(response, call)
            finally:
                await response.aclose()
            if not response.is_success:
                raise self._http_error(response, content, call)
            # An HTTP 200 that is not an event stream: an error body, or nothing usable.
            data = loads_body(content)
            error = body_error(data, model=model, headers=response.headers, attempts=call.attempts)
            raise error or InvalidResponseError(
                "Invalid upstream response: expected an event stream", model=model, attempts=call.attempts
            )

        return await self._retrying(once, model)

    async def _send_read(self, response: httpx.Response, call: _Call) -> bytes:
        failure: APIError
        try:
            return await response.aread()
        except httpx.HTTPError as exc:
            failure = self._transport_error(exc, call)
        raise failure


class StreamHandle:
    """One streamed request: an async iterator of decoded SSE JSON chunks.

    ``attempts`` is the number of requests it took to open the stream (0 before the first
    ``async for`` step, final once the first chunk has arrived); ``status`` and ``generation_id``
    (from the ``X-Generation-Id`` header) are set when the stream is open. Errors raised while
    opening or reading carry ``attempts`` too. Use ``async with`` (or `aclose`) to give the
    connection back to the pool when you stop before the end.
    """

    def __init__(
        self, transport: Transport, url: str, body: Mapping[str, Any], headers: Mapping[str, str], *, model: str
    ) -> None:
        self._transport = transport
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
        response, self.attempts = await transport._open_stream(self._url, self._body, self._headers, self.model)
        self.status = response.status_code
        self.generation_id = response.headers.get("x-generation-id")
        call = _Call(self.model, attempts=self.attempts)
        decoder = SSEDecoder()
        try:
            lines = response.aiter_lines()
            while not decoder.done:
                line = await self._next_line(lines, call)
                payload = decoder.flush() if line is None else decoder.feed(line)
                if payload is not None:
                    yield self._decode(payload, response)
                if line is None:
                    return
            await self._drain(lines, call)
        finally:
            await response.aclose()

    async def _drain(self, lines: AsyncIterator[str], call: _Call) -> None:
        """Read what little follows ``[DONE]`` (the chunked-body terminator) so the connection goes back
        to the pool instead of being closed. Bounded by `DRAIN_LINES` and `DRAIN_SECONDS`; a failure
        here is ignored: every chunk was delivered, the connection is just not reused."""
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                for _ in range(DRAIN_LINES):
                    if await self._next_line(lines, call) is None:
                        return
        except (APIError, builtins.TimeoutError):
            return

    async def _next_line(self, lines: AsyncIterator[str], call: _Call) -> str | None:
        """The next line, None at the end of the body; httpx failures become typed errors."""
        failure: APIError
        try:
            return await lines.__anext__()
        except StopAsyncIteration:
            return None
        except httpx.HTTPError as exc:
            failure = self._transport._transport_error(exc, call)
        raise failure

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
