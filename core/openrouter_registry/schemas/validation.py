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

from ..errors import ConfigurationError
from .fastvalid import surely_valid
from .memo import SchemaMemo

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped,unused-ignore]
    from jsonschema.protocols import Validator  # type: ignore[import-untyped,unused-ignore]

__all__ = ["validate", "is_valid", "compiled_validator", "format_path", "depth_of", "MAX_ERRORS", "MAX_DEPTH", "CACHE_SIZE"]

#: At most this many messages are returned (plus one line counting the others).
MAX_ERRORS = 20
#: Data nested deeper than this is not validated: it gets one validation error instead (so a reply is
#: re-asked or refused, never a RecursionError). Recursive schemas validate to this depth.
MAX_DEPTH = 100
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
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped,unused-ignore]

    _check_refs(schema, cls)
    return cls(schema, registry=REGISTRY)


#: Keywords whose values are data, not subschemas (a "$ref" key inside them is not a reference).
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _check_refs(schema: Any, cls: Any) -> None:
    """Resolve every ``$ref`` of ``schema`` now, so that a broken one fails before a paid request.

    Only references inside the schema (and to the JSON Schema meta-schemas) resolve: remote schemas
    are never fetched, at check time or when a reply is validated."""
    import referencing.jsonschema
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped,unused-ignore]
    from referencing.exceptions import Unresolvable

    if not isinstance(schema, Mapping):
        return
    specification = referencing.jsonschema.specification_with(
        cls.META_SCHEMA.get("$schema", ""), default=referencing.jsonschema.DRAFT202012
    )
    root = REGISTRY.resolver_with_root(specification.create_resource(schema))
    stack: list[tuple[Any, Any, tuple[Any, ...]]] = [(schema, root, ())]
    while stack:
        node, resolver, path = stack.pop()
        if isinstance(node, Mapping):
            if path and isinstance(node.get("$id"), str):
                resolver = resolver.in_subresource(specification.create_resource(node))
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    raise ConfigurationError(
                        f"invalid JSON Schema: the $ref {ref!r} at {format_path(path)} in the schema cannot be "
                        "resolved (only references inside the schema are followed; remote schemas are never fetched)"
                    ) from None
            stack.extend((value, resolver, (*path, key)) for key, value in node.items() if key not in _DATA_KEYWORDS)
        elif isinstance(node, list):
            stack.extend((value, resolver, (*path, index)) for index, value in enumerate(node))


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


def depth_of(data: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply ``data`` nests (a scalar is 0, ``[1]`` is 1), counted without recursion; the count
    stops at ``limit + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


_TOO_DEEP = f"$: the reply nests more than {MAX_DEPTH} levels deep; at most {MAX_DEPTH} levels are validated"


def _errors(validator: Validator, data: Any) -> list[ValidationError]:
    try:
        return list(islice(validator.iter_errors(data), _COLLECT))
    except Exception as exc:
        from referencing.exceptions import Unresolvable  # jsonschema's own dependency

        if isinstance(exc, Unresolvable):
            raise ConfigurationError(f"invalid JSON Schema: cannot resolve a $ref ({exc})") from None
        raise


#: The exact types of a JSON parser's scalars.
_FLAT = frozenset({str, int, float, bool, type(None)})


def _shape(data: Any, limit: int = MAX_DEPTH) -> tuple[int, bool]:
    """(`depth_of` ``data``, whether it is `fastvalid.plain_json`) in one walk, level by level, without
    recursion (a third of the two walks' time on a nested reply). The depth stops at ``limit + 1``."""
    kind = type(data)
    if kind in _FLAT:
        return 0, True
    if not isinstance(data, (dict, list)):
        return 0, False
    plain = True
    level = [data]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return depth, plain
        below = []
        for node in level:
            if isinstance(node, dict):
                if plain and (type(node) is not dict or not all(type(key) is str for key in node)):
                    plain = False
                values: Iterable[Any] = node.values()
            else:
                plain = plain and type(node) is list
                values = node
            for value in values:
                kind = type(value)
                if kind is dict or kind is list:
                    below.append(value)
                elif kind not in _FLAT:
                    plain = False
                    if isinstance(value, (dict, list)):
                        below.append(value)
        level = below
    return depth, plain


def validate(data: Any, schema: Mapping[str, Any] | bool) -> list[str]:
    """The ways ``data`` breaks ``schema``, as readable messages with their JSON path
    (``"$.country: 'country' is a required property"``), sorted; an empty list when ``data`` is valid.

    At most `MAX_ERRORS` messages, and one more saying how many were left out. Raises
    `ConfigurationError` when ``schema`` is not a valid JSON Schema.
    """
    key = _KEYS(schema)
    validator = _compile(key)
    depth, plain = _shape(data)
    if depth > MAX_DEPTH:
        return [_TOO_DEEP]
    if plain and surely_valid(data, key, plain=True):  # the common case, answered in Rust (see fastvalid.py)
        return []
    try:
        errors = _errors(validator, data)
    except RecursionError:  # a schema whose keywords nest deeper per level than the bound allows for
        return ["$: the reply nests too deeply to validate"]
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
    depth, plain = _shape(data)
    if depth > MAX_DEPTH:
        return False
    if plain and surely_valid(data, key, plain=True):
        return True
    try:
        return bool(validator.is_valid(data))
    except RecursionError:
        return False
    except Exception:
        _errors(validator, data)  # raises the ConfigurationError for an unresolvable $ref
        raise
