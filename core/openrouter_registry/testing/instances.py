"""A deterministic JSON-Schema instance generator: a placeholder value that validates against a schema.

    instance_for({"type": "object", "properties": {"city": {"type": "string"}}})
    # -> {"city": "example city"}

The local test server uses it to answer structured-output requests the way a model would, and plugin
authors can use it to build fixtures. Supported (JSON Schema Draft 2020-12, plus what pydantic emits):
``type`` (also lists of types), ``const``, ``enum``, objects (``properties``, ``required``,
``additionalProperties``, ``patternProperties``, ``minProperties``/``maxProperties``,
``dependentRequired``), arrays (``items``, ``prefixItems``, ``minItems``/``maxItems``,
``uniqueItems``, ``contains``), strings (``minLength``/``maxLength``, ``pattern``, ``format``
date-time/date/time/email/uri/uuid/hostname/ipv4/ipv6), integers and numbers (``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum``, ``multipleOf``), booleans, null, ``anyOf``/``oneOf`` (the
first branch that works, non-null branches first), ``allOf`` (merged), ``not`` (checked), and local
``$ref`` (``#/$defs/...``, ``#/definitions/...``, any JSON pointer into the document, ``#``).

Every property is filled, required or not, with a readable placeholder ("example <property name>"),
so the output looks like a plausible model answer. The result is checked with jsonschema's Draft
2020-12 validator before it is returned (jsonschema is imported on first use only).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from jsonschema.protocols import Validator  # type: ignore[import-untyped,unused-ignore]

__all__ = ["instance_for", "UnsatisfiableSchemaError"]

#: Past this nesting depth arrays get their minimum length, objects only their required properties,
#: and null branches are preferred, so recursive schemas end.
SOFT_DEPTH = 6
#: Past this nesting depth generation gives up (a schema that can only be satisfied by an infinite value).
HARD_DEPTH = 48
#: Generation steps allowed for one instance (bounds the work on pathological schemas).
MAX_STEPS = 20_000

_FORMAT_EXAMPLES: dict[str, Callable[[str, int], str]] = {
    "date-time": lambda name, v: f"2024-01-{1 + v % 28:02d}T12:00:00Z",
    "date": lambda name, v: f"2024-01-{1 + v % 28:02d}",
    "time": lambda name, v: f"12:{v % 60:02d}:00Z",
    "email": lambda name, v: f"user{v + 1 if v else ''}@example.com",
    "idn-email": lambda name, v: f"user{v + 1 if v else ''}@example.com",
    "uri": lambda name, v: f"https://example.com/{_slug(name)}{v + 1 if v else ''}",
    "iri": lambda name, v: f"https://example.com/{_slug(name)}{v + 1 if v else ''}",
    "uri-reference": lambda name, v: f"https://example.com/{_slug(name)}{v + 1 if v else ''}",
    "url": lambda name, v: f"https://example.com/{_slug(name)}{v + 1 if v else ''}",
    "uuid": lambda name, v: f"123e4567-e89b-42d3-a456-{426614174000 + v:012d}",
    "hostname": lambda name, v: f"host{v + 1 if v else ''}.example.com",
    "ipv4": lambda name, v: f"192.0.2.{1 + v % 254}",
    "ipv6": lambda name, v: f"2001:db8::{1 + v % 65535:x}",
    "duration": lambda name, v: f"P{1 + v}D",
}

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_CONJOINED = ("items", "additionalProperties", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems")
_TYPE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("object", ("properties", "required", "additionalProperties", "patternProperties", "minProperties",
                "maxProperties", "propertyNames", "dependentRequired")),
    ("array", ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)


class UnsatisfiableSchemaError(ValueError):
    """No instance could be produced: the schema is invalid, contradictory, infinitely recursive, or
    uses something the generator cannot satisfy (for instance a ``pattern`` with look-arounds)."""


def instance_for(schema: Mapping[str, Any] | bool, *, name: str = "response") -> Any:
    """A deterministic value that validates against ``schema`` (Draft 2020-12).

    ``name`` is used for placeholder text when the top-level value is a string ("example <name>").
    Raises `UnsatisfiableSchemaError` when no valid value could be produced.
    """
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped,unused-ignore]

    if not isinstance(schema, (Mapping, bool)):
        raise UnsatisfiableSchemaError(f"a JSON Schema is an object or a boolean, got {type(schema).__name__}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise UnsatisfiableSchemaError(f"invalid JSON Schema: {exc.message}") from None
    validator = Draft202012Validator(schema)
    try:
        value = _Generator(schema, validator).make(schema, name, 0, _Ctx())
    except re.error as exc:
        raise UnsatisfiableSchemaError(f"invalid pattern in the schema: {exc}") from None
    except RecursionError:
        raise UnsatisfiableSchemaError("schema nests too deep") from None
    error = next(iter(validator.iter_errors(value)), None)
    if error is not None:
        raise UnsatisfiableSchemaError(f"generated value does not validate: {error.message}")
    return value


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"


def _types(schema: Mapping[str, Any]) -> list[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return [declared] if isinstance(declared, str) else [t for t in declared if isinstance(t, str)]


def _is_null_branch(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (schema.get("type") == "null" or schema.get("const", 0) is None)


def _merge_types(a: Any, b: Any) -> list[str]:
    """The intersection of two ``type`` values ("integer" is a subset of "number")."""
    left = [a] if isinstance(a, str) else list(a)
    right = [b] if isinstance(b, str) else list(b)
    merged: list[str] = []
    for kind in left:
        if kind in right:
            common = kind
        elif {kind, "integer"} <= {"integer", "number"} and {"integer", "number"} & set(right) and kind != "null":
            common = "integer"
        else:
            continue
        if common not in merged:
            merged.append(common)
    if not merged:
        raise UnsatisfiableSchemaError(f"allOf with incompatible types {a!r} and {b!r}")
    return merged


def _merge(a: Mapping[str, Any] | bool, b: Mapping[str, Any] | bool) -> dict[str, Any]:
    """The conjunction of two schemas, as one schema (an approximation; the result is validated later)."""
    if a is False or b is False:
        raise UnsatisfiableSchemaError("allOf with a false schema")
    if a is True:
        return dict(b) if isinstance(b, Mapping) else {}
    if b is True:
        return dict(a)
    assert isinstance(a, Mapping) and isinstance(b, Mapping)
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        mine = out[key]
        if mine == value:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(mine, Mapping) and isinstance(value, Mapping):
            joined = dict(mine)
            for k, v in value.items():
                joined[k] = {"allOf": [joined[k], v]} if k in joined else v
            out[key] = joined
        elif key == "required":
            out[key] = list(mine) + [r for r in value if r not in mine]
        elif key == "type":
            out[key] = _merge_types(mine, value)
        elif key in _LOWER_BOUNDS:
            out[key] = max(mine, value)
        elif key in _UPPER_BOUNDS:
            out[key] = min(mine, value)
        elif key == "enum":
            out[key] = [v for v in mine if v in value]
            if not out[key]:
                raise UnsatisfiableSchemaError("allOf with disjoint enums")
        elif key == "const":
            raise UnsatisfiableSchemaError("allOf with different consts")
        elif key in _CONJOINED:
            out[key] = {"allOf": [mine, value]}
        elif key == "not":
            out[key] = {"anyOf": [mine, value]}
        elif key == "uniqueItems":
            out[key] = bool(mine) or bool(value)
        elif key == "multipleOf" and isinstance(mine, int) and isinstance(value, int):
            out[key] = mine * value // math.gcd(mine, value)
        elif key == "prefixItems":
            longer, shorter = (mine, value) if len(mine) >= len(value) else (value, mine)
            out[key] = [
                {"allOf": [x, shorter[i]]} if i < len(shorter) else x for i, x in enumerate(longer)
            ]
        elif key in ("anyOf", "oneOf"):
            # (A1 | A2) & (B1 | B2): keep the pairs that do not obviously contradict.
            pairs: list[dict[str, Any]] = []
            for x in mine:
                for y in value:
                    try:
                        pairs.append(_merge(x, y))
                    except UnsatisfiableSchemaError:
                        continue
            if not pairs:
                raise UnsatisfiableSchemaError(f"allOf with incompatible {key} branches")
            out[key] = pairs
        elif key == "allOf":
            out[key] = list(mine) + list(value)
        # anything else (pattern, format, title, ...): the first one wins; validation catches the rest
    return out


class _Ctx(NamedTuple):
    """Where generation is: nesting depth, the $refs being expanded, and whether to keep values minimal
    (past `SOFT_DEPTH` or inside a recursive $ref: required properties only, shortest arrays, null first)."""

    depth: int = 0
    stack: frozenset[str] = frozenset()
    minimal: bool = False

    def child(self) -> _Ctx:
        return _Ctx(self.depth + 1, self.stack, self.minimal)


class _Generator:
    def __init__(self, root: Mapping[str, Any] | bool, validator: Validator) -> None:
        self.root = root
        self.validator = validator
        self.budget = MAX_STEPS

    # -- helpers ---------------------------------------------------------------------------------

    def valid(self, value: Any, schema: Mapping[str, Any] | bool) -> bool:
        return bool(self.validator.evolve(schema=schema).is_valid(value))

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise UnsatisfiableSchemaError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            return self._anchor(self.root, pointer)
        for part in pointer.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise UnsatisfiableSchemaError(f"$ref {ref!r} points nowhere")
        return node

    def _anchor(self, node: Any, anchor: str) -> Any:
        if isinstance(node, Mapping):
            if node.get("$anchor") == anchor:
                return node
            children: Iterator[Any] = iter(node.values())
        elif isinstance(node, list):
            children = iter(node)
        else:
            raise UnsatisfiableSchemaError(f"$anchor {anchor!r} not found")
        for child in children:
            try:
                return self._anchor(child, anchor)
            except UnsatisfiableSchemaError:
                continue
        raise UnsatisfiableSchemaError(f"$anchor {anchor!r} not found")

    def flatten(self, schema: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        """``schema`` with its top-level ``$ref`` and ``allOf`` merged in, and the $refs followed."""
        out = dict(schema)
        refs: set[str] = set()
        for _ in range(64):
            if "$ref" in out:
                ref = out.pop("$ref")
                refs.add(ref)
                out = _merge(out, self.resolve(ref))
            elif "allOf" in out:
                parts = out.pop("allOf")
                for part in parts:
                    out = _merge(out, part)
            else:
                return out, frozenset(refs)
        raise UnsatisfiableSchemaError("$ref cycle")

    # -- generation ------------------------------------------------------------------------------

    def make(self, schema: Any, name: str, variant: int, ctx: _Ctx) -> Any:
        if ctx.depth > HARD_DEPTH:
            raise UnsatisfiableSchemaError("schema nests too deep (infinite recursion?)")
        self.budget -= 1
        if self.budget < 0:
            raise UnsatisfiableSchemaError("schema too costly to satisfy")
        if schema is True:
            return self.text(name, variant)
        if schema is False or not isinstance(schema, Mapping):
            raise UnsatisfiableSchemaError("false schema")
        flat, refs = self.flatten(schema)
        ctx = _Ctx(ctx.depth, ctx.stack | refs, ctx.minimal or ctx.depth > SOFT_DEPTH or bool(refs & ctx.stack))
        if "const" in flat:
            return flat["const"]
        if "enum" in flat:
            return self.from_enum(flat, variant)
        for key in ("anyOf", "oneOf"):
            if key in flat:
                return self.from_branches(flat, key, name, variant, ctx)
        types = _types(flat)
        if types is None:
            types = [t for t, hints in _TYPE_HINTS if any(h in flat for h in hints)][:1] or ["string"]
        ordered = [t for t in types if t != "null"] + [t for t in types if t == "null"]
        if ctx.minimal:
            ordered = [t for t in ordered if t == "null"] + [t for t in ordered if t != "null"]
        checked = len(ordered) > 1 or "not" in flat or "if" in flat
        last_error: UnsatisfiableSchemaError | None = None
        for kind in ordered:
            for attempt in range(4 if checked else 1):
                try:
                    value = self.of_type(kind, flat, name, variant + attempt, ctx)
                except UnsatisfiableSchemaError as exc:
                    last_error = exc
                    break
                if not checked or self.valid(value, flat):
                    return value
        raise last_error or UnsatisfiableSchemaError(f"no value of type {types} satisfies the schema")

    def from_enum(self, schema: Mapping[str, Any], variant: int) -> Any:
        options = list(schema["enum"])
        if not options:
            raise UnsatisfiableSchemaError("empty enum")
        rest = {k: v for k, v in schema.items() if k != "enum"}
        for i in range(len(options)):
            option = options[(variant + i) % len(options)]
            if self.valid(option, rest):
                return option
        raise UnsatisfiableSchemaError("no enum value satisfies the schema")

    def from_branches(self, schema: Mapping[str, Any], key: str, name: str, variant: int, ctx: _Ctx) -> Any:
        branches = list(schema[key])
        rest = {k: v for k, v in schema.items() if k != key}
        nulls = [b for b in branches if _is_null_branch(b)]
        others = [b for b in branches if not _is_null_branch(b)]
        ordered = nulls + others if ctx.minimal else others + nulls
        for branch in ordered:
            try:
                value = self.make(_merge(rest, branch), name, variant, ctx.child())
            except UnsatisfiableSchemaError:
                continue
            if self.valid(value, schema):
                return value
        raise UnsatisfiableSchemaError(f"no {key} branch could be satisfied")

    def of_type(self, kind: str, schema: Mapping[str, Any], name: str, variant: int, ctx: _Ctx) -> Any:
        if kind == "object":
            return self.obj(schema, name, variant, ctx)
        if kind == "array":
            return self.array(schema, name, variant, ctx)
        if kind == "string":
            return self.string(schema, name, variant)
        if kind == "integer":
            return self.number(schema, variant, integral=True)
        if kind == "number":
            return self.number(schema, variant, integral=False)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        raise UnsatisfiableSchemaError(f"unknown type {kind!r}")

    def text(self, name: str, variant: int) -> str:
        return f"example {name}" + (f" {variant + 1}" if variant else "")

    # -- objects ---------------------------------------------------------------------------------

    def property_schema(self, schema: Mapping[str, Any], key: str) -> Any:
        parts: list[Any] = []
        properties = schema.get("properties") or {}
        if key in properties:
            parts.append(properties[key])
        for pattern, sub in (schema.get("patternProperties") or {}).items():
            if re.search(pattern, key):
                parts.append(sub)
        if not parts:
            return schema.get("additionalProperties", True)
        return parts[0] if len(parts) == 1 else {"allOf": parts}

    def obj(self, schema: Mapping[str, Any], name: str, variant: int, ctx: _Ctx) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required: list[str] = list(schema.get("required") or [])
        dependent: Mapping[str, Sequence[str]] = schema.get("dependentRequired") or {}
        optional = [] if ctx.minimal else [k for k in properties if k not in required]
        limit = schema.get("maxProperties")
        if limit is not None:
            optional = optional[: max(0, limit - len(required))]
        out: dict[str, Any] = {}
        order = [k for k in properties if k in required or k in optional]
        order += [k for k in required if k not in properties]
        for key in order:
            try:
                out[key] = self.make(self.property_schema(schema, key), key, variant, ctx.child())
            except UnsatisfiableSchemaError:
                if key in required:
                    raise
        extra_schema = schema.get("additionalProperties")
        if (not properties and isinstance(extra_schema, Mapping) and extra_schema and not ctx.minimal
                and "propertyNames" not in schema and not schema.get("patternProperties")
                and (limit is None or limit > len(out))):
            # a map type (dict[str, X]): one entry looks more like an answer than {}
            try:
                out["example_key"] = self.make(extra_schema, "value", variant, ctx.child())
            except UnsatisfiableSchemaError:
                pass
        for trigger, needed in dependent.items():
            if trigger in out:
                for key in needed:
                    if key not in out:
                        out[key] = self.make(self.property_schema(schema, key), key, variant, ctx.child())
        extra = 0
        while len(out) < schema.get("minProperties", 0):
            extra += 1
            key = self.extra_key(schema, extra)
            if key not in out:
                out[key] = self.make(self.property_schema(schema, key), key, variant, ctx.child())
        return out

    def extra_key(self, schema: Mapping[str, Any], index: int) -> str:
        if schema.get("additionalProperties", True) is False:
            for pattern in schema.get("patternProperties") or {}:
                key = _regex_example(pattern, index)
                if key is not None:
                    return key
            raise UnsatisfiableSchemaError("minProperties needs more properties than the schema allows")
        return f"extra_{index}"

    # -- arrays ----------------------------------------------------------------------------------

    def array(self, schema: Mapping[str, Any], name: str, variant: int, ctx: _Ctx) -> list[Any]:
        prefix: list[Any] = list(schema.get("prefixItems") or [])
        items = schema.get("items", True)
        low: int = schema.get("minItems", 0)
        high: int | None = schema.get("maxItems")
        count = low if ctx.minimal else max(low, len(prefix) or 1)
        if items is False:
            count = min(count, len(prefix))
        if high is not None:
            count = min(count, high)
        if count < low:
            raise UnsatisfiableSchemaError("minItems is larger than the items allowed")
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: set[str] = set()
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else items
            try:
                for attempt in range(8 if unique else 1):
                    value = self.make(sub, name, variant + index + attempt * count, ctx.child())
                    key = json.dumps(value, sort_keys=True)
                    if not unique or key not in seen:
                        break
                else:
                    raise UnsatisfiableSchemaError("could not produce enough unique items")
            except UnsatisfiableSchemaError:
                if index < low:
                    raise
                break  # optional items: a shorter array is still valid
            seen.add(key)
            out.append(value)
        contains = schema.get("contains")
        if contains is not None and not any(self.valid(v, contains) for v in out):
            room = high is None or len(out) < high
            for index in ([len(out)] if room else []) + list(reversed(range(len(out)))):
                sub = prefix[index] if index < len(prefix) else items
                try:
                    value = self.make(_merge(sub, contains), name, variant, ctx.child())
                except UnsatisfiableSchemaError:
                    continue
                if index == len(out):
                    out.append(value)
                else:
                    out[index] = value
                break
            else:
                raise UnsatisfiableSchemaError("no item can satisfy 'contains'")
        return out

    # -- strings ---------------------------------------------------------------------------------

    def string(self, schema: Mapping[str, Any], name: str, variant: int) -> str:
        fmt = schema.get("format")
        example = _FORMAT_EXAMPLES.get(fmt) if isinstance(fmt, str) else None
        base = example(name, variant) if example else self.text(name, variant)
        low: int = schema.get("minLength", 0)
        high: int | None = schema.get("maxLength")
        pattern: str | None = schema.get("pattern")
        candidates = [_fit_length(base, low, high, name)]
        if pattern is not None:
            candidates += [
                c for stretch in (0, 1, 2, 4, 8, max(low, 1), max(low, 1) * 2)
                for c in [_regex_example(pattern, variant, stretch)] if c is not None
            ]
        for candidate in candidates:
            if len(candidate) < low or (high is not None and len(candidate) > high):
                continue
            if pattern is None or re.search(pattern, candidate):
                return candidate
        raise UnsatisfiableSchemaError("no string satisfies the length and pattern constraints")

    # -- numbers ---------------------------------------------------------------------------------

    def number(self, schema: Mapping[str, Any], variant: int, *, integral: bool) -> int | float:
        low, low_open = _bound(schema, "minimum", "exclusiveMinimum", max)
        high, high_open = _bound(schema, "maximum", "exclusiveMaximum", min)

        def in_range(x: float) -> bool:
            if low is not None and (x < low or (low_open and x == low)):
                return False
            if high is not None and (x > high or (high_open and x == high)):
                return False
            return True

        step = schema.get("multipleOf")
        preferred: float = (1 + variant) if integral else 1.5 + variant
        if low is not None and high is not None:
            target = preferred if in_range(preferred) else (low + high) / 2
        elif low is not None:
            target = preferred if in_range(preferred) else low + (1 if integral else 0.5)
        elif high is not None:
            target = preferred if in_range(preferred) else high - (1 if integral else 0.5)
        else:
            target = preferred
        if step is None:
            if integral:
                for value in _around(round(target)):
                    if in_range(value):
                        return value
                raise UnsatisfiableSchemaError("no integer in range")
            if in_range(target):
                return target
            raise UnsatisfiableSchemaError("no number in range")
        if step <= 0:
            raise UnsatisfiableSchemaError("multipleOf must be positive")
        for k in _around(round(target / step)):
            for value in (k * step, round(k * step, 10)):
                if integral:
                    if not float(value).is_integer():
                        continue
                    value = int(value)
                if in_range(value) and _is_multiple(value, step):
                    return value
        raise UnsatisfiableSchemaError("no multiple of multipleOf in range")


def _around(center: int, reach: int = 2000) -> Iterator[int]:
    yield center
    for d in range(1, reach):
        yield center + d
        yield center - d


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str,
           tighter: Callable[[float, float], float]) -> tuple[float | None, bool]:
    value: float | None = schema.get(inclusive)
    open_ = False
    other = schema.get(exclusive)
    if other is not None and (value is None or tighter(other, value) == other):
        value, open_ = other, True
    return value, open_


def _is_multiple(value: int | float, step: int | float) -> bool:
    """jsonschema's own multipleOf test (float division for float steps, modulo otherwise)."""
    if isinstance(step, float):
        try:
            quotient = value / step
            return int(quotient) == quotient
        except OverflowError:
            return False
    return not value % step


def _fit_length(text: str, low: int, high: int | None, name: str) -> str:
    filler = f" {name}" if name else " x"
    while len(text) < low:
        text += filler
    if high is not None and len(text) > high:
        text = text[:high]
    if len(text) > low and text.endswith(" "):
        text = text.rstrip() or text
    while len(text) < low:
        text += "x"
    return text


# -- regular expressions ---------------------------------------------------------------------------

try:  # Python 3.11+: the regex parser lives in re._parser
    from re import _parser as _sre_parse  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef,unused-ignore]

_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
}


def _regex_example(pattern: str, variant: int = 0, stretch: int = 0) -> str | None:
    """A string matched by ``pattern`` (searched, as JSON Schema does), or None when it cannot tell."""
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:
        return None
    groups: dict[int, str] = {}
    try:
        text = _emit(list(parsed), variant, stretch, groups)
    except (_Unsupported, RecursionError):
        return None
    try:
        return text if re.search(pattern, text) else None
    except re.error:
        return None


class _Unsupported(Exception):
    pass


def _char_in(items: list[tuple[Any, Any]], variant: int) -> str:
    negate = bool(items) and items[0][0].name == "NEGATE"
    if negate:
        body = items[1:]
        for candidate in "ax0_- Z":
            if not _set_matches(body, candidate):
                return candidate
        raise _Unsupported()
    choices: list[str] = []
    for op, arg in items:
        kind = op.name
        if kind == "LITERAL":
            choices.append(chr(arg))
        elif kind == "RANGE":
            lo, hi = arg
            choices.append(chr(lo + variant % (hi - lo + 1)))
        elif kind == "CATEGORY":
            choices.append(_CATEGORY_CHARS.get(arg.name, "a"))
        else:
            raise _Unsupported()
    if not choices:
        raise _Unsupported()
    return choices[0]


def _set_matches(items: list[tuple[Any, Any]], char: str) -> bool:
    code = ord(char)
    for op, arg in items:
        kind = op.name
        if kind == "LITERAL" and arg == code:
            return True
        if kind == "RANGE" and arg[0] <= code <= arg[1]:
            return True
        if kind == "CATEGORY":
            cat = arg.name
            if cat == "CATEGORY_DIGIT" and char.isdigit() or cat == "CATEGORY_WORD" and (char.isalnum() or char == "_"):
                return True
            if cat == "CATEGORY_SPACE" and char.isspace():
                return True
            if cat.startswith("CATEGORY_NOT_"):
                return True  # conservative: treat as matching, so the candidate is skipped
    return False


def _emit(tokens: list[tuple[Any, Any]], variant: int, stretch: int, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, arg in tokens:
        kind = op.name
        if kind == "LITERAL":
            out.append(chr(arg))
        elif kind == "NOT_LITERAL":
            out.append("a" if arg != ord("a") else "b")
        elif kind == "ANY":
            out.append("a")
        elif kind == "IN":
            out.append(_char_in(list(arg), variant))
        elif kind == "CATEGORY":
            out.append(_CATEGORY_CHARS.get(arg.name, "a"))
        elif kind == "BRANCH":
            alternatives = arg[1]
            out.append(_emit(list(alternatives[variant % len(alternatives)]), variant, stretch, groups))
        elif kind == "SUBPATTERN":
            group, _add, _del, body = arg
            text = _emit(list(body), variant, stretch, groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif kind == "ATOMIC_GROUP":
            out.append(_emit(list(arg), variant, stretch, groups))
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            count = max(low, 1) + stretch
            count = min(count, high) if high != _sre_parse.MAXREPEAT else count
            out.append("".join(_emit(list(body), variant + i, stretch, groups) for i in range(count)))
        elif kind == "GROUPREF":
            out.append(groups.get(arg, ""))
        elif kind in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # anchors emit nothing; look-arounds are left to the final check
        else:
            raise _Unsupported()
    return "".join(out)
