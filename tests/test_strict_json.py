"""Structured content is strict JSON everywhere: every parser refuses NaN, Infinity and numbers out
of a float's range; `GenerationResult.to_dict()` and the CLI's ``--json`` only ever emit valid JSON,
and say clearly where a value that JSON cannot hold came from."""

from __future__ import annotations

from decimal import Decimal

import dataclasses
import datetime
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import openrouter_claude
import openrouter_gpt
import openrouter_llama
import pytest

from openrouter_registry import ConfigurationError, GenerationResult, Registry, Usage
from openrouter_registry.cli import main
from openrouter_registry.result import MAX_JSON_DEPTH, cost_from_api
from openrouter_registry.replies.structured import (
    parse_clean_json,
    parse_embedded_json,
    parse_json_reply,
    parse_python_literal,
    parse_unclosed,
)
from openrouter_registry.testing import FakeOpenRouter, Scripted

from test_cli_generate import no_key, one_error_line, server  # noqa: F401  (fixtures)
from test_service import chat_body

Parser = Callable[[str, Mapping[str, Any] | None], Any]
PARSERS: list[Parser] = [parse_json_reply, parse_embedded_json, parse_python_literal, parse_clean_json]
NON_JSON = [
    '{"a": NaN}',
    '{"a": -Infinity}',
    '{"a": Infinity}',
    '{"a": 1e999}',
    '{"a": -1e400}',
    "[NaN]",
    '```json\n{"a": NaN}\n```',
    'Here is the JSON:\n{"a": 1e999}',
    "{'a': float('inf')}",
    "{'a': 1e999}",
    '{"a": [1, 2, NaN,]}',
]
ANY_OBJECT: dict[str, Any] = {"type": "object"}


@pytest.mark.parametrize("text", NON_JSON)
@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_no_parser_accepts_non_finite_numbers(parser: Parser, text: str) -> None:
    assert parser(text, None) is None
    assert parser(text, ANY_OBJECT) is None


@pytest.mark.parametrize("text", NON_JSON)
@pytest.mark.parametrize(
    "model", ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.3-70b-instruct", "mistralai/mixtral-8x7b-instruct"]
)
def test_no_hook_chain_accepts_non_finite_numbers(model: str, text: str) -> None:
    assert Registry(environ={}).parse_structured(model, text, ANY_OBJECT) is None


def test_json_inside_a_json_string_is_strict_too() -> None:
    assert parse_json_reply('"{\\"a\\": NaN}"', ANY_OBJECT) is None


def test_closing_repair_is_strict_too() -> None:
    assert parse_unclosed('{"a": NaN', ANY_OBJECT) is None
    assert parse_unclosed('{"a": 1e999', ANY_OBJECT) is None
    assert parse_unclosed('{"a": 1.5', ANY_OBJECT) == {"a": 1.5}


def test_plugin_modules_use_the_strict_parsers() -> None:
    assert openrouter_gpt.parse_structured("openai/gpt-4o", '{"a": NaN}', None) is None
    assert openrouter_claude.parse_structured("anthropic/claude-3.5-sonnet", '{"a": NaN}', None) is None
    assert openrouter_llama.parse_structured("meta-llama/llama-3.3-70b-instruct", "{'a': float('nan')}", None) is None


def _result(content: Any, cost: Decimal | None = Decimal("0.001")) -> GenerationResult[Any]:
    return GenerationResult(
        content=content, text="", model="m", provider="p", generation_id="g", mode="json_schema",
        attempts=1, usage=Usage(), cost=cost,
    )


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({"a": [1, math.nan]}, r"content\.a\[1\] is nan"),
        ({"a": {"b": math.inf}}, r"content\.a\.b is inf"),
        ({1: "x"}, "content has the key 1"),
        ({"a": {1, 2}}, r"content\.a is a set"),
        (Reading("t1", math.nan), r"content\.value is nan"),  # a class schema, built by the caller's code
        ({"a": datetime.date(2026, 1, 1)}, r"content\.a is a date, which JSON cannot hold"),
    ],
)
def test_to_dict_refuses_what_json_cannot_hold_and_says_where(content: Any, where: str) -> None:
    with pytest.raises(ConfigurationError, match=where):
        _result(content).to_dict()


def test_to_dict_is_always_strict_json() -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        deep = [deep]
    for result in (_result({"a": [1.5, None, True, "x"], "b": deep}), _result("text", cost=Decimal("NaN"))):
        data = result.to_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) is not None
    assert _result("text", cost=Decimal("NaN")).to_dict()["cost"] is None


def test_to_dict_refuses_content_too_deep_to_encode() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]  # checked iteratively: no RecursionError from the check itself
    with pytest.raises(ConfigurationError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        _result(deep).to_dict()


@pytest.mark.parametrize("cost", ["NaN", "Infinity", "-inf", math.nan])
def test_a_non_finite_cost_from_openrouter_is_no_cost(cost: Any) -> None:
    assert cost_from_api({"cost": cost}) is None


def test_cli_json_never_prints_nan(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"n": {}}, "required": ["n"]}))
    nan = chat_body('{"n": NaN}')
    server.enqueue(*[Scripted(json=nan) for _ in range(4)])
    status = main(["generate", "--json", "--schema", str(schema), "Give n"])
    out, err = capsys.readouterr()
    assert (status, out) == (4, "")
    assert "NaN" not in out
    one_error_line(err, "StructuredOutputError: ")


# --- the fast decoder (orjson) reads what the json module reads, value for value -------------------

SAME_AS_JSON_MODULE = [
    '{"id": 123456789012345678901234567890}',  # beyond 64 bits: exact, never a float
    '{"id": -9223372036854775809}',  # one below the 64-bit minimum
    '{"id": 18446744073709551615, "n": -0, "f": 1.0, "e": 1E2}',
    '{"a": 1, "a": 2}',  # the last duplicate wins
    '{"s": "\\ud83d\\ude00 caf\\u00e9"}',  # a surrogate pair
    '  {"s": "\\u2028"}\n',
]


@pytest.mark.parametrize("text", SAME_AS_JSON_MODULE)
def test_clean_json_reads_like_the_json_module(text: str) -> None:
    value = parse_clean_json(text, None)
    assert value == json.loads(text)
    assert [type(v) for v in value.values()] == [type(v) for v in json.loads(text).values()]


def test_a_lone_surrogate_is_read_as_the_json_module_reads_it() -> None:
    assert parse_clean_json('{"s": "a\\ud800b"}', None) == {"s": "a\ud800b"}


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b'{"id": 123456789012345678901234567890}', {"id": 123456789012345678901234567890}),
        (b'{"model": "m", "text": "\\ud800"}', {"model": "m", "text": "\ud800"}),  # cleaned later, by decode
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a BOM: orjson refuses it, the fallback skips it
        (b'\n\n   {"a": [1.5, null, true]}', {"a": [1.5, None, True]}),  # keep-alive whitespace first
    ],
)
def test_reply_bodies_decode_like_the_json_module(raw: bytes, expected: Any) -> None:
    from openrouter_registry.replies.decode import loads_body

    assert loads_body(raw) == expected


@pytest.mark.parametrize("raw", [b'{"usage": {"cost": NaN}}', b'{"a": 1e999}', b"", b"   ", b'{"a": 1} trailing'])
def test_reply_bodies_the_json_module_refuses_stay_refused_or_read_as_before(raw: bytes) -> None:
    from openrouter_registry.replies.decode import InvalidResponseError, loads_body

    try:
        expected: Any = json.loads(raw.decode().lstrip("\ufeff \t\r\n"))
    except ValueError:
        with pytest.raises(InvalidResponseError):
            loads_body(raw)
        return
    assert repr(loads_body(raw)) == repr(expected)  # NaN and inf as the json module reads them (then refused by decode)
