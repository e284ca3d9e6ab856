"""Settings: environment variables and explicit arguments, turned into one frozen `Settings` value.

`Settings.from_env(**overrides)` reads the `OPENROUTER_*` variables, lets explicit arguments win, and
converts every raw string with the one cattrs converter of this module. A malformed value raises
`SettingsError` naming the variable and what it must be. The key is wrapped in `Secret`, which never
shows its value in `repr`, `str` or f-strings.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import cattrs

from .errors import MissingAPIKeyError, SettingsError

__all__ = ["Secret", "Settings", "DEFAULT_BASE_URL", "DEFAULT_MODEL", "DEFAULT_EMBEDDER_MODEL", "TRANSPORTS"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "openai/gpt-4o"
DEFAULT_EMBEDDER_MODEL = "openai/text-embedding-3-large"
#: The HTTP stacks a transport can send through (`OPENROUTER_TRANSPORT`): aiohttp's pool under httpx's API, or httpx's own.
TRANSPORTS = ("aiohttp", "httpx")


@attrs.frozen(repr=False)
class Secret:
    """A string that never shows itself: `repr`, `str` and `format` print a mask. Use `reveal()`."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)


def _env(name: str, expected: str) -> dict[str, str]:
    return {"env": name, "expected": expected}


def _check(predicate: Any) -> Any:
    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not predicate(value):
            meta = attribute.metadata
            raise SettingsError(meta["env"], meta["expected"], _shown(attribute.name, value))

    return validator


def _shown(name: str, value: Any) -> str | None:
    return None if name == "api_key" else repr(value)


def _valid_base_url(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return False
    if parts.scheme == "https":
        return True
    host = parts.hostname
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strip_slash(value: Any) -> Any:
    return value.rstrip("/") if isinstance(value, str) else value


def _positive(value: float) -> bool:
    return value > 0 and math.isfinite(value)


@attrs.frozen(kw_only=True)
class Settings:
    """What a generation needs to know from its environment. Build it with `Settings.from_env()`."""

    api_key: Secret | None = attrs.field(default=None, metadata=_env("OPENROUTER_API_KEY", "a non-empty key"))
    model: str = attrs.field(
        default=DEFAULT_MODEL,
        validator=_check(lambda v: bool(v.strip()) and v == v.strip()),
        metadata=_env("OPENROUTER_MODEL", "a model id such as 'openai/gpt-4o'"),
    )
    max_tokens: int | None = attrs.field(
        default=None, validator=_check(lambda v: v > 0), metadata=_env("OPENROUTER_MAX_TOKENS", "a positive integer")
    )
    http_referer: str | None = attrs.field(default=None, metadata=_env("OPENROUTER_HTTP_REFERER", "a URL"))
    site_name: str | None = attrs.field(default=None, metadata=_env("OPENROUTER_SITE_NAME", "an app name"))
    base_url: str = attrs.field(
        default=DEFAULT_BASE_URL,
        converter=_strip_slash,
        validator=_check(_valid_base_url),
        metadata=_env("OPENROUTER_BASE_URL", "an https:// URL (plain http:// only for localhost or 127.0.0.1)"),
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
        validator=_check(lambda v: bool(v.strip())),
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
        unknown = set(overrides) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
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
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value.strip())
    raise ValueError(type(value).__name__)


def _string(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(type(value).__name__)
    return value


_converter.register_structure_hook(int, _strict_int)
_converter.register_structure_hook(float, _strict_float)
_converter.register_structure_hook(str, _string)
_converter.register_structure_hook(Secret, _secret)


def structure_settings(raw: Mapping[str, Any]) -> Settings:
    """Convert raw values (strings from the environment, or typed arguments) into `Settings`."""
    values: dict[str, Any] = {}
    for field in attrs.fields(Settings):
        if field.name not in raw:
            continue
        value = raw[field.name]
        try:
            values[field.name] = _converter.structure(value, field.type)  # type: ignore[arg-type]
        except (ValueError, TypeError, cattrs.BaseValidationError):
            meta = field.metadata
            raise SettingsError(meta["env"], meta["expected"], _shown(field.name, value)) from None
    return Settings(**values)
