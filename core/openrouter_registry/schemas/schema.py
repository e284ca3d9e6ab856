"""Schemas given as classes: derive the JSON Schema, build instances from validated data, and back.

``service.generate(schema=...)`` accepts a JSON Schema dict, an attrs class, a dataclass or a pydantic
model class (anything with ``model_json_schema``; pydantic is optional and never imported here).

    @attrs.frozen
    class City:
        name: str
        country: str | None = None

    to_json_schema(City)
    # {"title": "City", "type": "object", "properties": {...}, "required": ["name"],
    #  "additionalProperties": False}
    structure({"name": "Lyon"}, City)   # City(name='Lyon', country=None)

Field types supported for attrs classes and dataclasses: ``str``, ``int``, ``float``, ``bool``,
``None``, ``Any``, ``Optional[X]`` / ``X | None`` and other unions, ``list[X]``, ``Sequence[X]``,
``set[X]`` / ``frozenset[X]`` (unique items), ``tuple[X, ...]`` and ``tuple[X, Y]``,
``dict[str, X]`` / ``Mapping[str, X]``, ``Literal[...]``, ``Enum`` subclasses (their values), nested
attrs classes and dataclasses (as ``$defs`` and ``$ref``, recursion included), ``Annotated[X, ...]``.
A field with a default is optional; ``metadata={"description": ...}`` becomes its description.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, Union

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.strategies import configure_union_passthrough

from ..errors import ConfigurationError, StructuredOutputError
from .fastjson import MAPPING
from .inputs import json_copy
from .memo import SchemaMemo
from .validation import compiled_validator

__all__ = ["to_json_schema", "structure", "unstructure", "schema_title", "converter"]

#: The one converter that builds instances of attrs classes and dataclasses from validated data.
converter = cattrs.Converter()
configure_union_passthrough(Union[str, int, float, bool, None], converter)


def _structure_none(value: Any, _: Any) -> None:
    if value is not None:
        raise ValueError(f"expected null, got {type(value).__name__}")
    return None


converter.register_structure_hook(type(None), _structure_none)


def _attrs_unstructure(cls: type) -> Callable[[Any], dict[str, Any]]:
    """Unstructure attrs instances without their ``init=False`` fields, as dataclasses are: the
    result is what the derived schema describes, and structures back into an equal instance."""
    omitted: dict[str, Any] = {field.name: override(omit=True) for field in attrs.fields(cls) if not field.init}
    return make_dict_unstructure_fn(cls, converter, **omitted)


converter.register_unstructure_hook_factory(attrs.has, _attrs_unstructure)

_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_JSON_SCALARS = (str, int, float, bool, type(None))
_SEQUENCES = {list, collections.abc.Sequence, collections.abc.MutableSequence}
_SETS = {set, frozenset, collections.abc.Set, collections.abc.MutableSet}
_MAPPINGS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}


def _is_pydantic(schema: Any) -> bool:
    return isinstance(schema, type) and callable(getattr(schema, "model_json_schema", None))


def _is_record(schema: Any) -> bool:
    """An attrs class or a dataclass (the class, not an instance)."""
    return isinstance(schema, type) and (attrs.has(schema) or dataclasses.is_dataclass(schema))


def _describe(schema: Any) -> str:
    return schema.__name__ if isinstance(schema, type) else type(schema).__name__


class _Field(NamedTuple):
    name: str
    annotation: Any
    has_default: bool
    default: Any
    description: str | None


def _fields(cls: type) -> list[_Field]:
    """The fields of an attrs class or dataclass that ``__init__`` takes, their types resolved."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot read the field types of {cls.__name__}: {exc} (define the classes it refers to at module level)"
        ) from None
    _resolve_forward_refs(cls, hints)
    found: list[_Field] = []
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if field.init:
                has_default = field.default is not attrs.NOTHING
                found.append(_Field(field.name, hints.get(field.name, field.type), has_default,
                                    field.default, field.metadata.get("description")))
    else:
        for dc_field in dataclasses.fields(cls):
            if dc_field.init:
                missing = dataclasses.MISSING
                has_default = dc_field.default is not missing or dc_field.default_factory is not missing
                found.append(_Field(dc_field.name, hints.get(dc_field.name, dc_field.type), has_default,
                                    dc_field.default, dc_field.metadata.get("description")))
    return found


def _has_forward_ref(annotation: Any) -> bool:
    if isinstance(annotation, (str, typing.ForwardRef)):
        return True
    return any(_has_forward_ref(arg) for arg in typing.get_args(annotation))


def _resolve_forward_refs(cls: type, hints: Mapping[str, Any]) -> None:
    """Replace string and ``ForwardRef`` field types (``Optional["Node"]``) by the resolved ``hints``,
    so that cattrs can build instances of recursive classes: for attrs classes through
    ``attrs.resolve_types``, for dataclasses on their ``Field.type`` (what cattrs reads)."""
    if attrs.has(cls):
        if any(_has_forward_ref(field.type) for field in attrs.fields(cls)):
            attrs.resolve_types(cls, include_extras=True)
        return
    for dc_field in dataclasses.fields(cls):
        if _has_forward_ref(dc_field.type) and dc_field.name in hints:
            dc_field.type = hints[dc_field.name]


def _json_default(value: Any) -> tuple[bool, Any]:
    """Whether a field default can be shown in the schema, and as what."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, _JSON_SCALARS):
        return True, value
    return False, None


def _scalar_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "number" if isinstance(value, float) else "string"


def _enum_schema(values: list[Any], where: str) -> dict[str, Any]:
    """``enum`` of ``values`` (JSON scalars), with their ``type`` when they share one."""
    if not values or not all(isinstance(value, _JSON_SCALARS) for value in values):
        raise ConfigurationError(
            f"cannot derive a JSON Schema for {where}: enum and Literal values must be str, int, float, bool or None"
        )
    kinds = list(dict.fromkeys(_scalar_kind(value) for value in values))
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


class _Deriver:
    """Builds the JSON Schema of one root class; nested classes go to ``$defs``."""

    def __init__(self, root: type) -> None:
        self.root = root
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[type, str] = {}

    def schema(self) -> dict[str, Any]:
        result = {"title": self.root.__name__, **self.of_object(self.root)}
        if self.defs:
            result["$defs"] = self.defs
        return result

    def of_object(self, cls: type) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in _fields(cls):
            prop = self.of_type(field.annotation, f"field {cls.__name__}.{field.name}")
            if field.description:
                prop = {**prop, "description": str(field.description)}
            if field.has_default:
                shown, default = _json_default(field.default)
                if shown:
                    prop = {**prop, "default": default}
            else:
                required.append(field.name)
            properties[field.name] = prop
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}

    def reference(self, cls: type) -> dict[str, Any]:
        if cls is self.root:
            return {"$ref": "#"}
        name = self.names.get(cls)
        if name is None:
            name, n = cls.__name__, 1
            while name in self.defs:
                n += 1
                name = f"{cls.__name__}{n}"
            self.names[cls] = name
            self.defs[name] = {}  # reserved first: a class that refers to itself finds its name
            self.defs[name] = {"title": cls.__name__, **self.of_object(cls)}
        return {"$ref": f"#/$defs/{name}"}

    def of_type(self, annotation: Any, where: str) -> dict[str, Any]:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.of_type(args[0], where)
        if annotation is Any:
            return {}
        if annotation is None or annotation is type(None):
            return {"type": "null"}
        if annotation in _PRIMITIVES:
            return {"type": _PRIMITIVES[annotation]}
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return _enum_schema([member.value for member in annotation], where)
        if origin is Literal:
            return _enum_schema(list(args), where)
        if origin is Union or origin is types.UnionType:
            return self.of_union(args, where)
        if _is_record(annotation):
            return self.reference(annotation)
        if annotation in _SEQUENCES or origin in _SEQUENCES:
            return self.of_array(args, where)
        if annotation in _SETS or origin in _SETS:
            return {**self.of_array(args, where), "uniqueItems": True}
        if annotation is tuple or origin is tuple:
            return self.of_tuple(args, where)
        if annotation in _MAPPINGS or origin in _MAPPINGS:
            return self.of_mapping(args, where)
        raise ConfigurationError(f"cannot derive a JSON Schema for {where}: unsupported type {_type_name(annotation)}")

    def of_union(self, args: tuple[Any, ...], where: str) -> dict[str, Any]:
        branches = [self.of_type(arg, where) for arg in args]
        if all(set(branch) == {"type"} and isinstance(branch["type"], str) for branch in branches):
            return {"type": list(dict.fromkeys(branch["type"] for branch in branches))}
        return {"anyOf": branches}

    def of_array(self, args: tuple[Any, ...], where: str) -> dict[str, Any]:
        return {"type": "array", "items": self.of_type(args[0], where)} if args else {"type": "array"}

    def of_tuple(self, args: tuple[Any, ...], where: str) -> dict[str, Any]:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.of_type(args[0], where)}
        if args == ((),):
            return {"type": "array", "maxItems": 0}
        items = [self.of_type(arg, where) for arg in args]
        return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items), "maxItems": len(items)}

    def of_mapping(self, args: tuple[Any, ...], where: str) -> dict[str, Any]:
        if not args:
            return {"type": "object"}
        if args[0] is not str:
            raise ConfigurationError(f"cannot derive a JSON Schema for {where}: mapping keys must be str, got {_type_name(args[0])}")
        return {"type": "object", "additionalProperties": self.of_type(args[1], where)}


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation)


@functools.lru_cache(maxsize=256)
def _class_schema(cls: type) -> dict[str, Any]:
    if _is_pydantic(cls):
        schema = cls.model_json_schema()  # type: ignore[attr-defined]
        if not isinstance(schema, dict):
            raise ConfigurationError(f"{cls.__name__}.model_json_schema() did not return a JSON Schema object")
        return schema
    return _Deriver(cls).schema()


def _plain_json_check(schema: Any) -> bool:
    return isinstance(schema, dict) and json_copy(schema, "schema") == schema


#: Whether a schema object is plain JSON already (then `to_json_schema` uses it as it is, uncopied).
_is_plain_json: SchemaMemo[bool] = SchemaMemo(_plain_json_check)


def to_json_schema(schema: Any) -> dict[str, Any] | None:
    """The JSON Schema for ``schema``: None for None, a dict as it is (after checking it is plain JSON
    and a valid JSON Schema whose every ``$ref`` resolves, so that a broken one fails before any
    request; other mappings and tuples are copied into dicts and lists), the derived schema of an attrs
    class or dataclass (title = class name, closed objects, defaulted fields optional), a pydantic
    model's ``model_json_schema()``. Class schemas are derived once and cached (a fresh copy is
    returned each time). Raises `ConfigurationError` for an invalid JSON Schema, for anything else,
    or for a field type that has no JSON Schema (naming the field and the type).
    """
    if schema is None:
        return None
    if isinstance(schema, MAPPING):  # a dict answered in C (see fastjson.MAPPING)
        # as it is when plain JSON (checked once per schema object), else a copy; json_copy names a field
        # JSON cannot carry
        if isinstance(schema, dict) and _is_plain_json(schema):
            result: dict[str, Any] = schema
        else:
            result = json_copy(schema, "schema")
        compiled_validator(result)  # checked (and compiled, cached) before any request is spent
        return result
    if _is_pydantic(schema) or _is_record(schema):
        return copy.deepcopy(_class_schema(schema))
    raise ConfigurationError(
        "schema must be a JSON Schema dict, an attrs class, a dataclass or a pydantic model class, "
        f"got {_describe(schema)}"
    )


def _pydantic_errors(exc: Exception) -> list[str]:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [str(exc)]
    try:
        return [f"{_path(item.get('loc', ()))}: {item.get('msg', '')}" for item in errors()]
    except Exception:
        return [str(exc)]


def _path(location: Any) -> str:
    from .validation import format_path

    return format_path(location if isinstance(location, (list, tuple)) else [location])


def structure(data: Any, schema: Any) -> Any:
    """``data`` (already validated against ``to_json_schema(schema)``) as the caller's type: as it is
    for a dict schema or None, an instance for an attrs class or dataclass (through `converter`), the
    pydantic model's ``model_validate(data)``. Raises `StructuredOutputError` when it does not fit."""
    if schema is None or isinstance(schema, MAPPING):
        return data
    if _is_pydantic(schema):
        try:
            return schema.model_validate(data)
        except Exception as exc:
            raise StructuredOutputError(
                f"the reply does not fit {schema.__name__}", errors=_pydantic_errors(exc)
            ) from exc
    if _is_record(schema):
        try:
            return converter.structure(data, schema)
        except Exception as exc:
            raise StructuredOutputError(
                f"the reply could not be turned into {schema.__name__}",
                errors=cattrs.transform_error(exc, path="$", format_exception=_with_message),
            ) from exc
    raise ConfigurationError(f"cannot structure data as {_describe(schema)}: not a schema class")


def _with_message(exc: BaseException, type_: type | None) -> str:
    """cattrs' description of a structuring error, with the message of a validator's own error (the
    re-ask sends it to the model: "invalid value" alone does not say what to fix)."""
    from cattrs.v import format_exception

    described = format_exception(exc, type_)
    message = str(exc)
    return f"{described} ({message})" if isinstance(exc, ValueError) and message and message not in described else described


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, Mapping):
        return {str(_jsonable(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [_jsonable(item) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return value.model_dump(mode="json")
    if _is_record(type(value)):
        return _jsonable(converter.unstructure(value))
    return str(value)


def unstructure(value: Any) -> Any:
    """``value`` as JSON data: attrs instances and dataclasses as objects, enums as their values,
    tuples and sets as arrays (sets sorted), pydantic models through ``model_dump(mode="json")``."""
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return value.model_dump(mode="json")
    return _jsonable(converter.unstructure(value))


def schema_title(schema: Any) -> str:
    """A short name for a schema: the class name, the JSON Schema's ``title``, else ``"response"``
    (``"text"`` when there is no schema)."""
    if schema is None:
        return "text"
    if isinstance(schema, type):
        return schema.__name__
    if isinstance(schema, Mapping) and isinstance(schema.get("title"), str) and schema["title"].strip():
        return str(schema["title"]).strip()
    return "response"
