"""The fast validity check (jsonschema-rs) only ever shortcuts "valid": for every schema and value
below, `validate` and `is_valid` answer exactly as jsonschema alone does, with or without
jsonschema-rs installed; values that are not plain JSON and remote $refs go to jsonschema."""

from __future__ import annotations

import sys
from typing import Any

import jsonschema
import pytest

from openrouter_registry.errors import ConfigurationError
from openrouter_registry.schemas.fastvalid import _checker, surely_valid
from openrouter_registry.schemas.validation import _schema_key, is_valid, validate

from city import CITY

NESTED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
        "mode": {"enum": ["a", "b", 1]},
        "flag": {"const": True},
    },
    "required": ["items"],
    "additionalProperties": False,
    "$defs": {"item": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}},
}
CASES: list[tuple[Any, Any]] = [
    (CITY, {"city": "Paris", "country": "France"}),
    (CITY, {"city": "Paris"}),
    (CITY, {"city": 1, "country": "France", "extra": True}),
    (CITY, ["Paris", "France"]),
    (NESTED, {"items": [{"n": 0}, {"n": 3}], "mode": "a", "flag": True}),
    (NESTED, {"items": [{"n": -1}]}),
    (NESTED, {"items": []}),
    (NESTED, {"items": [{"n": 1}], "flag": 1}),  # 1 is not the constant true
    (NESTED, {"items": [{"n": 1.0}], "mode": 1}),
    (NESTED, {"items": [{"n": True}]}),  # a boolean is not an integer
    ({"type": "string", "format": "email"}, "not an email"),  # formats are annotations
    ({"prefixItems": [{"type": "string"}], "items": False}, ["a"]),
    ({"prefixItems": [{"type": "string"}], "items": False}, ["a", "b"]),
    (True, {"anything": [1, 2]}),
    (False, None),
]


def expected(schema: Any, data: Any) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(data))


@pytest.mark.parametrize(("schema", "data"), CASES)
def test_answers_as_jsonschema_alone(schema: Any, data: Any) -> None:
    assert is_valid(data, schema) is expected(schema, data)
    assert (validate(data, schema) == []) is expected(schema, data)


@pytest.mark.parametrize(("schema", "data"), CASES)
def test_answers_the_same_without_jsonschema_rs(monkeypatch: pytest.MonkeyPatch, schema: Any, data: Any) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)  # import fails
    _checker.cache_clear()
    try:
        assert surely_valid(data, _schema_key(schema)) is False
        assert is_valid(data, schema) is expected(schema, data)
        assert (validate(data, schema) == []) is expected(schema, data)
    finally:
        _checker.cache_clear()


def test_the_fast_check_is_used_for_plain_json() -> None:
    assert surely_valid({"city": "Paris", "country": "France"}, _schema_key(CITY)) is True


def test_values_that_are_not_plain_json_go_to_jsonschema() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    # jsonschema-rs would take a tuple for an array; jsonschema does not
    assert surely_valid((1, 2), _schema_key(schema)) is False
    assert is_valid((1, 2), schema) is False
    assert validate((1, 2), schema) == ["$: (1, 2) is not of type 'array'"]
    assert surely_valid({1: "a"}, _schema_key({"type": "object"})) is False


def test_remote_refs_are_never_fetched_and_still_reported() -> None:
    schema = {"$ref": "https://example.com/schema.json"}
    assert surely_valid({}, _schema_key(schema)) is False
    with pytest.raises(ConfigurationError, match="remote schemas are never fetched"):
        validate({}, schema)


class _Str(str):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


def _values() -> Any:
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3),
        st.builds(_Str, st.text(max_size=3)), st.builds(tuple, st.lists(st.integers(), max_size=2)),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.one_of(st.text(max_size=2), st.integers()), inner, max_size=3),
            st.builds(_Dict, st.dictionaries(st.text(max_size=2), inner, max_size=2)),
        ),
        max_leaves=30,
    )


def test_one_walk_answers_what_the_two_walks_answer() -> None:
    from hypothesis import given, settings

    from openrouter_registry.schemas.fastvalid import plain_json
    from openrouter_registry.schemas.validation import _shape, depth_of

    @settings(max_examples=300, deadline=None)
    @given(_values())
    def check(value: Any) -> None:
        assert _shape(value) == (depth_of(value), plain_json(value))
        assert _shape(value, 2)[0] == depth_of(value, 2)

    check()
    deep: list[Any] = []
    node = deep
    for _ in range(150):
        node.append([])
        node = node[0]
    assert _shape(deep)[0] == depth_of(deep) == 101  # stops one past the limit
