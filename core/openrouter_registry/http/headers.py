"""Request headers: the core's own, plugin headers merged on top, `Authorization` added last."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import HeaderError, MissingAPIKeyError
from ..settings import Secret, Settings

__all__ = ["core_headers", "merge_plugin_headers", "with_authorization", "check_header", "Bearer", "revealed", "reveal_value"]

RESERVED = frozenset({"authorization", "host", "content-length", "transfer-encoding"})


def core_headers(settings: Settings) -> dict[str, str]:
    """``HTTP-Referer`` and ``X-Title`` (app attribution) from the settings, when set."""
    headers: dict[str, str] = {}
    if settings.http_referer:
        headers["HTTP-Referer"] = settings.http_referer
    if settings.site_name:
        headers["X-Title"] = settings.site_name
    for name, value in headers.items():
        check_header("openrouter_registry", name, value)
    return headers


def check_header(plugin: str, name: Any, value: Any) -> None:
    """Raise `HeaderError` naming ``plugin`` unless ``name: value`` is a sendable, non-reserved header."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise HeaderError(plugin, f"header {name!r} must map a str name to a str value")
    for what, text in (("name", name), ("value", value)):
        if "\r" in text or "\n" in text:
            raise HeaderError(plugin, f"header {name!r} has a CR or LF in its {what}")
        if not text.isascii():
            raise HeaderError(plugin, f"header {name!r} has non-ASCII characters in its {what}")
    if not name or any(c in name for c in " :\t") or not name.isprintable():
        raise HeaderError(plugin, f"header name {name!r} is not a valid HTTP header name")
    if name.lower() in RESERVED:
        raise HeaderError(plugin, f"header {name!r} is set by the core and cannot be set by a plugin")


def merge_plugin_headers(base: Mapping[str, str], contributions: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, str]:
    """Merge each plugin's (already checked) headers on top of ``base``; names compare case-insensitively."""
    merged = dict(base)
    for _plugin, headers in contributions:
        for name, value in headers.items():
            for existing in [k for k in merged if k.lower() == name.lower()]:
                del merged[existing]
            merged[name] = value
    return merged


class Bearer:
    """The value of the ``Authorization`` header, kept in its `Secret` until the header is written:
    request headers travel through the call path (and so through every frame's locals a traceback
    reporter captures) holding this object, never the key as a plain string. `reveal_value` (or
    `revealed` for a whole header list) gives the text, inline where the HTTP library takes it."""

    __slots__ = ("secret",)

    def __init__(self, secret: Secret) -> None:
        self.secret = secret

    def reveal(self) -> str:
        return "Bearer " + self.secret.reveal()

    def __repr__(self) -> str:
        return "Bearer(Secret('**********'))"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bearer) and self.secret == other.secret

    def __hash__(self) -> int:
        return hash((Bearer, self.secret))


def reveal_value(value: str | Bearer) -> str:
    """A header value as text (a `Bearer` revealed)."""
    return value if type(value) is str else value.reveal()  # type: ignore[union-attr]


def revealed(headers: Iterable[tuple[str, str | Bearer]]) -> list[tuple[str, str]]:
    """Header pairs as text, for the HTTP library's own call (use inline: never bind the result)."""
    return [(name, value if type(value) is str else value.reveal()) for name, value in headers]  # type: ignore[union-attr]


def with_authorization(headers: Mapping[str, str], settings: Settings) -> dict[str, Any]:
    """The final headers: ``headers`` plus ``Authorization`` (a `Bearer`, revealed only when the header is
    written), set last so nothing replaces it.

    Raises `MissingAPIKeyError` when no key is configured.
    """
    final: dict[str, Any] = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    key = settings.api_key
    if key is None or not key:
        raise MissingAPIKeyError()
    final["Authorization"] = Bearer(key)
    return final
