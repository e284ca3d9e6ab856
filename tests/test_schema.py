"""Schemas given as classes: derivation for attrs classes and dataclasses, structure/unstructure
round trips through generated instances, pydantic passthrough, unsupported types."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Optional

import attrs
import pydantic
import pytest

from openrouter_registry.errors import ConfigurationError, StructuredOutputError
from openrouter_registry.schemas.schema import _class_schema, schema_title, structure, to_json_schema, unstructure
from openrouter_registry.testing.instances import instance_for
from openrouter_registry.schemas.validation import validate


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Address:
    street: str
    zip_code: str | None = None


@attrs.frozen
class Person:
    name: str = attrs.field(metadata={"description": "full name"})
    age: int
    height: float
    active: bool
    nothing: None
    nickname: Optional[str]  # noqa: UP045 - the typing spelling is supported too
    email: str | None
    tags: list[str]
    scores: tuple[int, ...]
    point: tuple[float, str]
    history: Sequence[int]
    labels: dict[str, int]
    settings: Mapping[str, bool]
    unique: frozenset[str]
    kind: Literal["a", "b"]
    color: Color
    level: Level
    home: Address
    others: list[Address]
    friend: Person | None
    number: int | str
    extra: Any
    weight: Annotated[float, "kg"]
    note: str = "n/a"
    favourite: Color = Color.GREEN
    counts: list[int] = attrs.Factory(list)
    computed: int = attrs.field(init=False, default=0)


PERSON_SCHEMA: dict[str, Any] = {
    "title": "Person",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "full name"},
        "age": {"type": "integer"},
        "height": {"type": "number"},
        "active": {"type": "boolean"},
        "nothing": {"type": "null"},
        "nickname": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "array", "items": {"type": "integer"}},
        "point": {
            "type": "array",
            "prefixItems": [{"type": "number"}, {"type": "string"}],
            "items": False,
            "minItems": 2,
            "maxItems": 2,
        },
        "history": {"type": "array", "items": {"type": "integer"}},
        "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
        "settings": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "unique": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "color": {"type": "string", "enum": ["red", "green"]},
        "level": {"type": "integer", "enum": [1, 2]},
        "home": {"$ref": "#/$defs/Address"},
        "others": {"type": "array", "items": {"$ref": "#/$defs/Address"}},
        "friend": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
        "number": {"type": ["integer", "string"]},
        "extra": {},
        "weight": {"type": "number"},
        "note": {"type": "string", "default": "n/a"},
        "favourite": {"type": "string", "enum": ["red", "green"], "default": "green"},
        "counts": {"type": "array", "items": {"type": "integer"}},
    },
    "required": [
        "name", "age", "height", "active", "nothing", "nickname", "email", "tags", "scores", "point", "history",
        "labels", "settings", "unique", "kind", "color", "level", "home", "others", "friend", "number", "extra",
        "weight",
    ],
    "additionalProperties": False,
    "$defs": {
        "Address": {
            "title": "Address",
            "type": "object",
            "properties": {"street": {"type": "string"}, "zip_code": {"type": ["string", "null"], "default": None}},
            "required": ["street"],
            "additionalProperties": False,
        }
    },
}


@dataclasses.dataclass(frozen=True)
class Item:
    sku: str
    price: float
    size: Literal["S", "M", "L"] = "M"


@dataclasses.dataclass
class Order:
    id: int
    items: list[Item]
    status: Color
    gift: Item | None = None
    notes: dict[str, str] = dataclasses.field(default_factory=dict, metadata={"description": "free notes"})
    internal: int = dataclasses.field(init=False, default=0)


ORDER_SCHEMA: dict[str, Any] = {
    "title": "Order",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "status": {"type": "string", "enum": ["red", "green"]},
        "gift": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}], "default": None},
        "notes": {"type": "object", "additionalProperties": {"type": "string"}, "description": "free notes"},
    },
    "required": ["id", "items", "status"],
    "additionalProperties": False,
    "$defs": {
        "Item": {
            "title": "Item",
            "type": "object",
            "properties": {
                "sku": {"type": "string"},
                "price": {"type": "number"},
                "size": {"type": "string", "enum": ["S", "M", "L"], "default": "M"},
            },
            "required": ["sku", "price"],
            "additionalProperties": False,
        }
    },
}


class Invoice(pydantic.BaseModel):
    number: str
    total: float
    paid: bool = False


@attrs.frozen
class Event:
    title: str
    when: datetime.datetime


@attrs.frozen
class IntKeys:
    counts: dict[int, str]


@attrs.frozen
class BadLiteral:
    value: Literal[b"x"]


@attrs.frozen
class Pair:
    left: int
    right: int


# --- derivation --------------------------------------------------------------------------------------


def test_attrs_class_schema() -> None:
    assert to_json_schema(Person) == PERSON_SCHEMA
    assert validate(instance_for(PERSON_SCHEMA), PERSON_SCHEMA) == []


def test_dataclass_schema() -> None:
    assert to_json_schema(Order) == ORDER_SCHEMA


def test_dict_schema_is_returned_as_is() -> None:
    schema = {"type": "object"}
    assert to_json_schema(schema) is schema
    assert to_json_schema(None) is None


def test_invalid_dict_schema_fails_early() -> None:
    with pytest.raises(ConfigurationError, match="invalid JSON Schema"):
        to_json_schema({"type": "object", "properties": 3})


def test_mapping_schema_becomes_a_dict() -> None:
    from types import MappingProxyType

    result = to_json_schema(MappingProxyType({"type": "array"}))
    assert result == {"type": "array"} and type(result) is dict


def test_class_schemas_are_cached_and_copied() -> None:
    _class_schema.cache_clear()
    first = to_json_schema(Order)
    assert first is not None
    first["properties"].clear()  # the caller's copy: the cache is untouched
    second = to_json_schema(Order)
    assert second == ORDER_SCHEMA
    info = _class_schema.cache_info()
    assert (info.misses, info.hits) == (1, 1)


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        (Event, ["Event.when", "datetime"]),
        (IntKeys, ["IntKeys.counts", "keys must be str", "int"]),
        (BadLiteral, ["BadLiteral.value", "Literal"]),
    ],
)
def test_unsupported_types_name_the_field(cls: type, words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        to_json_schema(cls)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("schema", [42, "a string", Pair(1, 2), [{"type": "object"}], int])
def test_unsupported_schemas(schema: Any) -> None:
    with pytest.raises(ConfigurationError, match="schema must be a JSON Schema dict"):
        to_json_schema(schema)


def test_unresolvable_annotation() -> None:
    @attrs.frozen
    class Local:
        inner: Undefined  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ConfigurationError, match="cannot read the field types of Local"):
        to_json_schema(Local)


# --- structure / unstructure ---------------------------------------------------------------------------


def _sorted_sets(value: Any, key: str = "") -> Any:
    """``value`` with the arrays of ``unique`` fields sorted (sets come back sorted)."""
    if isinstance(value, dict):
        return {k: _sorted_sets(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sorted_sets(v) for v in value]
        return sorted(items) if key == "unique" else items
    return value


def test_attrs_round_trip_through_a_generated_instance() -> None:
    data = instance_for(PERSON_SCHEMA)
    assert set(data) == set(PERSON_SCHEMA["properties"])  # every field, optional ones too
    person = structure(data, Person)
    assert isinstance(person, Person)
    assert isinstance(person.home, Address) and isinstance(person.color, Color) and isinstance(person.level, Level)
    assert isinstance(person.scores, tuple) and isinstance(person.unique, frozenset)
    back = unstructure(person)
    # deep down (the recursive `friend`) the generator leaves optional fields out; defaults come back
    assert {k: v for k, v in back.items() if k != "friend"} == {k: v for k, v in _sorted_sets(data).items() if k != "friend"}
    assert "computed" not in back  # init=False fields are not data
    assert json.loads(json.dumps(back)) == back
    assert validate(back, PERSON_SCHEMA) == []
    assert structure(back, Person) == person


def test_attrs_structure_fills_defaults_and_nesting() -> None:
    data = {
        "name": "Ada", "age": 36, "height": 1.65, "active": True, "nothing": None, "nickname": None,
        "email": "ada@example.com", "tags": ["math"], "scores": [1, 2], "point": [1, "x"], "history": [],
        "labels": {"a": 1}, "settings": {"dark": True}, "unique": ["b", "a"], "kind": "b", "color": "red",
        "level": 2, "home": {"street": "Main"}, "others": [{"street": "Side", "zip_code": "123"}],
        "friend": {
            "name": "Bob", "age": 1, "height": 1, "active": False, "nothing": None, "nickname": "b", "email": None,
            "tags": [], "scores": [], "point": [0.5, "y"], "history": [3], "labels": {}, "settings": {},
            "unique": [], "kind": "a", "color": "green", "level": 1, "home": {"street": "S"}, "others": [],
            "friend": None, "number": "x", "extra": [1], "weight": 3,
        },
        "number": 7, "extra": {"any": ["thing"]}, "weight": 60.5,
    }
    assert validate(data, PERSON_SCHEMA) == []
    person = structure(data, Person)
    assert person.home == Address("Main")
    assert person.others == [Address("Side", "123")]
    assert person.friend is not None and person.friend.name == "Bob" and person.friend.friend is None
    assert person.friend.number == "x" and person.number == 7
    assert person.point == (1.0, "x") and person.unique == frozenset({"a", "b"})
    assert person.color is Color.RED and person.level is Level.HIGH and person.favourite is Color.GREEN
    assert person.note == "n/a" and person.counts == []
    assert unstructure(person)["unique"] == ["a", "b"]


def test_dataclass_round_trip() -> None:
    data = instance_for(ORDER_SCHEMA)
    order = structure(data, Order)
    assert isinstance(order, Order) and all(isinstance(item, Item) for item in order.items)
    assert order.status in Color
    back = unstructure(order)
    assert back == data
    assert structure(back, Order) == order


def test_structure_failure_is_a_structured_output_error() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        structure({"zip_code": "1"}, Address)
    assert "Address" in str(caught.value)
    assert any("$.street" in error for error in caught.value.errors)


def test_dict_schema_and_none_structure_as_is() -> None:
    data = {"a": [1]}
    assert structure(data, {"type": "object"}) is data
    assert structure(data, None) is data


def test_unstructure_plain_values() -> None:
    assert unstructure({"c": Color.RED, "t": (1, {2, 1}), "n": None}) == {"c": "red", "t": [1, [1, 2]], "n": None}


# --- pydantic ------------------------------------------------------------------------------------------


def test_pydantic_passthrough() -> None:
    schema = to_json_schema(Invoice)
    assert schema == Invoice.model_json_schema()
    invoice = structure({"number": "A-1", "total": 9.5}, Invoice)
    assert invoice == Invoice(number="A-1", total=9.5, paid=False)
    assert unstructure(invoice) == {"number": "A-1", "total": 9.5, "paid": False}


def test_pydantic_failure_is_a_structured_output_error() -> None:
    with pytest.raises(StructuredOutputError) as caught:
        structure({"number": "A-1"}, Invoice)
    assert caught.value.errors and caught.value.errors[0].startswith("$.total:")


# --- titles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "title"),
    [
        (None, "text"),
        (Person, "Person"),
        (Invoice, "Invoice"),
        ({"title": "city_country", "type": "object"}, "city_country"),
        ({"type": "object"}, "response"),
        ({"title": "  "}, "response"),
    ],
)
def test_schema_title(schema: Any, title: str) -> None:
    assert schema_title(schema) == title
