"""Checks on what a caller passes to a call (messages, content parts, ``extra_body``, texts to embed),
made before anything is sent: a value that cannot be sent as JSON raises `ConfigurationError` naming
the field, never a bare ``TypeError``/``ValueError``/``UnicodeEncodeError`` from the JSON encoder.

    json_copy({"provider": {"order": ("OpenAI",)}}, "extra_body")   # {'provider': {'order': ['OpenAI']}}
    json_copy({"x": float("nan")}, "extra_body")
    # ConfigurationError: extra_body.x is NaN or infinite, which JSON cannot carry ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigurationError
from .validation import format_path

__all__ = ["json_copy", "check_text", "MAX_INPUT_DEPTH"]

#: Nesting deeper than this in a request value is refused (the JSON encoder would overflow the stack).
MAX_INPUT_DEPTH = 200

_SURROGATE = re.compile("[\ud800-\udfff]")


def _where(root: str, path: Sequence[Any]) -> str:
    return root + format_path(path)[1:]


def check_text(text: str, where: str) -> None:
    """Raise `ConfigurationError` when ``text`` holds a lone surrogate (not encodable as UTF-8)."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise ConfigurationError(
            f"{where} holds a lone surrogate (U+{ord(found.group()):04X} at index {found.start()}), which is not "
            "text and cannot be sent; decode the source with errors='replace' or fix it"
        )


def _refuse(value: Any, where: str) -> ConfigurationError:
    kind = type(value).__name__
    if isinstance(value, (bytes, bytearray, memoryview)):
        hint = "decode it to str first (for an image, send a data: URL in an image_url part)"
    elif isinstance(value, (set, frozenset)):
        hint = "use a list"
    else:
        hint = "use str, int, float, bool, None, lists and dicts with str keys"
    return ConfigurationError(f"{where} is a {kind}, which is not JSON: {hint}")


def json_copy(value: Any, root: str) -> Any:
    """A copy of ``value`` made of plain JSON types (dicts, lists, str, int, finite float, bool, None).

    Tuples become lists and other mappings dicts. Raises `ConfigurationError` naming the path (e.g.
    ``messages[0].content[1].text``) for bytes, sets, other objects, non-str keys, NaN or infinity,
    lone surrogates, or nesting deeper than `MAX_INPUT_DEPTH`."""
    return _copy(value, root, [])


def _copy(value: Any, root: str, path: list[Any]) -> Any:
    if isinstance(value, str):
        check_text(value, _where(root, path))
        return value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(
                f"{_where(root, path)} is {value!r}: NaN and infinity are not JSON; send a finite number or null"
            )
        return value
    if len(path) >= MAX_INPUT_DEPTH:
        raise ConfigurationError(f"{_where(root, path)} is nested more than {MAX_INPUT_DEPTH} levels deep")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigurationError(f"{_where(root, path)} has a {type(key).__name__} key {key!r}: JSON keys are str")
            check_text(key, _where(root, path))
            path.append(key)
            out[key] = _copy(item, root, path)
            path.pop()
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            path.append(index)
            items.append(_copy(item, root, path))
            path.pop()
        return items
    raise _refuse(value, _where(root, path))
