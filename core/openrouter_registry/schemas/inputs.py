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

from ..errors import ConfigurationError
from ..settings import is_model_id
from .fastjson import MAPPING
from .validation import format_path

__all__ = ["json_copy", "check_text", "check_call_options", "check_extra_body", "MAX_INPUT_DEPTH"]

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
        if _SURROGATE.search(value) is not None:  # the path is spelled out only for an error
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
            if _SURROGATE.search(key) is not None:
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


def check_extra_body(extra_body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON copy of a call's ``extra_body`` (None stays None); anything but a dict of JSON values is a
    `ConfigurationError` naming the field."""
    if extra_body is None:
        return None
    if not isinstance(extra_body, MAPPING):
        raise ConfigurationError(f"extra_body must be a dict of request fields, got {type(extra_body).__name__}")
    copied: dict[str, Any] = json_copy(extra_body, "extra_body")
    return copied


def check_call_options(
    temperature: float | None, max_tokens: int | None, model: str | None = None, max_reasks: int | None = None
) -> None:
    """Refuse a call's options that no request could carry: a `ConfigurationError` naming the option."""
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0 <= temperature <= 2
    ):
        raise ConfigurationError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigurationError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if model is not None and (not isinstance(model, str) or not is_model_id(model)):
        raise ConfigurationError(f"model must be a model id such as 'openai/gpt-4o', got {model!r}")
    if max_reasks is not None and (isinstance(max_reasks, bool) or not isinstance(max_reasks, int) or max_reasks < 0):
        raise ConfigurationError(f"max_reasks must be an integer >= 0, got {max_reasks!r}")
