"""Every reply parser (the core's three, GPT's clean-JSON fast path and the three family plugins'
``parse_structured`` hooks) never raises on any text, however deeply nested, and does work linear
in the reply's length.

Linearity is asserted without clocks: the tests count the Python lines the parse executes
(``sys.settrace``), which grows with the work done whatever the machine's load. A parser that is
quadratic somewhere (the old stray-closer walk over the open-bracket stack did ~500 steps per
character) fails the per-character bound, and the worst shapes must cost at most about four times
as many lines for four times the text.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import openrouter_claude
import openrouter_gpt
import openrouter_llama
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openrouter_registry.replies.structured import (
    MAX_DEPTH,
    parse_clean_json,
    parse_embedded_json,
    parse_json_reply,
    parse_python_literal,
)
from openrouter_registry.testing.hostile_replies import HOSTILE_REPLIES

Parser = Callable[[str, Mapping[str, Any] | None], Any]


def _hook(module: Any, model: str) -> Parser:
    parser = functools.partial(module.parse_structured, model)
    parser.__name__ = f"{module.__name__}.parse_structured"
    return parser  # type: ignore[return-value]


PARSERS: list[Parser] = [
    parse_json_reply,
    parse_embedded_json,
    parse_python_literal,
    parse_clean_json,
    _hook(openrouter_gpt, "openai/gpt-4o"),
    _hook(openrouter_claude, "anthropic/claude-3.5-sonnet"),
    _hook(openrouter_llama, "meta-llama/llama-3.3-70b-instruct"),
]
CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
SCHEMAS: list[Mapping[str, Any] | None] = [None, CITY, {"type": "array"}, {"type": "integer"}]


def _name(parser: Parser) -> str:
    return str(getattr(parser, "__name__", parser))


def _is_json(value: Any) -> bool:
    return bool(json.loads(json.dumps(value, allow_nan=False)) == value)


def _check(parser: Parser, text: str, schema: Mapping[str, Any] | None) -> None:
    result = parser(text, schema)
    assert result is None or _is_json(result)


# --- never raises ------------------------------------------------------------------------------------

OPENERS = ["[", "{", "(", '{"a":', "{'a':", '["', "[{", '{"a": [', "```json\n[", "<think>[", "“a”: [", "[-", "[not "]


@pytest.mark.parametrize("parser", PARSERS, ids=_name)
@pytest.mark.parametrize("opener", OPENERS)
def test_100k_deep_never_raises(parser: Parser, opener: str) -> None:
    closer = opener.translate(str.maketrans("[{(", "]})"))[::-1]
    for text in (opener * 100_000, opener * 100_000 + "1" + closer * 100_000):
        _check(parser, text, None)
        _check(parser, text, CITY)


@pytest.mark.parametrize("parser", PARSERS, ids=_name)
def test_deep_but_allowed_values_still_parse(parser: Parser) -> None:
    value: Any = {"leaf": True}
    for _ in range(MAX_DEPTH - 1):
        value = [value]
    text = json.dumps(value)  # MAX_DEPTH levels deep
    assert parser(text, None) == value


@pytest.mark.parametrize("parser", PARSERS, ids=_name)
def test_too_deep_values_are_refused_not_raised(parser: Parser) -> None:
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert parser(text, None) is None


nested = st.recursive(
    st.sampled_from(["1", '"s"', "'s'", "True", "null", "NaN", "1e999", "", "“q”"]),
    lambda inner: st.tuples(st.sampled_from(OPENERS), st.lists(inner, max_size=3), st.booleans()).map(
        lambda t: t[0] + ", ".join(t[1]) + (t[0].translate(str.maketrans("[{(", "]})"))[::-1] if t[2] else "")
    ),
    max_leaves=60,
)
deep = st.tuples(st.sampled_from(OPENERS), st.integers(1, 5_000), st.text(max_size=20), st.booleans()).map(
    lambda t: t[0] * t[1] + t[2] + (t[0].translate(str.maketrans("[{(", "]})"))[::-1] * t[1] if t[3] else "")
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text() | nested | deep, schema=st.sampled_from(SCHEMAS), parser=st.sampled_from(PARSERS))
def test_never_raises_on_any_text(text: str, schema: Mapping[str, Any] | None, parser: Parser) -> None:
    _check(parser, text, schema)


# --- linear work -------------------------------------------------------------------------------------


def _lines(parser: Parser, text: str, schema: Mapping[str, Any] | None) -> int:
    """How many Python lines (in any module: ours, json_repair, jsonschema...) the parse runs."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return tracer

    previous = sys.gettrace()  # coverage's, a debugger's: put back after, never dropped
    sys.settrace(tracer)
    try:
        parser(text, schema)
    finally:
        sys.settrace(previous)
    return count


WORST = HOSTILE_REPLIES
PER_CHAR = 150  # Python lines per character of reply, at most (observed: under 10, json_repair up to ~80)
FIXED = 20_000  # lines any parse may spend whatever the size (schema checks, a few candidates)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    for parser in PARSERS:  # imports (json_repair, jsonschema) are not the parse's work
        parser("{'a': 1,}", CITY)
        parser('{"city": "x"}', CITY)


@pytest.mark.parametrize("shape", sorted(WORST))
@pytest.mark.parametrize("parser", PARSERS, ids=_name)
def test_work_is_linear_in_the_reply(parser: Parser, shape: str) -> None:
    small, large = WORST[shape](2_000), WORST[shape](8_000)
    small_lines, large_lines = _lines(parser, small, CITY), _lines(parser, large, CITY)
    assert large_lines <= PER_CHAR * len(large) + FIXED
    assert large_lines <= 4.5 * small_lines + FIXED  # four times the text, at most ~four times the work


UNITS = [
    "{", "}", "[", "]", "(", ")", '"', "'", "\\", "\\\"", ":", ",", " ", "\n", "```", "```json\n", "“", "”",
    "{'a': 1,}", '{"a": [1]}', "True", "NaN", "<|eot_id|>", "<think>", "</think>", "Here is the JSON:\n", "-", "+",
]
worst_text = st.lists(st.tuples(st.sampled_from(UNITS), st.integers(1, 400)), min_size=1, max_size=12).map(
    lambda parts: "".join(unit * count for unit, count in parts)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=worst_text, parser=st.sampled_from(PARSERS), schema=st.sampled_from(SCHEMAS))
def test_work_per_character_is_bounded(text: str, parser: Parser, schema: Mapping[str, Any] | None) -> None:
    assert _lines(parser, text, schema) <= PER_CHAR * len(text) + FIXED
