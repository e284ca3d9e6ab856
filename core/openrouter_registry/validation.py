"""JSON Schema validation with readable, path-qualified messages and cached validators.

    validate({"city": "Lyon"}, schema)   # -> ["$.country: 'country' is a required property"]

A validator is compiled once per schema (the schema's ``$schema`` picks the draft; Draft 2020-12 by
default), after ``check_schema``, and kept in a bounded cache keyed by the schema's canonical JSON.
``jsonschema`` is imported on the first validation only. Formats are annotations, as the draft says:
``"format": "email"`` is not asserted.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .fastvalid import surely_valid
from .memo import SchemaMemo

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped,unused-ignore]
    from jsonschema.protocols import Validator  # type: ignore[import-untyped,unused-ignore]

__all__ = ["validate", "is_valid", "compiled_validator", "format_path", "MAX_ERRORS", "CACHE_SIZE"]

#: At most this many messages are returned (plus one line counting the others).
MAX_ERRORS = 20
#: Compiled validators kept (least recently used ones are dropped).
CACHE_SIZE = 256
#: Errors collected before sorting (bounds the work on data that is wrong everywhere).
_COLLECT = 200
#: Messages are cut to this length (jsonschema quotes whole instances in some of them).
_MESSAGE_CHARS = 240

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_path(path: Iterable[Any]) -> str:
    """A JSON path for ``path`` (keys and indexes): ``$``, ``$.items[0].name``, ``$["odd key"]``."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(f"[{part}]")
        elif isinstance(part, str) and _IDENTIFIER.match(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(str(part), ensure_ascii=False)}]")
    return "".join(parts)


def _schema_key(schema: Mapping[str, Any] | bool) -> str:
    if not isinstance(schema, (Mapping, bool)):
        raise ConfigurationError(f"invalid JSON Schema: expected an object (or a boolean), got {type(schema).__name__}")
    try:
        return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid JSON Schema: it is not JSON ({exc})") from None


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile(key: str) -> Validator:
    from jsonschema import exceptions, validators  # type: ignore[import-untyped,unused-ignore]

    schema = json.loads(key)
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as error:
        where = format_path(error.absolute_path)
        raise ConfigurationError(f"invalid JSON Schema: {error.message} (at {where} in the schema)") from None
    return cls(schema)


def compiled_validator(schema: Mapping[str, Any] | bool) -> Validator:
    """The jsonschema validator for ``schema``: checked and compiled on first use, then cached.

    Raises `ConfigurationError` ("invalid JSON Schema: ...") for a schema that is not one.
    """
    return _compile(_KEYS(schema))


#: The cache key of a schema object, without serializing it again on each call (see memo.py).
_KEYS = SchemaMemo(_schema_key)


def _shorten(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "\u2026"


def _message(error: ValidationError) -> str:
    path = list(error.absolute_path)
    required = error.validator_value
    if error.validator == "required" and isinstance(error.instance, Mapping) and isinstance(required, list):
        missing = [name for name in required if name not in error.instance]
        named = next((name for name in missing if error.message == f"{name!r} is a required property"), None)
        if named is not None:
            path.append(named)
    return f"{format_path(path)}: {_shorten(error.message)}"


def _errors(validator: Validator, data: Any) -> list[ValidationError]:
    try:
        return list(islice(validator.iter_errors(data), _COLLECT))
    except Exception as exc:
        from referencing.exceptions import Unresolvable  # jsonschema's own dependency

        if isinstance(exc, Unresolvable):
            raise ConfigurationError(f"invalid JSON Schema: cannot resolve a $ref ({exc})") from None
        raise


def validate(data: Any, schema: Mapping[str, Any] | bool) -> list[str]:
    """The ways ``data`` breaks ``schema``, as readable messages with their JSON path
    (``"$.country: 'country' is a required property"``), sorted; an empty list when ``data`` is valid.

    At most `MAX_ERRORS` messages, and one more saying how many were left out. Raises
    `ConfigurationError` when ``schema`` is not a valid JSON Schema.
    """
    key = _KEYS(schema)
    validator = _compile(key)
    if surely_valid(data, key):  # the common case, answered in Rust (see fastvalid.py)
        return []
    errors = _errors(validator, data)
    messages = sorted({_message(error) for error in errors})
    if len(messages) > MAX_ERRORS:
        left = len(messages) - MAX_ERRORS
        count = f"{left} more" if len(errors) < _COLLECT else "more"
        messages = [*messages[:MAX_ERRORS], f"... and {count} error{'s' if left > 1 else ''}"]
    return messages


def is_valid(data: Any, schema: Mapping[str, Any] | bool) -> bool:
    """True when ``data`` validates against ``schema``. Raises `ConfigurationError` for an invalid schema."""
    key = _KEYS(schema)
    validator = _compile(key)
    if surely_valid(data, key):
        return True
    try:
        return bool(validator.is_valid(data))
    except Exception:
        _errors(validator, data)  # raises the ConfigurationError for an unresolvable $ref
        raise
