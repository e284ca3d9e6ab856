"""Documented defaults and the bounds of the mutated core modules, pinned exactly (issue 24): each
setting's documented default as a value and each validator at its edge; the limits of provider error
messages, of catalog entries, of the reply parsers and of validation messages, one past each refused.
`tests/test_edges.py` holds the tests written for the survivors of each sampled mutation check."""

from __future__ import annotations

import json
import logging
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from openrouter_registry import Registry, Settings, SettingsError
from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import load_catalog, parse_models
from openrouter_registry.plugin import hookimpl
from openrouter_registry.replies.decode import APIError, ProviderError, error_for, loads_body
from openrouter_registry.replies.structured import parse_json_reply, parse_python_literal
from openrouter_registry.schemas.validation import validate
from openrouter_registry.testing import FakeOpenRouter

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = (ROOT / "docs" / "guides" / "configuration.md").read_text(encoding="utf-8")
SCHEMA = {"type": "object", "properties": {"pad": {"type": "string"}, "a": {"type": "integer"}}, "required": ["a"]}
ENV = {field.metadata["env"]: field.name for field in attrs.fields(Settings)}


@pytest.fixture
def server() -> Any:
    with FakeOpenRouter() as fake:
        yield fake


# --- settings: the documented defaults, and each validator at its edge (settings.py) ---------------------


def _documented_defaults() -> dict[str, str]:
    """Variable -> the "default" cell of its row in the configuration guide's table."""
    rows: dict[str, str] = {}
    for line in CONFIGURATION.splitlines():
        if line.startswith("| `OPENROUTER_"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            names = re.findall(r"`(OPENROUTER_\w+)`", cells[0])
            values = [v.strip() for v in cells[-1].split(",")] if len(names) > 1 else [cells[-1]]
            rows.update(zip(names, values))
    return rows


@pytest.mark.parametrize(("variable", "documented", "default"), [
    ("OPENROUTER_MODEL", "`openai/gpt-4o`", "openai/gpt-4o"),
    ("OPENROUTER_BASE_URL", "`https://openrouter.ai/api/v1`", "https://openrouter.ai/api/v1"),
    ("OPENROUTER_TIMEOUT", "120", 120.0),
    ("OPENROUTER_CONNECT_TIMEOUT", "10", 10.0),
    ("OPENROUTER_MAX_ATTEMPTS", "3", 3),
    ("OPENROUTER_RETRY_AFTER_MAX", "60", 60.0),
    ("OPENROUTER_MAX_REASKS", "1", 1),
    ("OPENROUTER_EMBEDDER_MODEL", "`openai/text-embedding-3-large`", "openai/text-embedding-3-large"),
    ("OPENROUTER_EMBEDDER_DIMENSIONS", "3072", None),  # None: the model's own size, 3072 for the default model
    ("OPENROUTER_TRANSPORT", "`aiohttp`", "aiohttp"),
    ("OPENROUTER_MAX_CONNECTIONS", "512", 512),
    ("OPENROUTER_STREAM_IDLE_TIMEOUT", "120", 120.0),
    ("OPENROUTER_STREAM_TIMEOUT", "900", 900.0),
    ("OPENROUTER_MAX_RESPONSE_BYTES", "268435456", 256 * 1024 * 1024),
    ("OPENROUTER_CATALOG_TTL", "86400 (a day", 86400.0),
    ("OPENROUTER_CATALOG", "`on`", True),
    ("OPENROUTER_PROMPT_CACHE", "`auto`", "auto"),
    ("OPENROUTER_MAX_TOKENS", "model default", None),
    ("OPENROUTER_HTTP_REFERER", "none", None),
    ("OPENROUTER_SITE_NAME", "none", None),
    ("OPENROUTER_SESSION_ID", "none", None),
    ("OPENROUTER_PROMPT_CACHE_TTL", "the provider's default", None),
])
def test_each_documented_default_is_the_default(variable: str, documented: str, default: Any) -> None:
    assert _documented_defaults()[variable].startswith(documented)
    value = getattr(Settings.from_env({}), ENV[variable])
    assert value == default and type(value) is type(default)


def test_the_default_embedder_gives_the_documented_3072_dimensions() -> None:
    from openrouter_registry import OpenRouterService

    service = OpenRouterService(Settings.from_env({}, api_key="sk-or-v1-dims-test-key", catalog=False),
                                registry=Registry(environ={}))
    assert service.embedding_dimensions == 3072


@pytest.mark.parametrize(("variable", "accepted", "refused"), [
    ("OPENROUTER_MAX_ATTEMPTS", "1", "0"),
    ("OPENROUTER_MAX_REASKS", "0", "-1"),
    ("OPENROUTER_RETRY_AFTER_MAX", "0", "-0.5"),
    ("OPENROUTER_RETRY_AFTER_MAX", "0", "inf"),
    ("OPENROUTER_MAX_CONNECTIONS", "1", "0"),
    ("OPENROUTER_MAX_RESPONSE_BYTES", "1024", "1023"),
    ("OPENROUTER_MAX_TOKENS", "1", "0"),
    ("OPENROUTER_EMBEDDER_DIMENSIONS", "1", "0"),
    ("OPENROUTER_TIMEOUT", "0.001", "0"),
    ("OPENROUTER_TIMEOUT", "0.001", "inf"),
    ("OPENROUTER_CONNECT_TIMEOUT", "0.001", "0"),
    ("OPENROUTER_STREAM_IDLE_TIMEOUT", "0.001", "0"),
    ("OPENROUTER_STREAM_TIMEOUT", "0.001", "-1"),
    ("OPENROUTER_CATALOG_TTL", "0.001", "0"),
    ("OPENROUTER_SESSION_ID", "s" * 256, "s" * 257),
    ("OPENROUTER_SESSION_ID", "s", "a\tb"),
    ("OPENROUTER_PROMPT_CACHE_TTL", "1h", "10m"),
    ("OPENROUTER_PROMPT_CACHE", "off", "on"),
    ("OPENROUTER_TRANSPORT", "httpx", "requests"),
])
def test_each_setting_takes_its_edge_and_refuses_one_past_it_naming_the_variable(
    variable: str, accepted: str, refused: str
) -> None:
    name = ENV[variable]
    value = getattr(Settings.from_env({variable: accepted}), name)
    assert str(value) == accepted or value == type(value)(accepted)
    with pytest.raises(SettingsError, match=rf"^{variable} must be ") as caught:
        Settings.from_env({variable: refused})
    assert caught.value.variable == variable
    assert caught.value.expected == attrs.fields_dict(Settings)[name].metadata["expected"]


def test_a_blank_session_id_or_cache_dir_argument_is_refused() -> None:
    with pytest.raises(SettingsError, match="^OPENROUTER_SESSION_ID must be a session id of 1 to 256 printable"):
        Settings.from_env({}, session_id="   ")
    with pytest.raises(SettingsError, match="^OPENROUTER_CACHE_DIR must be a directory path"):
        Settings.from_env({}, cache_dir="  ")


def test_an_unknown_setting_name_is_refused_with_the_closest_one() -> None:
    with pytest.raises(SettingsError, match=r"^timout must be a setting name \(did you mean 'timeout'\? the settings are: api_key, model,"):
        Settings.from_env({}, timout=5)


# --- provider error messages (replies/decode.py) --------------------------------------------------------


def _provider_error(raw: Any) -> str:
    body = {"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": raw}}}
    return error_for(400, body, model=None).api_message


def test_a_provider_detail_is_kept_to_200_characters() -> None:
    exactly = "y" * 199 + "z"
    assert _provider_error(exactly) == f"Provider returned error: {exactly}"
    longer = exactly + "!"
    assert _provider_error(longer) == "Provider returned error: " + "y" * 199 + "…"


def test_a_message_object_holding_json_text_is_read_up_to_64_kib_of_it() -> None:
    def raw(length: int) -> str:
        head = json.dumps({"message": "quota exceeded", "pad": ""})
        return json.dumps({"message": "quota exceeded", "pad": "p" * (length - len(head))})

    def message(detail: str) -> str:
        return error_for(400, {"error": {"message": {"detail": detail}, "code": 400}}, model=None).api_message

    assert len(raw(64 * 1024)) == 64 * 1024
    assert message(raw(64 * 1024)) == "quota exceeded"
    past = message(raw(64 * 1024 + 1))  # not parsed: the text itself, shortened to 200 characters
    assert past.startswith('{"message": "quota exceeded", "pad": "ppp') and past.endswith("…") and len(past) == 200
    # in metadata.raw a string is cut to 4,096 characters first (see below), so it is read as text
    assert _provider_error(raw(5000)).startswith('Provider returned error: {"message": "quota exceeded"')


def test_a_body_that_is_not_json_is_quoted_to_80_characters() -> None:
    from openrouter_registry import InvalidResponseError

    with pytest.raises(InvalidResponseError) as caught:
        loads_body(b"<" + b"h" * 79)
    assert str(caught.value).startswith(f"Invalid upstream response: not JSON ({'<' + 'h' * 79!r})")
    with pytest.raises(InvalidResponseError) as caught:
        loads_body(b"<" + b"h" * 80)
    assert str(caught.value).startswith(f"Invalid upstream response: not JSON ({'<' + 'h' * 78 + '…'!r})")


def test_error_metadata_keeps_4096_characters_per_string_and_255_values_under_the_root() -> None:
    def metadata(value: Any) -> Any:
        return error_for(400, {"error": {"message": "x", "code": 400, "metadata": value}}, model=None).metadata

    assert metadata({"s": "q" * 4096}) == {"s": "q" * 4096}
    assert metadata({"s": "q" * 4097}) == {"s": "q" * 4096 + "…"}
    many = metadata({f"k{i:03}": i for i in range(300)})
    assert many == {f"k{i:03}": i for i in range(255)}  # 256 values in all, the object itself one of them
    assert metadata({"list": list(range(300))}) == {"list": list(range(254))}


@pytest.mark.parametrize(("status", "kind"), [(499, APIError), (500, ProviderError), (599, ProviderError),
                                              (600, APIError), (418, APIError)])
def test_5xx_statuses_are_provider_errors_and_others_without_a_class_are_api_errors(status: int, kind: type) -> None:
    error = error_for(status, {"error": {"message": "no", "code": status}}, model=None)
    assert type(error) is kind and error.status == status


# --- catalog entries (models/catalog.py) -------------------------------------------------------------------


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": "acme/writer", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}}
    entry.update(changes)
    return entry


def _kept(entry: dict[str, Any], caplog: pytest.LogCaptureFixture) -> Any:
    caplog.clear()
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        models = parse_models([entry])
    assert bool(models) != bool(caplog.records)  # an entry dropped is warned about, one kept is not
    return next(iter(models.values()), None)


@pytest.mark.parametrize(("kept", "dropped"), [
    ("1e-30", "9e-31"),
    ("0.00000123456789012345678901234567890", "0.000001234567890123456789012345678901"),  # 30 digits, 31
    ("999999.99", "1000000"),
    ("0" * 57 + ".000002", "0" * 58 + ".000002"),  # 64 characters, 65
])
def test_a_catalog_price_is_kept_within_its_bounds_and_the_entry_dropped_past_them(
    kept: str, dropped: str, caplog: pytest.LogCaptureFixture
) -> None:
    model = _kept(_entry(pricing={"prompt": kept, "completion": "0"}), caplog)
    assert model is not None and model.pricing.prompt == Decimal(kept) and model.pricing.completion == 0
    assert _kept(_entry(pricing={"prompt": dropped, "completion": "0"}), caplog) is None
    assert "acme/writer" in caplog.records[0].getMessage()


def test_a_negative_catalog_price_means_variable_and_is_no_price(caplog: pytest.LogCaptureFixture) -> None:
    model = _kept(_entry(pricing={"prompt": "-1", "completion": "-1"}), caplog)
    assert model is not None and model.pricing.prompt is None and model.pricing.completion is None


def test_a_context_length_is_kept_up_to_a_billion_and_0_means_unknown(caplog: pytest.LogCaptureFixture) -> None:
    assert _kept(_entry(context_length=1_000_000_000), caplog).context_length == 1_000_000_000
    assert _kept(_entry(context_length="1000000000"), caplog).context_length == 1_000_000_000
    assert _kept(_entry(context_length=0), caplog).context_length is None
    assert _kept(_entry(context_length=1_000_000_001), caplog) is None
    assert "at most 1000000000" in caplog.records[0].getMessage()


def test_a_model_id_is_kept_up_to_256_characters(caplog: pytest.LogCaptureFixture) -> None:
    long = "acme/" + "w" * 251
    assert _kept(_entry(id=long), caplog).id == long
    assert _kept(_entry(id=long + "w"), caplog) is None
    assert "1 to 256 characters" in caplog.records[0].getMessage()


def _write_cache(settings: Settings, fetched_at: float) -> None:
    path = catalog_module.cache_file(settings, "catalog")
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": catalog_module.CACHE_FORMAT, "fetched_at": fetched_at, "source": "test",
                                "models": [{"id": "acme/from-the-file", "context_length": 1000}]}))


async def test_a_cache_file_up_to_5_minutes_in_the_future_is_fresh_and_past_that_stale(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    _write_cache(settings, time.time() + 299)  # a clock a little ahead: the file is trusted
    loaded = await load_catalog(settings)
    assert loaded is not None and "acme/from-the-file" in loaded.models and server.catalog_requests == []
    catalog_module._STORE.clear()
    _write_cache(settings, time.time() + 300.5)
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        loaded = await load_catalog(settings)
    assert loaded is not None and "acme/from-the-file" not in loaded.models and len(server.catalog_requests) == 1
    assert any("written in the future" in r.getMessage() for r in caplog.records)


# --- the reply parsers' bounds (replies/structured.py, replies/candidates.py) ------------------------------


def _literal(length: int) -> str:
    head, tail = "{'a': 1, 'pad': '", "'}"
    return head + "x" * (length - len(head) - len(tail)) + tail


def test_python_s_parser_reads_a_literal_of_20000_characters_and_no_more() -> None:
    assert parse_python_literal(_literal(20_000), SCHEMA) == {"a": 1, "pad": "x" * (20_000 - 19)}
    assert parse_python_literal(_literal(20_001), SCHEMA) is None


@pytest.mark.parametrize(("depth", "parsed"), [(64, True), (65, False)])
def test_a_python_literal_nested_64_deep_is_read_and_65_is_not(depth: int, parsed: bool) -> None:
    value = parse_python_literal("[" * depth + "True" + "]" * depth, None)
    expected: Any = True
    for _ in range(depth):
        expected = [expected]
    assert value == (expected if parsed else None)


def test_json_repair_reads_a_block_of_50000_characters_and_no_more() -> None:
    def unquoted(length: int) -> str:
        head, tail = '{a: 1, pad: "', '"}'
        return head + "x" * (length - len(head) - len(tail)) + tail

    assert parse_json_reply(unquoted(50_000), SCHEMA) == {"a": 1, "pad": "x" * (50_000 - 15)}
    assert parse_json_reply(unquoted(50_001), SCHEMA) is None


def test_json_encoded_as_a_string_is_decoded_up_to_3_more_times() -> None:
    text = json.dumps({"a": 1})
    for _ in range(3):  # the reply is a JSON string, holding a JSON string, holding one more
        text = json.dumps(text)
    assert parse_json_reply(text, SCHEMA) == {"a": 1}
    assert parse_json_reply(json.dumps(text), SCHEMA) is None


def test_at_most_32_candidate_blocks_are_tried() -> None:
    from openrouter_registry.replies.candidates import MAX_CANDIDATES, json_candidates

    assert MAX_CANDIDATES == 32
    wrong = " ".join(f'{{"b": {i}}}' for i in range(31))
    assert len(list(json_candidates(wrong + ' {"a": 1}'))) == 32
    assert parse_json_reply(wrong + ' {"a": 1}', SCHEMA) == {"a": 1}  # the 32nd block
    assert parse_json_reply(wrong + ' {"b": 31} {"a": 1}', SCHEMA) == {"b": 0}  # the 33rd is never tried


# --- validation messages (schemas/validation.py) -------------------------------------------------------------


def test_a_validation_message_is_cut_to_240_characters() -> None:
    schema = {"type": "object", "properties": {"k": {"type": "integer"}}}
    suffix = " is not of type 'integer'"
    fits = "v" * (240 - len("''") - len(suffix))
    assert validate({"k": fits}, schema) == [f"$.k: '{fits}'{suffix}"]
    [cut] = validate({"k": fits + "v"}, schema)
    assert cut == "$.k: " + (f"'{fits}v'{suffix}")[:239] + "…"


@pytest.mark.parametrize(("wrong", "tail"), [(199, "... and 179 more errors"), (200, "... and more errors"),
                                             (260, "... and more errors")])
def test_past_200_errors_the_count_of_the_others_is_not_given(wrong: int, tail: str) -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    messages = validate({f"k{i:03}": "x" for i in range(wrong)}, schema)
    assert len(messages) == 21 and messages[-1] == tail  # 20 of the errors found first, sorted, then the rest
    assert all(re.fullmatch(r"\$\.k\d{3}: 'x' is not of type 'integer'", m) for m in messages[:20])


# --- the plugin registry (plugins/registry.py) ------------------------------------------------------------------


@pytest.mark.parametrize(("length", "shown"), [(300, "m" * 300), (301, "m" * 300 + "...")])
def test_a_plugin_failure_is_reported_with_300_characters_of_its_message(length: int, shown: str) -> None:
    class Broken:
        @hookimpl
        def claimed_models(self) -> Any:
            raise RuntimeError("m" * length)

    registry = Registry(environ={})
    registry.register(Broken(), name="broken")
    [info] = [p for p in registry.plugins() if p.name == "broken"]
    assert info.status == "degraded" and info.error is not None
    assert info.error.endswith(f"RuntimeError: {shown}")


# --- model tables (plugins/matching.py) ---------------------------------------------------------------------


def _generator() -> type:
    from openrouter_registry.plugin import Generator

    class Writer(Generator):
        pass

    return Writer


def test_a_model_table_matches_exact_ids_variants_aliases_and_families_in_that_order() -> None:
    import re as regex

    from openrouter_registry.plugins.matching import Match, ModelTable

    writer, family, other = _generator(), _generator(), _generator()
    table = ModelTable(exact={"Acme/Writer-1": writer}, aliases={"acme/writer": "acme/writer-1"},
                       families=[(r"acme/writer-\d+", family), (regex.compile(r"ACME/other-.*"), other)], priority=3)
    found = {model: table.match(model) for model in ["acme/writer-1", "ACME/WRITER-1:nitro", "acme/writer",
                                                     "acme/writer:free", "acme/writer-2:online", "acme/other-x",
                                                     "acme/writer-x", "acme/writer-1x"]}
    shown = {m: (c.generator, c.match, c.priority, c.reason) if c is not None else None for m, c in found.items()}
    assert shown == {
        "acme/writer-1": (writer, Match.EXACT, 3, "exact id acme/writer-1"),
        "ACME/WRITER-1:nitro": (writer, Match.ALIAS, 3, "variant :nitro of acme/writer-1"),
        "acme/writer": (writer, Match.ALIAS, 3, "alias of acme/writer-1"),
        "acme/writer:free": (writer, Match.ALIAS, 3, "variant :free of alias of acme/writer-1"),
        "acme/writer-2:online": (family, Match.FAMILY, 3, r"variant :online of family /acme/writer-\d+/"),
        "acme/other-x": (other, Match.FAMILY, 3, "family /ACME/other-.*/"),  # a compiled pattern made case-insensitive
        "acme/writer-x": None,
        "acme/writer-1x": None,  # a family pattern matches the whole id
    }
    assert table.claimed() == ["acme/writer-1"]


def test_a_model_table_refuses_what_it_cannot_use() -> None:
    from openrouter_registry.plugins.matching import Candidate, Match, ModelTable

    writer = _generator()
    with pytest.raises(ValueError, match=r"^alias 'acme/w' points to 'acme/nope', which is not an exact id of this table$"):
        ModelTable(exact={"acme/writer-1": writer}, aliases={"acme/w": "acme/nope"})
    with pytest.raises(ValueError, match=r"^family pattern 'acme/\(' is not a valid regular expression: "):
        ModelTable(families=[("acme/(", writer)])
    with pytest.raises(TypeError, match="^a family pattern must be a str regular expression, got int$"):
        ModelTable(families=[(7, writer)])  # type: ignore[list-item]
    assert ModelTable(families=[(r"acme/writer\-*", writer)]).match("acme/writer--") is not None  # an escaped dash
    with pytest.raises(ValueError, match=r"^match must be one of exact, alias, family, fallback; got 'best'$"):
        Candidate(writer, "best")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^Candidate.generator must be a Generator subclass, got <class 'int'>$"):
        Candidate(int, Match.EXACT)  # type: ignore[arg-type]
    assert Candidate(writer, "Family").match is Match.FAMILY and str(Match.FAMILY) == "family"


def test_candidates_rank_by_match_then_priority_then_plugin_name() -> None:
    from openrouter_registry.plugins.matching import Candidate, Match

    writer = _generator()
    candidates = [Candidate(writer, Match.FAMILY, 9, plugin="a"), Candidate(writer, Match.EXACT, 0, plugin="z"),
                  Candidate(writer, Match.EXACT, 1, plugin="y"), Candidate(writer, Match.EXACT, 1, plugin="b")]
    ranked = sorted(candidates, key=Candidate.sort_key)
    assert [(c.match, c.priority, c.plugin) for c in ranked] == [
        (Match.EXACT, 1, "b"), (Match.EXACT, 1, "y"), (Match.EXACT, 0, "z"), (Match.FAMILY, 9, "a")]


# --- batch runs (batch/run.py) and embeddings' events (engine/calls.py) -------------------------------------


def test_latency_quantiles_are_within_1_percent_and_a_millisecond_or_less_is_1_ms() -> None:
    from openrouter_registry.batch.run import _Latencies

    fast = _Latencies()
    for seconds in [0.0, 0.0004, 0.001]:
        fast.add(seconds)
    assert fast.quantile(0.5) == fast.quantile(0.95) == 0.001  # the floor bucket: "1 ms or less"
    spread = _Latencies()
    assert spread.quantile(0.5) is None
    for seconds in [0.05, 0.2, 0.8, 3.0, 12.0]:
        spread.add(seconds)
    for q, expected in [(0.2, 0.05), (0.5, 0.8), (0.95, 12.0), (1.0, 12.0)]:
        value = spread.quantile(q)
        assert value is not None and abs(value - expected) <= 0.01 * expected, (q, value)


def test_a_batch_row_s_repr_leaves_out_its_generation_result() -> None:
    from openrouter_registry.batch.run import BatchRow

    row = BatchRow(id="a", ok=True, content={"x": 1}, result="the whole GenerationResult")  # type: ignore[arg-type]
    assert row.result == "the whole GenerationResult" and "GenerationResult" not in repr(row)
    assert repr(row).startswith("BatchRow(id='a', ok=True, content={'x': 1}, error=None")


async def test_only_a_run_stopped_by_its_budget_says_so_in_the_log(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    from openrouter_registry import OpenRouterService

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
    rows = [{"id": i, "prompt": f"Where is landmark {i}?"} for i in range(20)]
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        estimate = await service.estimate_cost("Where is landmark 0?", max_tokens=60)
        assert estimate is not None
        with caplog.at_level(logging.INFO, "openrouter_registry"):
            stopped = service.batch(rows, max_cost=estimate.high * Decimal("1.5"), max_tokens=60, concurrency=1)
            done = [row async for row in stopped]
            whole = service.batch(rows[:2], max_cost=estimate.high * 100, max_tokens=60, concurrency=1)
            [row async for row in whole]
            # room for one row in flight: cancelled while the second waits for the first's cost
            cancelled = service.batch(rows[:6], max_cost=estimate.high * Decimal("1.5"), max_tokens=60, concurrency=4)
            async for _ in cancelled:
                cancelled.cancel()
    assert stopped.summary().stopped == "budget" and whole.summary().stopped is None
    assert cancelled.summary().stopped == "interrupted" and cancelled.summary().rows == 1
    said = [r.getMessage() for r in caplog.records if "stopped by max_cost" in r.getMessage()]
    assert said == [f"batch stopped by max_cost {estimate.high * Decimal('1.5')} after {len(done)} rows"] and len(done) < 20


@pytest.mark.parametrize(("cost", "source"), [(0.00002, "api"), (None, None)])
async def test_an_embedding_call_s_response_event_says_where_its_cost_came_from(
    server: FakeOpenRouter, cost: float | None, source: str | None
) -> None:
    from openrouter_registry import OpenRouterService
    from openrouter_registry.testing import Scripted

    usage: dict[str, Any] = {"prompt_tokens": 2, "total_tokens": 2}
    if cost is not None:
        usage["cost"] = cost
    server.enqueue(Scripted(json={"object": "list", "model": "text-embedding-3-large", "usage": usage,
                                  "data": [{"object": "embedding", "embedding": [0.5, 0.25], "index": 0}]}))
    seen: list[Any] = []
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={}), on_event=seen.append) as service:
        result = await service.embed(["hi"], model="openai/text-embedding-3-large")
    [response] = [e for e in seen if e.kind == "response"]
    assert response.operation == "embeddings" and response.cost_source == source
    assert response.cost == result.cost == (None if cost is None else Decimal(str(cost)))


async def test_within_5_minutes_of_a_failed_fetch_the_catalog_costs_no_file_read(
    server: FakeOpenRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrouter_registry.testing import Scripted

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    server.catalog_answer = Scripted(status=500, json={"error": {"message": "down", "code": 500}})
    reads: list[Path] = []
    real = catalog_module._read_cache
    monkeypatch.setattr(catalog_module, "_read_cache", lambda s: reads.append(tmp_path) or real(s))
    assert await load_catalog(settings) is None and len(reads) == 1 and len(server.catalog_requests) == 1
    _write_cache(settings, time.time())  # another process writes the cache meanwhile
    assert await load_catalog(settings) is None  # settled: no lock, no file check, no request
    assert len(reads) == 1 and len(server.catalog_requests) == 1
