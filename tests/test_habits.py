"""Real models' JSON habits, recovered locally: one table row per habit (reply text, schema, expected
data), read through the hook chain of every family (the family parsers pass, the core's generic
parser recovers), plus the closing repair that only a finished (``finish_reason: "stop"``) reply gets.

Where each habit was seen: README "Reply parsing" and the docstring of openrouter_registry.replies.habits.
"""

from __future__ import annotations

from typing import Any

import pytest

from openrouter_registry import Registry
from openrouter_registry.replies.habits import after_unopened_reasoning, invalid_escapes, typographic_quotes
from openrouter_registry.replies.structured import parse_json_reply, parse_unclosed

CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}
ANY: dict[str, Any] = {"type": "object"}
PARIS = {"city": "Paris", "country": "France"}
MODELS = ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.3-70b-instruct", "qwen/qwen-2.5-72b-instruct"]

# (habit, reply text, schema, expected data)
HABITS: list[tuple[str, str, dict[str, Any], Any]] = [
    ("typographic-double-quotes", "{“city”: “Paris”, “country”: “France”}", CITY, PARIS),
    ("typographic-mixed-with-straight", '{"city": “Paris”, “country”: "France"}', CITY, PARIS),
    ("typographic-in-fence", "Here you go:\n```json\n{\n  “city”: “Paris”,\n  “country”: “France”\n}\n```", CITY, PARIS),
    ("typographic-kept-inside-words", '{“city”: “Paris”, “country”: “France”, “note”: “the “City of Light””}', ANY,
     {"city": "Paris", "country": "France", "note": "the “City of Light”"}),
    ("typographic-single-quotes", "{‘city’: ‘Paris’, ‘country’: ‘France’}", CITY, PARIS),
    ("literal-newline-in-string", '{"city": "Paris", "country": "France", "note": "line one\nline two"}', ANY,
     {**PARIS, "note": "line one\nline two"}),
    ("literal-tab-in-string", '{"city": "Par\tis", "country": "France"}', CITY, {"city": "Par\tis", "country": "France"}),
    ("markdown-escaped-underscore", '{"city": "Paris", "country": "France", "zip\\_code": "75001"}', ANY,
     {**PARIS, "zip_code": "75001"}),
    ("python-escaped-apostrophe", '{"city": "L\\\'Haÿ-les-Roses", "country": "France"}', CITY,
     {"city": "L'Haÿ-les-Roses", "country": "France"}),
    ("regex-escape-kept", '{"city": "Paris", "country": "France", "pattern": "\\d{5}"}', ANY,
     {**PARIS, "pattern": "\\d{5}"}),
    ("valid-escapes-untouched", '{"city": "Pa\\"ris\\"", "country": "Fr\\u00e4nce\\n"} trailing', CITY,
     {"city": 'Pa"ris"', "country": "Fränce\n"}),
    ("think-without-opening-tag", 'The user wants {city, country}. Paris is in France.\n</think>\n\n{"city": "Paris", "country": "France"}',
     CITY, PARIS),
    ("think-block-then-json", '<think>Is it {"city": "Lyon"}? No.</think>{"city": "Paris", "country": "France"}', CITY, PARIS),
    ("python-literals", "{'city': 'Paris', 'country': 'France', 'capital': True}", ANY, {**PARIS, "capital": True}),
    ("trailing-comma", '{"city": "Paris", "country": "France",}', CITY, PARIS),
    ("comments", '{\n  "city": "Paris", // the capital\n  "country": "France"\n}', CITY, PARIS),
    ("fence-closed-object-not", 'Here:\n```json\n{"city": "Paris", "country": "France"\n```', CITY, PARIS),
    ("fence-without-closing-fence", 'Sure:\n```json\n{"city": "Paris", "country": "France"}', CITY, PARIS),
    ("json-as-escaped-string", '"{\\"city\\": \\"Paris\\", \\"country\\": \\"France\\"}"', CITY, PARIS),
]


def _id(case: tuple[Any, ...]) -> str:
    return str(case[0])


@pytest.mark.parametrize("case", HABITS, ids=_id)
def test_generic_parser_recovers_the_habit(case: tuple[str, str, dict[str, Any], Any]) -> None:
    _, text, schema, expected = case
    assert parse_json_reply(text, schema) == expected


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", HABITS, ids=_id)
def test_every_family_chain_recovers_the_habit(model: str, case: tuple[str, str, dict[str, Any], Any]) -> None:
    _, text, schema, expected = case
    assert Registry(environ={}).parse_structured(model, text, schema) == expected


# (habit, reply text, schema, expected data when finish_reason is "stop")
UNCLOSED: list[tuple[str, str, dict[str, Any], Any]] = [
    ("object-missing-brace", '{"city": "Paris", "country": "France"', CITY, PARIS),
    ("nested-missing-braces", '{"place": {"city": "Paris", "country": "France"', {"type": "object", "required": ["place"]},
     {"place": PARIS}),
    ("array-missing-brackets", '[{"city": "Paris", "country": "France"}', {"type": "array"}, [PARIS]),
    ("missing-brace-then-token", '{"city": "Paris", "country": "France"<|eot_id|>', CITY, PARIS),
]
NOT_CLOSED: list[tuple[str, str, dict[str, Any]]] = [
    ("ends-in-a-string", '{"city": "Paris", "country": "Fra', CITY),
    ("ends-after-comma", '{"city": "Paris", "country": "France",', CITY),
    ("ends-after-colon", '{"city": "Paris", "country":', CITY),
    ("closed-value-does-not-validate", '{"city": "Paris"', CITY),
    ("mismatched-closer", '{"city": "Paris", "country": "France"]', CITY),
    ("already-closed", '{"city": "Paris", "country": "France"}', CITY),
    ("prose", "I could not find a city.", CITY),
]


@pytest.mark.parametrize("case", UNCLOSED, ids=_id)
def test_missing_closers_are_added_when_the_result_validates(case: tuple[str, str, dict[str, Any], Any]) -> None:
    _, text, schema, expected = case
    assert parse_unclosed(text, schema) == expected
    assert parse_json_reply(text, schema) != expected  # never by the parser alone: it cannot tell "stop" from "length"


@pytest.mark.parametrize("case", NOT_CLOSED, ids=_id)
def test_missing_closers_are_not_guessed(case: tuple[str, str, dict[str, Any]]) -> None:
    _, text, schema = case
    assert parse_unclosed(text, schema) is None


# --- the text fixes themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("{“a”: “b”}", '{"a": "b"}'),
        ("[“a”, “b”]", '["a", "b"]'),
        ('{"a": "say “hi” now"}', '{"a": "say “hi” now"}'),
        ("{‘a’: ‘b’}", "{'a': 'b'}"),
        ("no quotes", "no quotes"),
    ],
)
def test_typographic_quotes(text: str, fixed: str) -> None:
    assert typographic_quotes(text) == fixed


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ('"a\\_b"', '"a_b"'),
        ('"it\\\'s"', '"it\'s"'),
        ('"\\d\\s"', '"\\\\d\\\\s"'),
        ('"\\\\_"', '"\\\\_"'),  # an escaped backslash, then a plain underscore
        ('"\\n\\t\\"\\/\\u00e9"', '"\\n\\t\\"\\/\\u00e9"'),
        ('"\\u12"', '"\\\\u12"'),
    ],
)
def test_invalid_escapes(text: str, fixed: str) -> None:
    assert invalid_escapes(text) == fixed


def test_after_unopened_reasoning() -> None:
    assert after_unopened_reasoning("draft</think>{}") == "{}"
    assert after_unopened_reasoning("<think>draft</think>{}") is None
    assert after_unopened_reasoning('{"a": 1}') is None
