"""Request headers: the core's own, plugin headers merged on top, `Authorization` added last."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import HeaderError
from ..settings import Settings

__all__ = ["core_headers", "merge_plugin_headers", "with_authorization", "check_header"]

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


def with_authorization(headers: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The final headers: ``headers`` plus ``Authorization: Bearer <key>``, set last so nothing replaces it.

    Raises `MissingAPIKeyError` when no key is configured.
    """
    final = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    final["Authorization"] = f"Bearer {settings.require_api_key()}"
    return final
