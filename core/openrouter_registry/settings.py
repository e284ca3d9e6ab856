"""Settings: environment variables and explicit arguments, turned into one frozen `Settings` value.

`Settings.from_env(**overrides)` reads the `OPENROUTER_*` variables, lets explicit arguments win, and
converts every raw string with the one cattrs converter of this module. A malformed value raises
`SettingsError` naming the variable and what it must be. Everything that goes on the wire is checked
here, so that nothing fails at the first request: the key (printable ASCII), the app name (`X-Title`:
printable ASCII), the app URL (`HTTP-Referer`: sent in its ASCII form, see `to_uri` below) and the base
URL (`base_url_problem`). The key is wrapped in `Secret`, which never shows its value in `repr`,
`str`, f-strings, `attrs.asdict` or cattrs, and cannot be pickled.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypedDict
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import attrs
import cattrs

from .errors import MissingAPIKeyError, SettingsError, remember_secret

__all__ = ["Secret", "Settings", "SettingsOptions", "ServiceOptions", "DEFAULT_BASE_URL", "DEFAULT_MODEL", "DEFAULT_EMBEDDER_MODEL", "TRANSPORTS"]

# --- URL checks -------------------------------------------------------------------------------
# URL checks for the settings: the base URL requests go to, and the app URL sent as ``HTTP-Referer``.
#
# Both are checked when the settings are made, so a URL that cannot be sent fails at start-up with a
# `SettingsError` naming its variable, never at the first request:
#
#     to_uri("https://café.example/menü")   # 'https://xn--caf-dma.example/men%C3%BC'
#     base_url_problem("https://openrouter.ai/api/v1 ")   # None (surrounding spaces are stripped first)
#     base_url_problem("https://u:p@host/api")   # 'it holds credentials (user:password@) ...'
#
# `to_uri` is the IRI-to-URI mapping of RFC 3987 section 3.1: the host through IDNA (UTS #46, the
# mapping browsers use), every other non-ASCII character as UTF-8 percent-escapes. It is lossless:
# any URL parser reads the result back as the same address.


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


# --- settings ---------------------------------------------------------------------------------

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "openai/gpt-4o"
DEFAULT_EMBEDDER_MODEL = "openai/text-embedding-3-large"
#: The HTTP stacks a transport can send through (`OPENROUTER_TRANSPORT`): aiohttp's pool under httpx's API, or httpx's own.
TRANSPORTS = ("aiohttp", "httpx")


class Secret:
    """A string that never shows itself. `repr`, `str` and `format` print a mask; `attrs.asdict`,
    cattrs and `copy` keep the `Secret` object (never its text); pickling is refused. Use `reveal()`."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)
        remember_secret(value)  # so that a server echoing it never gets it into our messages

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: Any) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError(
            "the API key (a Secret) cannot be pickled: give the other process OPENROUTER_API_KEY in its "
            "environment and build its settings there"
        )


def _env(name: str, expected: str) -> dict[str, str]:
    return {"env": name, "expected": expected}


def _check(predicate: Any) -> Any:
    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not predicate(value):
            meta = attribute.metadata
            raise SettingsError(meta["env"], meta["expected"], _shown(attribute.name, value))

    return validator


def _shown(name: str, value: Any) -> str | None:
    if name == "api_key":
        return None
    if name == "base_url" and isinstance(value, str):
        return repr(without_credentials(value))
    return repr(value)


def _base_url(value: Any) -> Any:
    """Surrounding whitespace and trailing slashes dropped, a non-ASCII host through IDNA; the rest is
    checked by `_check_base_url`."""
    if not isinstance(value, str):
        return value
    try:
        if has_space_or_control(value.strip()):
            raise ValueError("it holds whitespace or a control character")
        return to_uri(value.strip()).rstrip("/")
    except ValueError as exc:
        raise SettingsError("OPENROUTER_BASE_URL", _BASE_URL, f"{without_credentials(value)!r}: {exc}") from None


_BASE_URL = "an https:// URL (plain http:// only for localhost or 127.0.0.1)"


def _check_base_url(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    problem = base_url_problem(value)
    if problem is not None:
        raise SettingsError("OPENROUTER_BASE_URL", _BASE_URL, f"{without_credentials(value)!r}: {problem}")


def _referer(value: Any) -> Any:
    """The app URL as sent in ``HTTP-Referer``: non-ASCII through IDNA and percent-escapes (lossless)."""
    if not isinstance(value, str):
        return value
    try:
        return to_uri(value.strip())
    except ValueError as exc:
        raise SettingsError("OPENROUTER_HTTP_REFERER", f"your app's URL, e.g. https://example.com ({exc})") from None


def _check_site_name(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """``X-Title`` carries printable ASCII only, and OpenRouter documents no encoding for anything else."""
    if value is None or (value.isascii() and value.isprintable() and value == value.strip() and value):
        return
    hint = ""
    if "\r" in value or "\n" in value:
        reason = "a value with a line break"
    elif not value.strip():
        reason = "a blank value"
    else:
        reason = repr(value)
        folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
        folded = " ".join("".join(c for c in folded if c.isprintable()).split())
        hint = f" such as {folded!r}" if folded else ""
    raise SettingsError(
        "OPENROUTER_SITE_NAME",
        "printable ASCII on one line: it is sent as the X-Title header, which carries ASCII only, and OpenRouter "
        f"documents no encoding for other characters; use an ASCII spelling{hint}",
        reason,
    )


def _as_secret(value: Any) -> Any:
    """A key given as a plain string (``Settings(api_key="...")``) becomes a `Secret`, stripped."""
    return Secret(value.strip()) if isinstance(value, str) else value


_CONTROL_NAMES = {"\n": "line feed", "\r": "carriage return", "\t": "tab"}


def _check_api_key(instance: Any, attribute: attrs.Attribute[Any], value: Secret | None) -> None:
    """Printable ASCII without whitespace: a key with a line break or a non-breaking space (a bad
    paste) would otherwise reach the HTTP library, whose errors and debug logs quote headers."""
    if value is None:
        return
    if not isinstance(value, Secret):
        raise SettingsError("OPENROUTER_API_KEY", "a string (the key)", type(value).__name__)
    key = value.reveal()
    bad = next((c for c in key if not ("!" <= c <= "~")), None)
    if bad is None:
        return
    if bad.isspace() or unicodedata.category(bad).startswith("C"):
        name = _CONTROL_NAMES.get(bad) or unicodedata.name(bad, "control character").lower()
        what = f"a {name} (U+{ord(bad):04X})"
    else:
        what = "a non-ASCII character"
    raise SettingsError(
        "OPENROUTER_API_KEY",
        "printable ASCII without spaces or line breaks (keys look like sk-or-v1-...; copy it again from "
        "https://openrouter.ai/settings/keys)",
        f"a key holding {what}",
    )


def is_model_id(value: str) -> bool:
    """A model id goes in the JSON body: printable, no whitespace (nor the lone surrogates that an
    undecodable environment variable turns into)."""
    # every whitespace character but " " is unprintable, so this is the whitespace check too (in C)
    return bool(value) and value.isprintable() and " " not in value


def _positive(value: float) -> bool:
    return value > 0 and math.isfinite(value)


def _check_type(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``Settings(...)`` built directly gets values as given (`from_env` and `replace` structure them
    first): a value that the same structuring would refuse or change (``catalog="no"``, ``timeout="30"``,
    ``max_attempts=2.5``) is a `SettingsError`, not a ``TypeError`` deep in a check or a value kept as is."""
    if value is None:
        return
    try:
        fits = _converter.structure(value, attribute.type) == value  # type: ignore[arg-type]
    except (ValueError, TypeError, cattrs.BaseValidationError):
        fits = False
    if not fits:
        meta = attribute.metadata
        raise SettingsError(meta["env"], meta["expected"], _shown(attribute.name, value))


def _typed_fields(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """Every field's type is checked first, then its own validator runs (the key's checks its own)."""
    return [f if f.name == "api_key" else
            f.evolve(validator=attrs.validators.and_(_check_type, f.validator) if f.validator else _check_type)
            for f in fields]


@attrs.frozen(kw_only=True, cache_hash=True, field_transformer=_typed_fields)  # hashed on every call (resolution cache key)
class Settings:
    """What a generation needs to know from its environment. Build it with `Settings.from_env()`."""

    api_key: Secret | None = attrs.field(
        default=None,
        converter=_as_secret,
        validator=_check_api_key,
        metadata=_env("OPENROUTER_API_KEY", "a non-empty key"),
    )
    model: str = attrs.field(
        default=DEFAULT_MODEL,
        validator=_check(is_model_id),
        metadata=_env("OPENROUTER_MODEL", "a model id such as 'openai/gpt-4o'"),
    )
    max_tokens: int | None = attrs.field(
        default=None, validator=_check(lambda v: v > 0), metadata=_env("OPENROUTER_MAX_TOKENS", "a positive integer")
    )
    http_referer: str | None = attrs.field(
        default=None, converter=_referer, metadata=_env("OPENROUTER_HTTP_REFERER", "a URL")
    )
    site_name: str | None = attrs.field(
        default=None, validator=_check_site_name, metadata=_env("OPENROUTER_SITE_NAME", "an app name")
    )
    base_url: str = attrs.field(
        default=DEFAULT_BASE_URL,
        converter=_base_url,
        validator=_check_base_url,
        metadata=_env("OPENROUTER_BASE_URL", _BASE_URL),
    )
    timeout: float = attrs.field(
        default=120.0,
        validator=_check(_positive),
        metadata=_env("OPENROUTER_TIMEOUT", "a positive number of seconds"),
    )
    connect_timeout: float = attrs.field(
        default=10.0,
        validator=_check(_positive),
        metadata=_env("OPENROUTER_CONNECT_TIMEOUT", "a positive number of seconds"),
    )
    max_attempts: int = attrs.field(
        default=3, validator=_check(lambda v: v >= 1), metadata=_env("OPENROUTER_MAX_ATTEMPTS", "an integer >= 1")
    )
    retry_after_max: float = attrs.field(
        default=60.0,
        validator=_check(lambda v: v >= 0 and math.isfinite(v)),
        metadata=_env("OPENROUTER_RETRY_AFTER_MAX", "a number of seconds >= 0"),
    )
    max_reasks: int = attrs.field(
        default=1, validator=_check(lambda v: v >= 0), metadata=_env("OPENROUTER_MAX_REASKS", "an integer >= 0")
    )
    embedder_model: str = attrs.field(
        default=DEFAULT_EMBEDDER_MODEL,
        validator=_check(is_model_id),
        metadata=_env("OPENROUTER_EMBEDDER_MODEL", "a model id such as 'openai/text-embedding-3-large'"),
    )
    embedder_dimensions: int | None = attrs.field(
        default=None,
        validator=_check(lambda v: v > 0),
        metadata=_env("OPENROUTER_EMBEDDER_DIMENSIONS", "a positive integer"),
    )
    # --- transport
    transport: str = attrs.field(
        default="aiohttp",
        validator=_check(lambda v: v in TRANSPORTS),
        metadata=_env("OPENROUTER_TRANSPORT", "one of " + ", ".join(TRANSPORTS)),
    )
    max_connections: int = attrs.field(
        default=512, validator=_check(lambda v: v >= 1), metadata=_env("OPENROUTER_MAX_CONNECTIONS", "an integer >= 1")
    )
    stream_idle_timeout: float = attrs.field(
        default=120.0,
        validator=_check(_positive),
        metadata=_env("OPENROUTER_STREAM_IDLE_TIMEOUT", "a positive number of seconds"),
    )
    stream_timeout: float = attrs.field(
        default=900.0,
        validator=_check(_positive),
        metadata=_env("OPENROUTER_STREAM_TIMEOUT", "a positive number of seconds"),
    )
    max_response_bytes: int = attrs.field(
        default=256 * 1024 * 1024,
        validator=_check(lambda v: v >= 1024),
        metadata=_env("OPENROUTER_MAX_RESPONSE_BYTES", "an integer >= 1024 (bytes)"),
    )
    # --- catalog
    cache_dir: str | None = attrs.field(
        default=None,
        validator=_check(lambda v: bool(v.strip())),
        metadata=_env("OPENROUTER_CACHE_DIR", "a directory path"),
    )
    catalog_ttl: float = attrs.field(
        default=86400.0,
        validator=_check(_positive),
        metadata=_env("OPENROUTER_CATALOG_TTL", "a positive number of seconds"),
    )
    catalog: bool = attrs.field(default=True, metadata=_env("OPENROUTER_CATALOG", "on or off"))
    # --- prompt caching
    prompt_cache: str = attrs.field(
        default="auto",
        validator=_check(lambda v: v in ("auto", "off")),
        metadata=_env("OPENROUTER_PROMPT_CACHE", "auto or off"),
    )
    prompt_cache_ttl: str | None = attrs.field(
        default=None,
        validator=_check(lambda v: v in ("5m", "1h")),
        metadata=_env("OPENROUTER_PROMPT_CACHE_TTL", "5m or 1h"),
    )
    session_id: str | None = attrs.field(
        default=None,
        validator=_check(lambda v: 0 < len(v.strip()) and len(v) <= 256 and v.isprintable()),
        metadata=_env("OPENROUTER_SESSION_ID", "a session id of 1 to 256 printable characters"),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read `OPENROUTER_*` from `environ` (default `os.environ`); explicit, non-None `overrides` win.

        Empty variables count as unset. Raises `SettingsError` for a malformed value.
        """
        environ = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for field in attrs.fields(cls):
            value = environ.get(field.metadata["env"], "")
            if value.strip():
                raw[field.name] = value.strip()
        known = [f.name for f in attrs.fields(cls)]
        for name in sorted(set(overrides) - set(known)):
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SettingsError(name, f"a setting name ({hint}the settings are: {', '.join(known)})")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return structure_settings(raw)

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied (None values are ignored), validated like `from_env`."""
        data = {f.name: getattr(self, f.name) for f in attrs.fields(Settings)}
        data.update({k: v for k, v in changes.items() if v is not None})
        return structure_settings(data)

    def require_api_key(self) -> str:
        """The key, revealed for the `Authorization` header; raises `MissingAPIKeyError` when unset."""
        if self.api_key is None or not self.api_key.reveal():
            raise MissingAPIKeyError()
        return self.api_key.reveal()


attrs.resolve_types(Settings)


class SettingsOptions(TypedDict, total=False):
    """The settings `NLPServices.openrouter(...)` and `openrouter_sync(...)` take by their own names (see
    `ServiceOptions` for the others): the `Settings` fields of the same names (see `Settings` for each one's environment variable). A value
    given here wins over the environment; None leaves the environment's (or the default)."""

    timeout: float | None
    connect_timeout: float | None
    max_attempts: int | None
    retry_after_max: float | None
    max_reasks: int | None
    embedder_model: str | None
    embedder_dimensions: int | None
    transport: str | None
    max_connections: int | None
    stream_idle_timeout: float | None
    stream_timeout: float | None
    max_response_bytes: int | None
    cache_dir: str | None
    catalog_ttl: float | None
    catalog: bool | None
    prompt_cache: str | None
    prompt_cache_ttl: str | None
    session_id: str | None


class ServiceOptions(SettingsOptions, total=False):
    """Every keyword of `NLPServices.openrouter(...)` and `openrouter_sync(...)`: `SettingsOptions` plus
    ``model_name`` (the `Settings` field ``model``), ``max_tokens``, ``http_referer``, ``site_name``,
    ``base_url``, ``api_key``, and ``on_event`` (a callable that gets every `CallEvent` of the service's
    calls; not a setting)."""

    model_name: str | None
    max_tokens: int | None
    http_referer: str | None
    site_name: str | None
    base_url: str | None
    api_key: str | None
    on_event: Callable[[Any], object] | None


# --- conversion: the one cattrs converter that turns raw values into settings ---------------------

_converter = cattrs.Converter()


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        raise ValueError("bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip(), 10)
    raise ValueError(type(value).__name__)


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise ValueError("bool")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError("not finite")
    return result


def _secret(value: Any, _: type) -> Secret:
    if isinstance(value, (Secret, str)):
        secret: Secret = _as_secret(value)
        return secret
    raise ValueError(type(value).__name__)


def _string(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(type(value).__name__)
    return value


_converter.register_structure_hook(int, _strict_int)
_converter.register_structure_hook(float, _strict_float)
_converter.register_structure_hook(str, _string)
_converter.register_structure_hook(Secret, _secret)


_SWITCH = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _switch(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _SWITCH:
        return _SWITCH[value.strip().lower()]
    raise ValueError(repr(value))


_converter.register_structure_hook(bool, _switch)


def structure_settings(raw: Mapping[str, Any]) -> Settings:
    """Convert raw values (strings from the environment, or typed arguments) into `Settings`."""
    values: dict[str, Any] = {}
    for field in attrs.fields(Settings):
        if field.name not in raw:
            continue
        value = raw[field.name]
        try:
            values[field.name] = _converter.structure(value, field.type)  # type: ignore[arg-type]
        except SettingsError:
            raise
        except (ValueError, TypeError, cattrs.BaseValidationError):
            meta = field.metadata
            raise SettingsError(meta["env"], meta["expected"], _shown(field.name, value)) from None
    return Settings(**values)
