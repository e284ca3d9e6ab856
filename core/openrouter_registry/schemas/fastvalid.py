"""`surely_valid`: a fast first check that data is valid, before jsonschema is asked for errors.

Validation runs on every structured reply, and python-jsonschema's ``iter_errors`` costs more than
everything else our generate path does on a reply (about 60 us for a two-field object on a quiet
machine; jsonschema-rs, compiled Rust, answers the same question in well under 1 us). Nearly every
reply is valid, so `validation.validate` and `validation.is_valid` ask jsonschema-rs first and
return at once when it says "valid"; any other answer (invalid, a schema or value it cannot take,
jsonschema-rs not installed) goes to jsonschema as before, which stays the one source of error
messages and of `ConfigurationError` for bad schemas.

The fast check is only trusted where the two libraries agree:

- data made of plain JSON values only (dict, list, str, int, float, bool, None: what a JSON parser
  returns); anything else (a tuple, which jsonschema-rs takes for an array) goes to jsonschema;
- formats are annotations in both (``validate_formats=False``), as in `validation`;
- remote ``$ref`` are never fetched (the retriever refuses; `validation` refuses such schemas first);
- one known difference is left in: ``multipleOf`` with a float step (``0.07`` is a multiple of
  ``0.01`` for jsonschema-rs, which computes exactly, and not for jsonschema's float division).

jsonschema-rs is imported on the first validation, never by ``import openrouter_registry``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

__all__ = ["surely_valid", "plain_json"]

_SCALARS = (str, int, float, bool, type(None))


def _refuse(uri: str) -> Any:
    raise ValueError(f"remote $ref {uri!r} is not fetched")


@functools.lru_cache(maxsize=256)
def _checker(key: str) -> Callable[[Any], bool] | None:
    """jsonschema-rs's ``is_valid`` for the schema whose canonical JSON is ``key``, or None."""
    try:
        import jsonschema_rs  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        validator = jsonschema_rs.validator_for(json.loads(key), validate_formats=False, retriever=_refuse)
    except Exception:  # a schema it cannot take: jsonschema alone decides
        return None
    is_valid: Callable[[Any], bool] = validator.is_valid
    return is_valid


def plain_json(data: Any) -> bool:
    """True when ``data`` holds only the types a JSON parser produces (exact types, no subclasses)."""
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str:
                    return False
                stack.append(item)
        elif kind is list:
            stack.extend(value)
        elif kind not in _SCALARS:
            return False
    return True


def surely_valid(data: Any, key: str, *, plain: bool = False) -> bool:
    """True when jsonschema-rs says ``data`` is valid against the schema with canonical JSON ``key``;
    False means "ask jsonschema" (invalid, or no fast answer). ``plain``: the caller has checked
    `plain_json` already."""
    check = _checker(key)
    if check is None or not (plain or plain_json(data)):
        return False
    try:
        return bool(check(data))
    except Exception:  # e.g. a value it cannot take: jsonschema decides
        return False
