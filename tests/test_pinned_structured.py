"""Behaviour of replies/structured.py and schemas/validation.py that a constant-mutant pre-screen found unpinned."""

from __future__ import annotations

from typing import Any

import pytest

from openrouter_registry.schemas.validation import MAX_DEPTH, is_valid, validate

# Judged equivalent, so left without a test:
# - schemas/validation.py CACHE_SIZE 256 -> 257: the LRU size of compiled validators only changes how often a
#   schema is compiled again (speed); every validation answers the same.
# - schemas/validation.py _schema_key's ensure_ascii=False -> True: the key is only a cache key, read back by
#   json.loads (the same schema either way) and by jsonschema-rs, whose "no" or failure falls back to jsonschema.

_INT_FIELDS = {"type": "object", "properties": {f"k{i:03}": {"type": "integer"} for i in range(210)}}


@pytest.mark.parametrize(("wrong", "tail"), [(199, "... and 179 more errors"), (200, "... and more errors"), (201, "... and more errors")])
def test_validation_counts_the_left_out_errors_only_below_200_collected(wrong: int, tail: str) -> None:
    """At most 200 errors are collected: with fewer the tail line counts the rest, with 200 it says only "more"."""
    messages = validate({f"k{i:03}": "x" for i in range(wrong)}, _INT_FIELDS)
    assert len(messages) == 21
    assert messages[-1] == tail


def test_validation_messages_are_cut_past_240_characters() -> None:
    """A message of 240 characters is kept whole; one of 241 is cut to 239 and an ellipsis."""
    whole = validate("x" * 213, {"type": "integer"})
    assert whole == ["$: " + "'" + "x" * 213 + "' is not of type 'integer'"]
    assert len(whole[0]) == 3 + 240
    message = "'" + "x" * 214 + "' is not of type 'integer'"
    assert len(message) == 241
    assert validate("x" * 214, {"type": "integer"}) == ["$: " + message[:239] + "\u2026"]


def _nested(depth: int) -> Any:
    data: Any = 1
    for _ in range(depth):
        data = [data]
    return data


def test_is_valid_refuses_data_nested_past_100_levels_even_for_an_empty_schema() -> None:
    """is_valid() says False for data 101 levels deep (the bound), True at 100, whatever the schema."""
    assert MAX_DEPTH == 100
    assert is_valid(_nested(100), {}) is True
    assert is_valid(_nested(101), {}) is False


def test_is_valid_says_false_when_the_schema_s_recursion_runs_out_of_stack() -> None:
    """Ten ``allOf`` around a ``$ref`` per level: jsonschema overflows the stack on 99 levels; is_valid is False."""
    inner: dict[str, Any] = {"$ref": "#"}
    for _ in range(10):
        inner = {"allOf": [inner]}
    schema = {"type": "array", "items": inner}
    assert validate(_nested_x(99), schema) == ["$: the reply nests too deeply to validate"]
    assert is_valid(_nested_x(99), schema) is False


def _nested_x(depth: int) -> Any:
    data: Any = "x"
    for _ in range(depth):
        data = [data]
    return data
