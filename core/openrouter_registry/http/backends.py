"""The HTTP stacks a `Transport` sends through, both behind one ``httpx.AsyncClient`` API.

``OPENROUTER_TRANSPORT=aiohttp`` (the default): httpx's client API over aiohttp's connection pool
(`AiohttpTransport` below). httpx's own pool (httpcore 1.0) spends CPU super-linearly once a hundred
or more requests are in flight; aiohttp's does not. Measured on a local server answering after 200 ms
(2 cores, 1,000 requests, 128 in flight): raw aiohttp 462 req/s at 0.44 CPU ms per request, httpx
over aiohttp 317 req/s at 1.05 ms, plain httpx 13 req/s at 24 ms, 8 sharded httpx pools 83 req/s at 3.3 ms. At 512 in flight
(3,000 requests), through the whole `Transport.post_json`: 0.72 CPU ms per request and 0.75-0.98x raw
aiohttp's requests/s (raw aiohttp: 0.40 ms); on the httpx stack 19-27 req/s at 17-26 ms.

``OPENROUTER_TRANSPORT=httpx``: httpx's own pool, with one repair: a connection left behind by a
request cancelled after the pool gave it that connection (httpcore issue #1093, unfixed in 1.0.9) is
dropped and closed instead of holding a pool slot for ever.

`Transport.post_json` (no stream) skips httpx's Request/Response objects on the aiohttp stack:
`AiohttpTransport.exchange` sends bytes and headers straight to the session; `read_declared` reads
a body that declared its length within the cap in one step, `raw_pieces` any other (the same bounded
decoding and size cap follow), a third less CPU per request.

Both raise only httpx exceptions, built without the underlying exception's text (it may quote
request headers, and so the key); `Transport` maps them to our typed errors by class.
aiohttp is imported on first request, never by ``import openrouter_registry``.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from .headers import revealed
from ..settings import Settings

if TYPE_CHECKING:
    import aiohttp

__all__ = ["make_client", "env_proxies", "proxy_for", "certificate_problem", "CertificateFailure", "AiohttpTransport", "raw_pieces", "read_declared", "KEEPALIVE_EXPIRY", "ACCEPT_ENCODING"]

#: Seconds an idle kept-alive connection stays in the pool.
KEEPALIVE_EXPIRY = 30.0
#: The encodings `Transport` decodes itself, in bounded steps (never brotli/zstd, whatever is installed).
ACCEPT_ENCODING = "gzip, deflate"
#: Largest piece read from an aiohttp response at once (bounds what one decompression step can expand).
READ_CHUNK = 64 * 1024


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's certificate-verifying context (certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` as
    set at the first https request), made once per process and shared by every pool and the catalog
    fetch: making one costs about 50 ms (the CA bundle is parsed each time)."""
    return httpx.create_ssl_context()


def env_proxies() -> list[tuple[Any, str | None]]:
    """The proxies the environment names (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, any
    case), as httpx reads them for its own clients: (URL pattern, proxy URL or None for "direct"), most
    specific first. Empty when none is set (the usual case: one ``getproxies`` call)."""
    if not urllib.request.getproxies():
        return []
    from httpx._utils import URLPattern, get_environment_proxies  # the rules httpx's own clients follow

    return sorted((URLPattern(pattern), url) for pattern, url in get_environment_proxies().items())


def proxy_for(proxies: Sequence[tuple[Any, str | None]], url: str) -> str | None:
    """The proxy URL ``proxies`` route ``url`` through, or None (direct)."""
    target = httpx.URL(url)
    for pattern, proxy in proxies:
        if pattern.matches(target):
            return proxy
    return None


def _check_proxy(proxy: str, stack: str) -> None:
    from ..errors import ConfigurationError

    scheme = proxy.split("://", 1)[0].lower() if "://" in proxy else ""
    supported = ("http",) if stack == "aiohttp" else ("http", "https", "socks5", "socks5h")
    if scheme not in supported:
        raise ConfigurationError(
            f"the proxy {httpx.URL(proxy).copy_with(username=None, password=None)} (from HTTP_PROXY, HTTPS_PROXY or "
            f"ALL_PROXY) is not supported by OPENROUTER_TRANSPORT={stack}: use an http:// proxy"
            + (", or OPENROUTER_TRANSPORT=httpx" if stack == "aiohttp" else "")
        )


def make_client(settings: Settings) -> tuple[httpx.AsyncClient, httpx.AsyncBaseTransport | None]:
    """A new client for ``settings.transport``: pool of ``settings.max_connections``, every one of them
    kept alive (so concurrency reuses connections), no redirects. Per-read timeouts are the settings';
    the whole-attempt deadline is `Transport`'s.

    Proxies: what the environment names (`env_proxies`: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``) is honoured by every request on both stacks, by httpx's rules: on the httpx stack one
    proxied pool per proxy (httpx mounts), on the aiohttp stack the proxy of each request's URL.

    Also the transport under it, for sending a built request straight to it: that skips the client's
    per-request auth, redirect, cookie and event-hook machinery (none of which we use), about a quarter
    of the CPU per request. None when the environment names a proxy: the client routes those."""
    size = settings.max_connections
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=KEEPALIVE_EXPIRY)
    proxies = env_proxies()
    for _, proxy in proxies:
        if proxy is not None:
            _check_proxy(proxy, settings.transport)
    transport: httpx.AsyncBaseTransport
    mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None
    if settings.transport == "aiohttp":
        transport = AiohttpTransport(limits, secure=settings.base_url.startswith("https:"), proxies=proxies)
    else:
        transport = _httpx_transport(limits)
        if proxies:
            mounts = {str(pattern.pattern): None if proxy is None else _httpx_transport(limits, proxy) for pattern, proxy in proxies}
    client = httpx.AsyncClient(
        transport=transport,
        mounts=mounts,
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout, pool=None),
        headers={"Accept-Encoding": ACCEPT_ENCODING, "User-Agent": user_agent(settings.transport)},
        follow_redirects=False,
    )
    return client, None if proxies else transport


def _httpx_transport(limits: httpx.Limits, proxy: str | None = None) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=ssl_context(), proxy=proxy)
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool:
        pool.__class__ = _ReclaimingPool  # same state, one more cleanup rule
    return transport


def user_agent(stack: str) -> str:
    """``openrouter-registry/<version>`` and then the HTTP stack that carries the request:
    ``openrouter-registry/0.1.0 httpx/0.28.1`` or ``openrouter-registry/0.1.0 httpx/0.28.1 aiohttp/3.12.15``
    (httpx's API over aiohttp's pool). A plugin's ``build_headers`` may still send its own."""
    from .. import __version__  # the root package is loaded before any of its modules

    agent = f"openrouter-registry/{__version__} httpx/{httpx.__version__}"
    if stack == "aiohttp":
        import aiohttp  # the aiohttp stack loads it for its first request anyway

        agent += f" aiohttp/{aiohttp.__version__}"
    return agent


class _ReclaimingPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, minus its cancellation leak: a connection that is neither idle nor closed and
    that no pending request owns (its request was cancelled after the pool assigned it, while it was
    connecting or before the request went out) is removed and closed instead of holding a slot."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        owned = {id(request.connection) for request in self._requests if request.connection is not None}
        orphans = [
            connection
            for connection in self._connections
            if id(connection) not in owned and not connection.is_idle() and not connection.is_closed()
        ]
        for connection in orphans:
            self._connections.remove(connection)
        return orphans + super()._assign_requests_to_connections()


class CertificateFailure(httpx.ConnectError):
    """A TLS certificate that could not be verified; ``reason`` is OpenSSL's verdict ("self-signed
    certificate", "Hostname mismatch, ...", "certificate has expired"), which quotes no request data."""

    def __init__(self, reason: str) -> None:
        super().__init__("certificate verify failed")
        self.reason = reason


def _verify_message(error: ssl.SSLCertVerificationError) -> str:
    message = getattr(error, "verify_message", None) or getattr(error, "reason", None) or "certificate verify failed"
    return " ".join(str(message).split())[:200]


def certificate_problem(exc: BaseException) -> str | None:
    """OpenSSL's reason when ``exc`` (an httpx exception, or what caused it) is a failed certificate
    verification, else None."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx chains httpcore's exception, which chains ssl's
        if seen is None:
            return None
        if isinstance(seen, CertificateFailure):
            return seen.reason
        if isinstance(seen, ssl.SSLCertVerificationError):
            return _verify_message(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _mapped(exc: BaseException) -> BaseException:
    """The httpx exception for an aiohttp (or socket) failure, without its text (raise it ``from None``:
    `Transport` keeps only its class name); other exceptions as they are."""
    import aiohttp

    kind: type[httpx.TransportError]
    certificate = getattr(exc, "certificate_error", None)  # aiohttp.ClientConnectorCertificateError
    if isinstance(certificate, ssl.SSLCertVerificationError):
        return CertificateFailure(_verify_message(certificate))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateFailure(_verify_message(exc))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError)):
        kind = httpx.ReadTimeout
    elif isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        kind = httpx.ProxyError
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError  # a truncated body, a malformed answer
    elif isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        kind = httpx.ReadError  # reset, disconnected
    elif isinstance(exc, (aiohttp.InvalidURL, ValueError)):
        kind = httpx.LocalProtocolError  # a request that cannot be sent (a header with CR/LF ...)
    elif isinstance(exc, aiohttp.ClientError):
        kind = httpx.TransportError
    else:
        return exc
    return kind(type(exc).__name__)


async def raw_pieces(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """An aiohttp response's body as sent (still compressed), in pieces of at most `READ_CHUNK`
    bytes; failures as httpx exceptions."""
    try:
        while chunk := await response.content.read(READ_CHUNK):
            yield chunk
    except Exception as exc:
        raise _mapped(exc) from None


async def read_declared(response: aiohttp.ClientResponse) -> bytes:
    """The whole body (as sent) of a response that declared its ``Content-Length``: aiohttp's parser
    stops at that length, and a body cut short raises (as an httpx exception), as in `raw_pieces`."""
    try:
        return await response.content.read()
    except Exception as exc:
        raise _mapped(exc) from None


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx byte stream; closing it gives the connection back (or
    drops it when the body was not read to the end)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in raw_pieces(self._response):
            yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session: ``limits.max_connections`` connections, each
    kept alive ``limits.keepalive_expiry`` seconds. The session is made on first request. ``secure``
    (the base URL is https): verify certificates against httpx's CA bundle (`ssl_context`)."""

    def __init__(
        self, limits: httpx.Limits, *, secure: bool = True, proxies: Sequence[tuple[Any, str | None]] = ()
    ) -> None:
        self._proxies = list(proxies)
        self._proxy_of: dict[str, str | None] = {}  # by scheme://host:port: the proxy rules ask nothing else
        self._limit = limits.max_connections or 0
        self._keepalive = limits.keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._secure = secure
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=self._keepalive if self._keepalive is not None else 0,
            # httpx's CA bundle for an https base URL; a plain-http one (a local server) needs no
            # certificates loaded: aiohttp's own verifying default stays for anything else
            ssl=ssl_context() if self._secure else True,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # httpx decodes, as it does on its own pool
            timeout=aiohttp.ClientTimeout(total=None),
        )

    def _timeout(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            import aiohttp

            timeout = self._timeouts[(connect, read)] = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read)
        return timeout

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, Any]] | httpx.Headers,
        content: bytes | None,
        *,
        connect: float | None,
        read: float | None,
    ) -> aiohttp.ClientResponse:
        """Send one request straight to the aiohttp session (no httpx objects: the lean path of
        `Transport.post_json`); the response comes back with its body unread (`raw_pieces`, then
        ``release()``). ``headers`` are sent as given (aiohttp adds Host and Content-Length); the
        ``Authorization`` value stays a `Bearer` until this call hands it to aiohttp.
        Failures raise httpx exceptions, as `handle_async_request` does."""
        if self._session is None or self._session.closed:
            self._session = self._open()
        proxy = None
        if self._proxies:
            origin = url.split("/", 3)[:3]
            key = "/".join(origin)
            try:
                proxy = self._proxy_of[key]
            except KeyError:
                proxy = self._proxy_of[key] = proxy_for(self._proxies, url)
        try:
            return await self._session.request(
                method,
                url,
                headers=revealed(  # the lean path's list first: isinstance of httpx.Headers runs the ABC check
                    headers if type(headers) is list else headers.multi_items() if isinstance(headers, httpx.Headers) else headers
                ),
                data=content or None,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(connect, read),
                proxy=proxy,
            )
        except Exception as exc:
            raise _mapped(exc) from None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        content = await request.aread()
        response = await self.exchange(
            request.method,
            str(request.url),
            request.headers,
            content,
            connect=timeouts.get("connect"),
            read=timeouts.get("read"),
        )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
