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
# - schemas/validation.py is_valid's surely_valid(..., plain=True) -> False: fastvalid checks the shape again
#   (as judged for validate() in tests/test_edges.py); only the time changes.
# - replies/structured.py _DEPTH_CHUNK 16_384 -> 16385: the chunks carry the running level across (initial=level),
#   so any chunk size gives the same depth; only how long one C call holds the GIL changes.
# - replies/structured.py nesting_depth's `level = highest = lowest = 0` -> 1: all three start one higher, so
#   highest - lowest (the answer) is unchanged.
# - replies/structured.py _json_compatible's `depth: int = 0` -> 1 and its `depth + 1` -> 2 (lines 259, 272):
#   its one caller gives it json_repair's value of a text _shallow(text, MAX_REPAIR_DEPTH) let through (at most
#   64 levels: json_repair adds closers, never openers), far below the MAX_DEPTH (500) it checks, even counted
#   twice per level.

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


def _missing_comma(total: int) -> str:
    """A ``{...}`` of ``total`` characters only json_repair reads (a comma missing between two members)."""
    text = '{"a": "' + "x" * (total - len('{"a": "" "b": 1}')) + '" "b": 1}'
    assert len(text) == total
    return text


def test_a_candidate_longer_than_max_repair_chars_is_never_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_REPAIR_CHARS is 50,000: a candidate of that length is repaired, one character more is not
    (the bound lowered to 200 here, for speed; the comparison is the same)."""
    from openrouter_registry.replies import structured

    assert structured.MAX_REPAIR_CHARS == 50_000
    monkeypatch.setattr(structured, "MAX_REPAIR_CHARS", 200)
    assert structured.parse_json_reply(_missing_comma(200), None) == {"a": "x" * 184, "b": 1}
    assert structured.parse_json_reply(_missing_comma(201), None) is None


@pytest.mark.parametrize(("depth", "found"), [(500, True), (501, False)])
def test_a_reply_nested_500_deep_is_read_and_501_is_refused(depth: int, found: bool) -> None:
    """MAX_DEPTH is 500: a reply nesting 500 levels deep is decoded, one nesting 501 gives None."""
    from openrouter_registry.replies.structured import MAX_DEPTH as REPLY_DEPTH
    from openrouter_registry.replies.structured import parse_clean_json, parse_json_reply

    assert REPLY_DEPTH == 500
    text = "[" * depth + "1" + "]" * depth
    expected = _nested(depth) if found else None
    assert parse_json_reply(text, None) == expected
    assert parse_clean_json(text) == expected


@pytest.mark.parametrize(("depth", "found"), [(64, True), (65, False)])
def test_python_literals_and_repairs_are_read_64_deep_and_not_65(depth: int, found: bool) -> None:
    """MAX_REPAIR_DEPTH is 64: a Python literal (``True``) or a block json_repair mends (a missing comma)
    nesting 64 levels is read, 65 levels give None."""
    from openrouter_registry.replies.structured import MAX_REPAIR_DEPTH, parse_json_reply, parse_python_literal

    assert MAX_REPAIR_DEPTH == 64
    literal = "[" * depth + "True" + "]" * depth
    expected: Any = True
    for _ in range(depth):
        expected = [expected]
    assert parse_python_literal(literal, None) == (expected if found else None)
    assert parse_json_reply(literal, None) == (expected if found else None)
    mended = '{"a": ' * depth + '1 "b": 2' + "}" * depth
    value = parse_json_reply(mended, None)
    if not found:
        assert value is None
    else:
        for _ in range(depth - 1):
            assert list(value) == ["a"]
            value = value["a"]
        assert value == {"a": 1, "b": 2}


@pytest.mark.parametrize(("encodings", "found"), [(4, True), (5, False)])
def test_json_encoded_as_a_string_is_unwrapped_three_times_and_not_four(encodings: int, found: bool) -> None:
    """MAX_UNWRAP is 3: a reply that is an object JSON-encoded 4 times (3 string layers after the first
    decode) gives the object; encoded 5 times, nothing."""
    import json

    from openrouter_registry.replies.structured import MAX_UNWRAP, parse_json_reply

    assert MAX_UNWRAP == 3
    text: Any = {"a": 1}
    for _ in range(encodings):
        text = json.dumps(text)
    expected = {"a": 1} if found else None
    assert parse_json_reply(text, None) == expected
    assert parse_json_reply(text, {"type": "object"}) == expected


def test_json_s_true_false_and_null_are_read_inside_a_python_literal() -> None:
    """A single-quoted literal using JSON's ``true``/``false``/``null`` reads them as True/False/None."""
    from openrouter_registry.replies.structured import parse_json_reply, parse_python_literal

    text = "{'a': true, 'b': false, 'c': null}"
    assert parse_python_literal(text, None) == {"a": True, "b": False, "c": None}
    assert parse_json_reply(text, None) == {"a": True, "b": False, "c": None}


def test_a_literal_newline_in_a_string_is_kept_while_the_other_habits_are_undone() -> None:
    """Literal control characters inside strings are accepted (a lenient decode) together with the habit
    fixes: ``"\\_"`` becomes ``"_"`` in the same object that holds a raw newline."""
    from openrouter_registry.replies.structured import parse_json_reply

    assert parse_json_reply('{"a": "x\ny", "b": "\\_"}', None) == {"a": "x\ny", "b": "_"}
    assert parse_json_reply('["a\x01b"]', None) == ["a\x01b"]


@pytest.mark.parametrize(("depth", "found"), [(500, True), (501, False)])
def test_an_unclosed_reply_counts_its_first_bracket_towards_the_500_levels(depth: int, found: bool) -> None:
    """A reply opening ``depth`` arrays and closing one fewer: at 500 levels its balanced inner block (499
    deep) is found, at 501 nothing is."""
    from openrouter_registry.replies.structured import parse_json_reply

    value = parse_json_reply("[" * depth + "1" + "]" * (depth - 1), None)
    assert (value == _nested(depth - 1)) if found else value is None


def test_a_reply_past_the_scan_bound_is_still_read_when_it_starts_with_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply longer than MAX_SCAN_CHARS (2,000,000; lowered to 50 here) is read only from its start: an
    object followed by chatter, or an object whose quotes are escaped, is still found."""
    from openrouter_registry.replies import structured

    assert structured.MAX_SCAN_CHARS == 2_000_000
    monkeypatch.setattr(structured, "MAX_SCAN_CHARS", 50)
    chatter = '{"a": 1} and then some chatter that goes on and on for a while'
    assert structured.parse_json_reply(chatter, None) == {"a": 1}
    escaped = '{\\"a\\": 1}' + " " * 60
    assert structured.parse_json_reply(escaped, None) == {"a": 1}


def test_a_python_literal_with_an_escape_python_would_keep_is_not_read_as_a_literal() -> None:
    """``'zip\\_code'``: Python would keep the backslash, so the literal reader refuses it and the habit fixes
    read it as meant (``zip_code``)."""
    from openrouter_registry.replies.structured import parse_json_reply, parse_python_literal

    text = "{'zip\\_code': 1}"
    assert parse_python_literal(text, None) is None
    assert parse_json_reply(text, None) == {"zip_code": 1}
