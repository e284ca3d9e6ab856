"""URL checks for the settings: the base URL requests go to, and the app URL sent as ``HTTP-Referer``.

Both are checked when the settings are made, so a URL that cannot be sent fails at start-up with a
`SettingsError` naming its variable, never at the first request:

    to_uri("https://café.example/menü")   # 'https://xn--caf-dma.example/men%C3%BC'
    base_url_problem("https://openrouter.ai/api/v1 ")   # None (surrounding spaces are stripped first)
    base_url_problem("https://u:p@host/api")   # 'it holds credentials (user:password@) ...'

`to_uri` is the IRI-to-URI mapping of RFC 3987 section 3.1: the host through IDNA (UTS #46, the
mapping browsers use), every other non-ASCII character as UTF-8 percent-escapes. It is lossless:
any URL parser reads the result back as the same address.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

__all__ = ["to_uri", "base_url_problem", "without_credentials", "has_space_or_control"]


def has_space_or_control(text: str) -> bool:
    """True when ``text`` holds whitespace (any Unicode space) or a control character."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in text)


def _escape(text: str) -> str:
    """Non-ASCII characters and spaces as UTF-8 percent-escapes; ASCII left as it is (existing escapes too)."""
    return "".join(c if c.isascii() and c != " " else quote(c, safe="") for c in text)


def _idna_host(host: str) -> str:
    import idna  # httpx's own dependency; loaded only for a non-ASCII host

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"its host {host!r} is not a valid internationalised domain name ({exc})") from None


def to_uri(url: str) -> str:
    """``url`` with only printable ASCII: IDNA for a non-ASCII host, percent-escapes for the rest.

    Raises ValueError (with the reason) for a line break or other control character, or a host
    that IDNA cannot encode. ASCII input comes back unchanged."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError("it holds a line break or another control character")
    if url.isascii() and " " not in url:
        return url
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("it holds a lone surrogate (not text)") from None
    parts = urlsplit(url)
    netloc = parts.netloc
    if netloc and not netloc.isascii():
        userinfo, _, hostport = netloc.rpartition("@")
        host, colon, port = hostport.partition(":") if not hostport.startswith("[") else (hostport, "", "")
        hostport = _idna_host(host) + colon + port
        netloc = (_escape(userinfo) + "@" if userinfo else "") + hostport
    return urlunsplit(
        (parts.scheme, netloc, _escape(parts.path), _escape(parts.query), _escape(parts.fragment))
    )


def without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as the API base URL, or None when it is fine.

    Checked: no whitespace or control characters inside, scheme https (http only for localhost or a
    loopback address), a host, a numeric port from 1 to 65535, no credentials, no query or
    fragment, no ``.``/``..`` path segments or empty segments."""
    if has_space_or_control(url):
        return "it holds whitespace or a control character"
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"it is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "it must start with https://"
    if "@" in parts.netloc:
        return "it holds credentials (user:password@); the key goes in OPENROUTER_API_KEY, never in the URL"
    host = parts.hostname
    if not host:
        return "it has no host"
    if port is not None and not 1 <= port <= 65535:
        return f"its port {port} is outside 1-65535"
    if parts.netloc.endswith(":"):
        return "it has an empty port"
    if parts.scheme == "http" and not _is_loopback(host):
        return "plain http:// is allowed only for localhost or a loopback address; use https://"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "it must not have a query (?...) or fragment (#...): requests append /chat/completions to it"
    segments = parts.path.split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments[:-1]) or (segments and segments[-1] in (".", "..")):
        return "its path has empty, '.' or '..' segments"
    return None
