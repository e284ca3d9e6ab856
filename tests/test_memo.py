"""The hot-path shortcuts: `SchemaMemo` computes once per schema object and never serves a value for a
schema that was edited in place; the validator, strict-mode and plain-JSON checks built on it give
the same answers as before for edited schemas; `Usage` addition sums every field; the faster model-id
check refuses exactly what the old one did."""

from __future__ import annotations

import copy
from typing import Any

import attrs

from openrouter_registry.models.generator import Generator
from openrouter_registry.schemas.memo import SIZE, SchemaMemo
from openrouter_registry.result import Usage
from openrouter_registry.settings import Settings
from openrouter_registry.schemas.validation import compiled_validator, validate

from city import CITY


def counting() -> tuple[SchemaMemo[str], list[Any]]:
    seen: list[Any] = []

    def compute(schema: Any) -> str:
        seen.append(copy.deepcopy(schema))
        return repr(sorted(schema)) if isinstance(schema, dict) else repr(schema)

    return SchemaMemo(compute), seen


def test_computes_once_per_schema_object() -> None:
    memo, seen = counting()
    schema = copy.deepcopy(CITY)
    assert [memo(schema) for _ in range(5)] == [memo(schema)] * 5
    assert len(seen) == 1
    memo(copy.deepcopy(CITY))  # an equal but different object is computed for itself
    assert len(seen) == 2


def test_a_schema_edited_in_place_is_computed_again() -> None:
    memo, seen = counting()
    schema = copy.deepcopy(CITY)
    memo(schema)
    schema["properties"]["zip"] = {"type": "string"}  # nested edit: the snapshot is a deep copy
    memo(schema)
    schema["required"].append("zip")
    memo(schema)
    assert [s["properties"].keys() >= {"zip"} for s in seen] == [False, True, True]
    assert [len(s["required"]) for s in seen] == [2, 2, 3]


def test_errors_are_not_remembered_and_the_memo_stays_bounded() -> None:
    calls = []

    def compute(schema: Any) -> int:
        calls.append(1)
        if schema == {"bad": True}:
            raise ValueError("bad schema")
        return len(calls)

    memo = SchemaMemo(compute)
    bad: dict[str, Any] = {"bad": True}
    for _ in range(2):
        try:
            memo(bad)
        except ValueError:
            pass
    assert len(calls) == 2
    schemas = [{"n": i} for i in range(SIZE * 2 + 3)]
    for schema in schemas:
        memo(schema)
    assert len(memo._entries) <= SIZE


def test_validator_cache_follows_in_place_edits() -> None:
    schema = copy.deepcopy(CITY)
    assert validate({"city": "Paris", "country": "France"}, schema) == []
    first = compiled_validator(schema)
    assert compiled_validator(schema) is first
    schema["properties"]["city"] = {"type": "integer"}
    assert validate({"city": "Paris", "country": "France"}, schema) == ["$.city: 'Paris' is not of type 'integer'"]


def test_name_and_strict_flag_follow_in_place_edits() -> None:
    generator = Generator("openai/gpt-4o", Settings.from_env({}))
    schema = copy.deepcopy(CITY)

    def sent() -> Any:
        response_format = generator.response_format("json_schema", schema)
        assert response_format is not None
        return response_format["json_schema"]

    assert sent() == {"name": "city_country", "strict": True, "schema": CITY}
    schema["additionalProperties"] = True
    schema["title"] = "place"
    assert (sent()["name"], sent()["strict"]) == ("place", False)


def test_usage_addition_sums_every_field() -> None:
    fields = [f.name for f in attrs.fields(Usage) if f.type in (int, "int")]  # the token counts
    assert len(fields) == 6
    a = Usage(**{name: i + 1 for i, name in enumerate(fields)})
    b = Usage(**{name: 10 * (i + 1) for i, name in enumerate(fields)})
    assert attrs.asdict(a + b, filter=lambda f, _: f.name in fields) == {name: 11 * (i + 1) for i, name in enumerate(fields)}
    # OpenRouter's usage details: numbers summed key by key, is_byok true when any attempt was
    c = Usage(cost_details={"upstream_inference_cost": 0.5, "note": "x"}, is_byok=False, server_tool_use={"web_search_requests": 1})
    d = Usage(cost_details={"upstream_inference_cost": 0.25}, is_byok=True, server_tool_use={"web_search_requests": 2})
    total = c + d
    assert total.cost_details == {"upstream_inference_cost": 0.75, "note": "x"}
    assert (total.is_byok, total.server_tool_use) == (True, {"web_search_requests": 3})
    assert (Usage() + Usage()).cost_details is None and (Usage() + Usage()).is_byok is None


def test_model_id_check_still_refuses_every_whitespace_character() -> None:
    import sys

    from openrouter_registry.settings import is_model_id

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        old = char.isprintable() and not char.isspace()  # the definition before the fast form
        assert is_model_id(f"openai/gpt{char}4o") is old, hex(code)


def test_to_json_schema_rechecks_a_schema_edited_in_place() -> None:
    import pytest

    from openrouter_registry.errors import ConfigurationError
    from openrouter_registry.schemas.schema import to_json_schema

    schema = copy.deepcopy(CITY)
    assert to_json_schema(schema) is schema  # plain JSON: used as it is
    schema["properties"]["city"]["maxLength"] = float("nan")
    with pytest.raises(ConfigurationError, match="NaN"):
        to_json_schema(schema)
    schema["properties"]["city"] = {"type": "string", "enum": ("a", "b")}  # a tuple: copied into a list
    copied = to_json_schema(schema)
    assert copied is not schema and copied is not None and copied["properties"]["city"]["enum"] == ["a", "b"]
