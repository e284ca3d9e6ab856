"""Reply parsers: real-world malformed replies per model family, refusals, and properties (never
raise; JSON in prose or fences round-trips exactly)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openrouter_registry.replies.structured import (
    json_candidates,
    parse_embedded_json,
    parse_json_reply,
    parse_python_literal,
    strip_control_tokens,
    strip_preamble,
)
from openrouter_registry.testing.styles import style_json

Parser = Callable[[str, Mapping[str, Any] | None], Any]
PARSERS: list[Parser] = [parse_json_reply, parse_embedded_json, parse_python_literal]

CITY: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
LYON = {"city": "Lyon", "country": "France"}
NESTED = {"city": "Lyon", "tags": ["a", "b"], "geo": {"lat": 45.76, "lon": 4.84}, "ok": True, "note": None}
FENCED_TWICE = (
    "My first attempt:\n```json\n{\"town\": \"Lyon\"}\n```\n"
    "Sorry, with the right keys:\n```json\n{\"city\": \"Lyon\", \"country\": \"France\"}\n```\n"
)

# (id, parser, reply text, schema, expected value)
CASES: list[tuple[str, Parser, str, Mapping[str, Any] | None, Any]] = [
    # GPT: clean JSON (the fast path)
    ("gpt-compact", parse_json_reply, json.dumps(LYON, separators=(",", ":")), CITY, LYON),
    ("gpt-nested", parse_json_reply, json.dumps(NESTED), None, NESTED),
    ("gpt-unicode", parse_json_reply, '{"city": "Zürich ✓", "country": "日本"}', CITY, {"city": "Zürich ✓", "country": "日本"}),
    ("gpt-array", parse_json_reply, "[1, 2.5, \"x\", null]", None, [1, 2.5, "x", None]),
    # Claude: prose and fences, prefill continuation
    ("claude-prose-fence", parse_embedded_json,
     style_json(LYON, "anthropic/claude-3.5-sonnet", response_format_sent=False, prefill=False), CITY, LYON),
    ("claude-prose-fence-generic", parse_json_reply,
     style_json(NESTED, "anthropic/claude-3.5-sonnet", response_format_sent=False, prefill=False), None, NESTED),
    ("claude-fence-no-language", parse_embedded_json, "Sure.\n```\n{\"city\": \"Lyon\", \"country\": \"France\"}\n```", CITY, LYON),
    ("claude-prefill-then-prose", parse_embedded_json,
     "{" + style_json(LYON, "anthropic/claude-3.5-sonnet", response_format_sent=False, prefill=True)
     + "\n\nI extracted the city and its country from the sentence.", CITY, LYON),
    ("claude-prefill-doubled", parse_embedded_json, '{{"city": "Lyon", "country": "France"}\n\nDone.', CITY, LYON),
    ("claude-two-fences-second-validates", parse_embedded_json, FENCED_TWICE, CITY, LYON),
    ("claude-two-fences-generic", parse_json_reply, FENCED_TWICE, CITY, LYON),
    ("claude-two-fences-no-schema-first", parse_json_reply, FENCED_TWICE, None, {"town": "Lyon"}),
    ("claude-json-fence-preferred", parse_embedded_json,
     "```text\n[\"not\", \"this\"]\n```\n```json\n{\"city\": \"Lyon\", \"country\": \"France\"}\n```", None, LYON),
    ("claude-inline-prose", parse_embedded_json, 'The answer is {"city": "Lyon", "country": "France"}, as requested.', CITY, LYON),
    ("claude-fence-inline-opener", parse_embedded_json, 'Here: ```json\n{"city": "Lyon", "country": "France"}\n```', CITY, LYON),
    # Llama: preamble, trailing commas, Python literals
    ("llama-preamble-trailing-comma", parse_python_literal,
     style_json(LYON, "meta-llama/llama-3.3-70b-instruct", response_format_sent=False, prefill=False), CITY, LYON),
    ("llama-preamble-trailing-comma-generic", parse_json_reply,
     style_json(NESTED, "meta-llama/llama-3.3-70b-instruct", response_format_sent=False, prefill=False), None, NESTED),
    ("llama-python-literals", parse_python_literal,
     "Sure! Here's the output:\n{'city': 'Lyon', 'ok': True, 'note': None, 'n': -3, 'pair': (1, 2.5),}", None,
     {"city": "Lyon", "ok": True, "note": None, "n": -3, "pair": [1, 2.5]}),
    ("llama-python-literals-generic", parse_json_reply, "{'city': 'Lyon', 'country': 'France', 'ok': False}", None,
     {"city": "Lyon", "country": "France", "ok": False}),
    ("llama-json-keywords-trailing-comma", parse_python_literal, 'Here is the JSON:\n[{"a": true, "b": null,},]', None,
     [{"a": True, "b": None}]),
    ("llama-scalar-after-preamble", parse_python_literal, "Here is the JSON: 42", {"type": "integer"}, 42),
    # repairs through json_repair
    ("comments", parse_json_reply, '{\n  // the city\n  "city": "Lyon", /* and */\n  "country": "France"\n}', CITY, LYON),
    ("comments-first", parse_json_reply, '{ // cities\n  "city": "Lyon", "country": "France",\n}', CITY, LYON),
    ("single-quotes-and-json-keywords", parse_json_reply, "{'city': 'Lyon', 'country': 'France', 'ok': true,}", None,
     {"city": "Lyon", "country": "France", "ok": True}),
    ("trailing-comma-in-prose", parse_json_reply, 'Result:\n{"city": "Lyon", "country": "France",}\nThanks!', CITY, LYON),
    # control tokens, invisible characters, reasoning
    ("eot-id", parse_json_reply, '{"city": "Lyon", "country": "France"}<|eot_id|>', CITY, LYON),
    ("im-end", parse_json_reply, '{"city": "Lyon", "country": "France"}<|im_end|>\n', CITY, LYON),
    ("end-token", parse_json_reply, '{"city": "Lyon", "country": "France"}<|end|>', CITY, LYON),
    ("eos", parse_json_reply, '[/INST] {"city": "Lyon", "country": "France"} </s>', CITY, LYON),
    ("python-tag", parse_json_reply, '<|python_tag|>{"city": "Lyon", "country": "France"}<|eom_id|>', CITY, LYON),
    ("header-ids", parse_json_reply, '<|start_header_id|>assistant<|end_header_id|>\n\n[1, 2]<|eot_id|>', None, [1, 2]),
    ("token-inside", parse_json_reply, '{"city": "Lyon",<|eot_id|> "country": "France"}', CITY, LYON),
    ("token-in-string-kept", parse_json_reply, 'ok: {"city": "</s>", "country": "<|im_end|>"}', CITY,
     {"city": "</s>", "country": "<|im_end|>"}),
    ("scalar-with-token", parse_json_reply, "42<|eot_id|>", {"type": "integer"}, 42),
    ("bom-zero-width", parse_json_reply, '\ufeff{"city": "Lyon",\u200b "country": "France"}\u200d', CITY, LYON),
    ("think-block", parse_json_reply, '<think>Maybe {"city": "Paris", "country": "France"}?</think>\n{"city": "Lyon", "country": "France"}',
     None, LYON),
    # JSON encoded as a JSON string
    ("json-as-string", parse_json_reply, json.dumps(json.dumps(LYON)), CITY, LYON),
    ("json-as-string-twice", parse_json_reply, json.dumps(json.dumps(json.dumps(LYON))), CITY, LYON),
    ("json-as-string-in-prose", parse_json_reply, 'Result: "{\\"city\\": \\"Lyon\\", \\"country\\": \\"France\\"}"', CITY, LYON),
    ("json-as-string-claude", parse_embedded_json, json.dumps(json.dumps(LYON)), CITY, LYON),
    ("string-schema-keeps-string", parse_json_reply, '"just text"', {"type": "string"}, "just text"),
    # a value followed by chatter; nested braces inside strings
    ("value-then-chatter", parse_json_reply, '{"city": "Lyon", "country": "France"}\n\nNote: {placeholders} stay.', CITY, LYON),
    ("array-then-chatter", parse_json_reply, "[1, 2, 3] are the numbers. [sic]", None, [1, 2, 3]),
    ("braces-in-strings", parse_json_reply, 'Here: {"city": "Ly}on{", "country": "[France]\\"}"} done', CITY,
     {"city": "Ly}on{", "country": '[France]"}'}),
    ("apostrophes-in-prose", parse_json_reply, "I don't know { exactly, but here's {\"city\": \"Lyon\", \"country\": \"France\"}", CITY, LYON),
    ("schema-skips-wrong-type", parse_json_reply, "See [1] and then {\"city\": \"Lyon\", \"country\": \"France\"}", CITY, LYON),
    ("schema-skips-invalid", parse_json_reply, '{"city": "Lyon"} then {"city": "Lyon", "country": "France"}', CITY, LYON),
    ("schema-none-first-container", parse_json_reply, '{"city": "Lyon"} then {"city": "Lyon", "country": "France"}', None, {"city": "Lyon"}),
    ("invalid-falls-back", parse_json_reply, 'Only {"city": "Lyon"} here.', CITY, {"city": "Lyon"}),
    ("empty-object-really-there", parse_json_reply, "Nothing found: {}", None, {}),
]

NEGATIVE: list[tuple[str, str, Mapping[str, Any] | None]] = [
    ("refusal", "I cannot help with that.", None),
    ("refusal-schema", "I'm sorry, but I can't provide that information.", CITY),
    ("empty", "", None),
    ("whitespace", "  \n\t ", CITY),
    ("prose-no-braces", "The city is Lyon and the country is France.", CITY),
    ("lone-open-brace", "{", None),
    ("lone-close-brace", "}", CITY),
    ("lone-braces-in-prose", "Use { and } to group, or [ and ].", None),
    ("template-placeholder", "Hello {name}, your order [pending] ships soon.", None),
    ("citation", "Lyon is in France [citation needed].", None),
    ("only-tokens", "<|eot_id|></s>", None),
    ("scalar-without-schema", "42", None),
    ("string-without-schema", '"hello"', None),
    ("string-for-object-schema", '"Lyon, France"', CITY),
    ("null", "null", None),
    ("truncated-start", '{"city": "Lyon", "coun', None),
]


def _id(case: tuple[Any, ...]) -> str:
    return str(case[0])


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_recovers(case: tuple[str, Parser, str, Mapping[str, Any] | None, Any]) -> None:
    _, parser, text, schema, expected = case
    result = parser(text, schema)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("case", NEGATIVE, ids=_id)
@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_nothing_to_recover(parser: Parser, case: tuple[str, str, Mapping[str, Any] | None]) -> None:
    _, text, schema = case
    assert parser(text, schema) is None


@pytest.mark.parametrize(
    "text",
    [
        "{'a': {1, 2}}",  # a set
        "{'a': b'x'}",  # bytes
        "{'a': 1j}",  # complex
        "{1: 'a'}",  # a non-string key
        "{'a': float('nan')}",  # a call
        "{'a': 1e999}",  # infinity
        "[x for x in range(3)]",
        "{'a': ...}",
        "{**other}",
    ],
)
def test_python_literal_refuses_non_json(text: str) -> None:
    assert parse_python_literal(text, None) is None


def test_family_parsers_pass_when_nothing_validates() -> None:
    text = 'Here: {"city": "Lyon"}'
    assert parse_embedded_json(text, CITY) is None
    assert parse_python_literal(text, CITY) is None
    assert parse_embedded_json(text, None) == {"city": "Lyon"}
    assert parse_json_reply(text, CITY) == {"city": "Lyon"}  # the generic parser's fallback


def test_embedded_json_leaves_repairs_to_the_generic_parser() -> None:
    text = "```json\n{'city': 'Lyon', 'country': 'France',}\n```"
    assert parse_embedded_json(text, CITY) is None
    assert parse_json_reply(text, CITY) == LYON


def test_exact_json_beats_repaired_json() -> None:
    text = "```json\n{\"city\": \"Lyon\" 'x'}\n```\nor {\"city\": \"Nice\", \"country\": \"France\"}"
    assert parse_json_reply(text, None) == {"city": "Nice", "country": "France"}


def test_invalid_schema_never_raises() -> None:
    assert parse_json_reply('{"a": 1}', {"type": "nope"}) == {"a": 1}
    assert parse_embedded_json('{"a": 1}', {"type": "nope"}) is None


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_non_string_input_gives_none(parser: Parser) -> None:
    assert parser(b'{"a": 1}', None) is None  # type: ignore[arg-type]
    assert parser(None, None) is None  # type: ignore[arg-type]


# --- helpers -----------------------------------------------------------------------------------------


def test_json_candidates_order() -> None:
    text = 'see [1]; ```python\nx = {"a": 1}\n```\n```\n{"b": 2}\n```\n```json\n{"c": 3}\n```'
    assert list(json_candidates(text)) == [
        '{"c": 3}', '{"b": 2}', 'x = {"a": 1}', "[1]", '{"a": 1}',
    ]


def test_json_candidates_string_aware_and_unclosed() -> None:
    assert list(json_candidates('{"a": "}{"} {\'b\': \'[\'}')) == ['{"a": "}{"}', "{'b': '['}"]
    assert list(json_candidates('Use { like this: {"a": 1} and [2]')) == ['{"a": 1}', "[2]"]
    assert list(json_candidates('{"a": [1, 2}')) == ['{"a": [1, 2}']


def test_strip_control_tokens() -> None:
    text = "\ufeff<|im_start|>assistant{\"a\": 1}<|im_end|>[/INST]</s><|eot_id|>\u200b"
    assert strip_control_tokens(text) == '{"a": 1}'


@pytest.mark.parametrize(
    "text",
    ["Here is the JSON:\n{}", "Sure! Here's the output:\n{}", "Here's the requested JSON object: {}", "The JSON is: {}"],
)
def test_strip_preamble(text: str) -> None:
    assert strip_preamble(text) == "{}"


def test_strip_preamble_keeps_plain_json() -> None:
    assert strip_preamble('{"here is": 1}') == '{"here is": 1}'


# --- robustness ----------------------------------------------------------------------------------------

HOSTILE = {
    "open-braces": "{" * 300_000,
    "nested": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"a":' * 5_000 + "1" + "}" * 5_000,
    "open-strings": '{"' * 100_000,
    "fences": "a```x\n" * 50_000,
    "spaces": " " * 300_000 + "x",
    "tokens": "<|eot_id|>" * 50_000,
    "objects": "{'a': 1,} " * 20_000,
    "nul": "\x00{\x00}" * 1_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_hostile_input_is_safe(parser: Parser, name: str) -> None:
    result = parser(HOSTILE[name], CITY)  # work bounds: tests/test_parse_bounds.py
    assert result is None or isinstance(result, (dict, list))


def test_huge_clean_json_takes_the_fast_path() -> None:
    value = {"items": list(range(400_000))}
    assert parse_json_reply(json.dumps(value), None) == value


def _json_compatible(value: Any) -> bool:
    return bool(json.loads(json.dumps(value, allow_nan=False)) == value)


FRAGMENTS = [
    "{", "}", "[", "]", '"', "'", ":", ",", "```json\n", "```", "\n", "true", "None", "<|eot_id|>", "</s>",
    "//", "/*", "*/", "#", "\\", "\\\"", "NaN", "1e999", "-", "1", '{"a": 1}', "{'a': (1,)}", "{1, 2}", "b'x'",
    "1j", "...", "Here is the JSON:", "<think>", "</think>", "\ufeff", "\u200b", '"{\\"a\\": [1]}"',
]
SCHEMAS: list[Mapping[str, Any] | None] = [None, CITY, {"type": "integer"}, {"type": ["string", "array"]}, {"anyOf": [{"type": "nope"}]}]
messy_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=30).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text() | messy_text, schema=st.sampled_from(SCHEMAS), parser=st.sampled_from(PARSERS))
def test_never_raises_and_returns_json(text: str, schema: Mapping[str, Any] | None, parser: Parser) -> None:
    result = parser(text, schema)
    assert result is None or _json_compatible(result)
    if schema is None or schema is CITY:
        assert result is None or isinstance(result, (dict, list))


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20
)
json_containers = st.dictionaries(st.text(), json_values, max_size=5) | st.lists(json_values, max_size=5)
prose = st.text(st.characters(exclude_characters="{}[]`\"'\\", exclude_categories=["Cs"]), max_size=40)
WRAPPERS = [
    "{json}",
    "{prose}\n{json}\n{prose}",
    "Here is the JSON:\n\n{json}",
    "{prose}\n```json\n{json}\n```\n{prose}",
    "```\n{json}\n```",
    "{json}\n\n{prose}",
    "<|python_tag|>{json}<|eot_id|>",
]


@settings(max_examples=300, deadline=None)
@given(
    value=json_containers,
    wrapper=st.sampled_from(WRAPPERS),
    before=prose,
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
    parser=st.sampled_from(PARSERS),
)
def test_json_in_prose_round_trips(
    value: Any, wrapper: str, before: str, indent: int | None, ascii_only: bool, parser: Parser
) -> None:
    dumped = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    text = wrapper.replace("{prose}", before).replace("{json}", dumped)
    assert parser(text, None) == value


def test_importing_does_not_load_parsing_libraries() -> None:
    code = (
        "import sys, openrouter_registry.replies.structured, openrouter_registry.schemas.validation, openrouter_registry.schemas.schema;"
        "print(sorted(m for m in ('json_repair', 'jsonschema', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "model",
    ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.3-70b-instruct", "mistralai/mixtral-8x7b-instruct"],
)
@pytest.mark.parametrize("prefill", [False, True])
def test_hook_chain_reads_every_family_style(model: str, prefill: bool) -> None:
    from openrouter_registry import Registry

    text = style_json(LYON, model, response_format_sent=False, prefill=prefill)
    if model.startswith("anthropic/") and prefill:
        text = "{" + text  # what the Claude generator's finish_text puts back
    assert Registry(environ={}).parse_structured(model, text, CITY) == LYON


def test_unterminated_quote_in_prose_does_not_hide_later_json() -> None:
    text = 'Sizes { 5" screens } then [1, 2]'
    assert parse_json_reply(text, None) == [1, 2]
    assert parse_embedded_json(text, None) == [1, 2]


def test_preamble_after_control_tokens() -> None:
    text = "<|start_header_id|>assistant<|end_header_id|>\n\nHere is the JSON: 7<|eot_id|>"
    assert parse_python_literal(text, {"type": "integer"}) == 7


def test_the_candidate_scan_stops_after_max_blocks_repeated_ones_included() -> None:
    from openrouter_registry.replies.candidates import MAX_BLOCKS

    found = '{"city": "Lyon", "country": "France"}'
    assert parse_json_reply("[1] " * (MAX_BLOCKS - 1) + found, CITY) == LYON
    assert parse_json_reply("{}" * MAX_BLOCKS + " " + found, CITY) == {}  # {}{}{}...: bounded work; invalid, so re-asked
