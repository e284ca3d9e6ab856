"""JSON Schema validation: messages with paths, ordering and limits, the validator cache, invalid schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from openrouter_registry.errors import ConfigurationError
from openrouter_registry.schemas.validation import (
    CACHE_SIZE,
    MAX_ERRORS,
    _compile,
    compiled_validator,
    format_path,
    is_valid,
    validate,
)

CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string", "minLength": 2}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "price": {"type": "number", "minimum": 0}},
                "required": ["sku", "price"],
            },
        },
        "odd key": {"type": "integer"},
    },
}


def test_valid_data_has_no_errors() -> None:
    assert validate({"city": "Lyon", "country": "France"}, CITY) == []
    assert is_valid({"city": "Lyon", "country": "France"}, CITY)


def test_missing_property_names_its_path() -> None:
    assert validate({"city": "Lyon"}, CITY) == ["$.country: 'country' is a required property"]
    assert not is_valid({"city": "Lyon"}, CITY)


def test_nested_paths_sorted() -> None:
    data = {"items": [{"sku": "a", "price": -1}, {"price": "x"}], "odd key": 1.5}
    assert validate(data, ORDER) == [
        "$.items[0].price: -1 is less than the minimum of 0",
        "$.items[1].price: 'x' is not of type 'number'",
        "$.items[1].sku: 'sku' is a required property",
        '$["odd key"]: 1.5 is not of type \'integer\'',
    ]


def test_root_errors_and_additional_properties() -> None:
    assert validate([], CITY) == ["$: [] is not of type 'object'"]
    assert validate({"city": "Lyon", "country": "F", "x": 1}, CITY) == [
        "$.country: 'F' is too short",
        "$: Additional properties are not allowed ('x' was unexpected)",
    ]


def test_messages_are_deterministic() -> None:
    data = {"items": [{"price": "x"}, {"sku": 1}], "odd key": "no"}
    first = validate(data, ORDER)
    assert validate(copy.deepcopy(data), copy.deepcopy(ORDER)) == first
    assert first == sorted(first)


def test_at_most_max_errors() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    errors = validate(list(range(50)), schema)
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1] == f"... and {50 - MAX_ERRORS} more errors"
    assert all(": " in error for error in errors[:-1])
    many = validate(list(range(1000)), schema)
    assert len(many) == MAX_ERRORS + 1 and many[-1] == "... and more errors"


def test_long_messages_are_shortened() -> None:
    errors = validate({"text": "x" * 5000}, {"type": "object", "properties": {"text": {"maxLength": 3}}})
    assert len(errors) == 1 and len(errors[0]) < 300 and errors[0].startswith("$.text: ")


def test_format_path() -> None:
    assert format_path([]) == "$"
    assert format_path(["a", 0, "b_c", "d-e", 3]) == '$.a[0].b_c["d-e"][3]'


# --- the cache ---------------------------------------------------------------------------------------


def test_validator_is_compiled_once_per_schema() -> None:
    _compile.cache_clear()
    first = compiled_validator(CITY)
    reordered = dict(reversed(list(copy.deepcopy(CITY).items())))  # same schema, other key order
    assert compiled_validator(reordered) is first
    validate({"city": "x"}, CITY)
    is_valid({}, reordered)
    info = _compile.cache_info()
    assert (info.misses, info.hits, info.currsize) == (1, 3, 1)
    assert info.maxsize == CACHE_SIZE
    assert compiled_validator(ORDER) is not first
    assert _compile.cache_info().misses == 2


def test_draft_follows_dollar_schema() -> None:
    from jsonschema import Draft7Validator, Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    assert isinstance(compiled_validator({"type": "object"}), Draft202012Validator)
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}
    assert isinstance(compiled_validator(draft7), Draft7Validator)
    assert validate([1], draft7) == ["$[0]: 1 is not of type 'string'"]


def test_boolean_schemas() -> None:
    assert validate({"any": 1}, True) == []
    assert validate(1, False) == ["$: False schema does not allow 1"]


# --- invalid schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "nope"}, ["invalid JSON Schema", "'nope' is not valid", "$.type"]),
        ({"properties": {"a": {"minLength": -1}}}, ["invalid JSON Schema", "$.properties.a.minLength"]),
        ({"required": "city"}, ["invalid JSON Schema", "'city' is not of type 'array'"]),
        ({"enum": {1, 2}}, ["invalid JSON Schema", "not JSON"]),
        ({"minimum": float("nan")}, ["invalid JSON Schema", "not JSON"]),
        ("object", ["invalid JSON Schema", "expected an object"]),
    ],
)
def test_invalid_schema_is_a_configuration_error(schema: Any, words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        validate({}, schema)
    for word in words:
        assert word in str(caught.value)
    with pytest.raises(ConfigurationError):
        is_valid({}, schema)


def test_unresolvable_ref_is_a_configuration_error() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    with pytest.raises(ConfigurationError, match="cannot be resolved"):
        validate({"a": 1}, schema)
    with pytest.raises(ConfigurationError, match="cannot be resolved"):
        is_valid({"a": 1}, schema)
