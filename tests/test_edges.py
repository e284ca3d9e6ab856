"""Behaviours at the edges that a sampled mutation check found unguarded (issue 24): each test below
fails on one small change of the code (a boundary moved by one, a default changed, a statement or a
``raise`` deleted, ``and``/``or`` swapped) and asserts what a user sees. Run ``make mutate`` to look
for more (see "Mutation check" in docs/contributing.md)."""

from __future__ import annotations

import json
import logging
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import BadRequestError, OpenRouterService, Registry, Settings
from openrouter_registry.batch.files import MAX_LINE_BYTES, RowWriter, read_input
from openrouter_registry.batch.run import BatchRow, BatchSummary, ConcurrencyReport, _Limiter
from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import load_catalog, parse_models
from openrouter_registry.plugin import hookimpl
from openrouter_registry.plugins.registry import DISABLE_AFTER
from openrouter_registry.replies.candidates import MAX_SCAN_CHARS, json_candidates
from openrouter_registry.replies.decode import error_for
from openrouter_registry.replies.structured import parse_json_reply, parse_unclosed
from openrouter_registry.testing import FakeOpenRouter, Scripted

ROOT = Path(__file__).resolve().parents[1]
#: The README and the docs site: where a documented default or behaviour is stated
README = "\n".join(page.read_text(encoding="utf-8") for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])


@pytest.fixture
def server() -> Any:
    with FakeOpenRouter() as fake:
        yield fake


# --- provider error messages (replies/decode.py) ------------------------------------------------------


def test_a_message_of_exactly_1000_characters_keeps_its_line_breaks_and_one_more_is_flattened() -> None:
    lines = "\n".join(["x" * 99] * 10)  # 10 x 99 + 9 line breaks
    exactly = lines + "!"
    assert len(exactly) == 1000
    error = error_for(400, {"error": {"message": exactly, "code": 400}}, model="m")
    assert error.api_message == exactly
    longer = exactly + "?"
    flat = error_for(400, {"error": {"message": longer, "code": 400}}, model="m").api_message
    assert "\n" not in flat and flat.startswith("x" * 99 + " x") and flat.endswith("…") and len(flat) == 1000


async def test_the_first_problem_in_a_list_of_provider_errors_is_the_message(server: FakeOpenRouter) -> None:
    """Google answers with a JSON list of errors, passed on in ``metadata.raw``; a list can also be the message."""
    raw = json.dumps([{"error": {"code": 400, "message": "Invalid JSON payload: unknown name 'foo'"}},
                      {"error": {"message": "second problem"}}])
    server.enqueue(Scripted(status=400, json={"error": {"message": "Provider returned error", "code": 400,
                                                        "metadata": {"raw": raw, "provider_name": "Google"}}}))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(BadRequestError) as caught:
            await service.generate("hi", model="google/gemini-2.5-flash")
    assert caught.value.api_message == "Provider returned error: Invalid JSON payload: unknown name 'foo'"
    listed = error_for(400, {"error": {"message": [{"message": "first"}, {"message": "second"}]}}, model=None)
    assert listed.api_message == "first"


# --- the plugin registry (plugins/registry.py) --------------------------------------------------------


def test_a_plugin_without_build_headers_is_not_asked_for_its_models_at_register() -> None:
    calls: list[str] = []

    class Claims:
        @hookimpl
        def claimed_models(self) -> Any:
            calls.append("claimed_models")
            raise RuntimeError("the model list is down")

    registry = Registry(environ={})
    registry.register(Claims(), name="claims")
    assert calls == []  # its headers are not checked: it has no build_headers
    [info] = [p for p in registry.plugins() if p.name == "claims"]
    assert (info.status, info.failures, info.headers) == ("degraded", 1, None)
    assert calls == ["claimed_models"]


def test_a_plugin_whose_build_headers_returns_a_list_shows_no_headers_state() -> None:
    class Listy:
        @hookimpl
        def build_headers(self, model: str, settings: Settings) -> Any:
            return [("X-Team", "a")]

    registry = Registry(environ={})
    registry.register(Listy(), name="listy")
    [info] = [p for p in registry.plugins() if p.name == "listy"]
    assert info.headers is None and info.header_names == ()  # not "none": it returned no valid headers
    assert info.status == "degraded" and info.error is not None and "build_headers broke its contract" in info.error


def test_a_plugin_re_registered_while_its_probe_runs_stays_loaded(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry(environ={})
    seen: list[str] = []

    class Flaky:
        @hookimpl
        def parse_structured(self, model: str, text: str) -> Any:
            seen.append(text)
            if text == "{}":  # the probe: meanwhile the app puts the plugin back under its name
                registry.unregister("flaky")
                registry.register(plugin, name="flaky")
            raise ValueError("not today")

    plugin = Flaky()
    registry.register(plugin, name="flaky")
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        for i in range(DISABLE_AFTER):
            registry.parse_structured("acme/x", f'{{"n": {i}}}', None)
    assert seen[-1] == "{}"  # the probe ran, and failed
    assert not [r for r in caplog.records if "disabled" in r.getMessage()]
    assert {p.name: p.status for p in registry.plugins()}["flaky"] == "loaded"
    registry.parse_structured("acme/x", '{"n": 9}', None)
    assert seen[-1] == '{"n": 9}'  # the registration made during the probe still gets the calls


# --- the model catalog (models/catalog.py) ------------------------------------------------------------


@pytest.mark.parametrize("price", ["Infinity", "-Infinity", "NaN", "inf", 1e999])
def test_a_non_finite_price_drops_the_entry_with_a_warning(price: Any, caplog: pytest.LogCaptureFixture) -> None:
    entry = {"id": "acme/writer", "context_length": 1000, "pricing": {"prompt": price, "completion": "0.00001"}}
    good = {"id": "acme/other", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}}
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        models = parse_models([entry, good])
    assert list(models) == ["acme/other"]  # never an infinite price, so never an infinite cost estimate
    assert models["acme/other"].pricing.prompt == Decimal("0.000001")
    assert len(caplog.records) == 1 and "acme/writer" in caplog.records[0].getMessage()


async def test_a_failed_catalog_fetch_is_tried_again_after_5_minutes(server: FakeOpenRouter, tmp_path: Path) -> None:
    assert "not\n  tried again for 5 minutes" in README or "not tried again for 5 minutes" in " ".join(README.split())
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    server.catalog_answer = Scripted(status=500, json={"error": {"message": "down", "code": 500}})
    assert await load_catalog(settings) is None
    key = catalog_module._key(settings)
    catalog_module._STORE.failed_at[key] = time.monotonic() - 299.5  # just under 5 minutes ago: not yet
    assert await load_catalog(settings) is None and len(server.catalog_requests) == 1
    catalog_module._STORE.failed_at[key] = time.monotonic() - 300.5  # just over: one new try
    assert await load_catalog(settings) is None and len(server.catalog_requests) == 2


# --- documented defaults (settings.py, engine/calls.py) -------------------------------------------------


def test_the_documented_timeouts_are_the_defaults() -> None:
    row = next(line for line in README.splitlines() if line.startswith("| `OPENROUTER_TIMEOUT`, `OPENROUTER_CONNECT_TIMEOUT`"))
    assert row.rstrip().endswith("| 120, 10 |")
    settings = Settings.from_env({})
    assert (settings.timeout, settings.connect_timeout) == (120.0, 10.0)


@pytest.mark.parametrize(("model", "size"), [("openai/text-embedding-3-small", 1536),
                                             ("openai/text-embedding-ada-002", 1536),
                                             ("openai/text-embedding-3-large", 3072)])
async def test_known_embedding_models_report_their_vector_size(server: FakeOpenRouter, model: str, size: int) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, embedder_model=model,
                                 catalog=False)
    service = OpenRouterService(settings, registry=Registry(environ={}))
    assert service.embedding_dimensions == size
    async with service:
        embedder = await service(None).get_embedder()  # what Parlant gets
        assert embedder.dimensions == size
        result = await embedder.embed(["a text"])
    assert [len(v) for v in result.vectors] == [size]
    assert server.requests[-1].body["dimensions"] == size


# --- structured replies at the scan bound (replies/structured.py, replies/candidates.py) ------------------


SCHEMA = {"type": "object", "properties": {"pad": {"type": "string"}, "a": {"type": "integer"}}, "required": ["a"]}


def _unclosed(length: int) -> str:
    head, tail = '{"a": 1, "pad": "', '"'
    return head + "x" * (length - len(head) - len(tail)) + tail


def test_an_unclosed_reply_of_exactly_the_scan_bound_is_repaired_and_one_more_is_not() -> None:
    exactly = _unclosed(MAX_SCAN_CHARS)
    assert len(exactly) == MAX_SCAN_CHARS == 2_000_000
    repaired = parse_unclosed(exactly, SCHEMA)
    assert repaired is not None and repaired["a"] == 1 and len(repaired["pad"]) == MAX_SCAN_CHARS - 18
    assert parse_unclosed(_unclosed(MAX_SCAN_CHARS + 1), SCHEMA) is None


def test_past_the_scan_bound_an_object_followed_by_chatter_is_still_recovered() -> None:
    value = {"a": 1, "pad": "x" * MAX_SCAN_CHARS}
    text = json.dumps(value) + "\n\nHope this helps!"
    assert len(text) > MAX_SCAN_CHARS
    assert parse_json_reply(text, SCHEMA) == value
    assert parse_json_reply(json.dumps([value]) + " done", {"type": "array"}) == [value]


@pytest.mark.parametrize("text", ['Result: {"a": 1} (see ```x`)\n', 'Result: {"a": 1} (see ```x`)\nThat is all.\n'])
def test_a_fence_mark_with_a_backtick_after_it_opens_no_block_and_the_object_is_kept(text: str) -> None:
    assert list(json_candidates(text)) == ['{"a": 1}']
    assert parse_json_reply(text, {"type": "object"}) == {"a": 1}


# --- batch runs (batch/run.py, batch/files.py) --------------------------------------------------------


@pytest.mark.parametrize("slots", [1, 8, 20])
def test_one_lone_429_in_a_batch_of_20_slots_or_fewer_neither_halves_nor_pauses(slots: int) -> None:
    now = [50.0]
    limiter = _Limiter(slots, clock=lambda: now[0])
    limiter.rate_limited(sent_at=49.0, wait=2.0)  # 1 of the last 20 answers: exactly the 5% share
    assert (limiter.slots, limiter.decreases, limiter.pause_left()) == (slots, 0, 0.0)
    limiter.rate_limited(sent_at=49.0, wait=2.0)  # a second one passes it
    assert (limiter.slots, limiter.decreases, limiter.pause_left()) == (max(1, slots // 2), int(slots > 1), 2.0)


def test_the_summary_gives_rows_per_second_to_two_places() -> None:
    report = ConcurrencyReport(start=8, min=8, max=8, final=8, decreases=0, increases=0)
    summary = BatchSummary(rows=3, ok=3, failed={}, requests=3, prompt_tokens=1, completion_tokens=1,
                           cost=Decimal("0"), rows_without_cost=0, latency_p50_s=None, latency_p95_s=None,
                           wall_s=0.2431, rows_per_s=12.3456, concurrency=report, max_cost=None, stopped=None,
                           not_started=None)
    assert summary.to_dict()["rows_per_s"] == 12.35
    assert summary.to_dict()["wall_s"] == 0.243


def _line_of(size: int) -> bytes:
    head, tail = b'{"id": 1, "prompt": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_a_last_input_line_of_exactly_32_mib_without_a_newline_is_read(tmp_path: Path) -> None:
    assert MAX_LINE_BYTES == 32 * 1024 * 1024
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": 0}\n' + _line_of(MAX_LINE_BYTES))
    lines = list(read_input(path))
    assert [(x.line, x.problem) for x in lines] == [(1, None), (2, None)]
    assert len(lines[1].value["prompt"]) == MAX_LINE_BYTES - 23
    path.write_bytes(_line_of(MAX_LINE_BYTES) + b"\n" + _line_of(MAX_LINE_BYTES + 1))
    [first, second] = read_input(path)
    assert first.problem is None and first.value["id"] == 1
    assert (second.line, second.value, second.problem) == (2, None, "longer than 32 MiB; not read")


def test_the_row_writer_closes_its_file_when_the_block_ends(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    def open_on(path: Path) -> bool:
        fds = Path("/proc/self/fd")
        return any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir())

    with RowWriter(out) as writer:
        writer.write(BatchRow(id="a", ok=True, content={"x": 1}))
        assert not Path("/proc/self/fd").is_dir() or open_on(out)
    assert json.loads(out.read_text())["id"] == "a"
    if Path("/proc/self/fd").is_dir():
        assert not open_on(out)
    with pytest.raises(ValueError, match="closed file"):
        writer.write(BatchRow(id="b", ok=True, content={"x": 2}))



# --- the suite's own rule: tests write only inside their temp dirs (tests/checkout_guard.py) -------------


def test_the_checkout_guard_names_what_a_test_left_and_lets_tool_caches_be(tmp_path: Path) -> None:
    from checkout_guard import CheckoutGuard

    checkout = tmp_path / "checkout"
    (checkout / "core").mkdir(parents=True)
    guard = CheckoutGuard([checkout, checkout / "core"])
    assert guard.new_entries() == []
    time.sleep(0.05)  # past the file system's timestamp tick, as between a directory's creation and a test
    (checkout / "-1").mkdir()  # what an unseeded fuzz once left: a relative cache_dir
    (checkout / "-1" / "catalog.json").write_text("{}")
    (checkout / "core" / "__pycache__").mkdir()
    (checkout / ".hypothesis").mkdir()
    assert guard.new_entries() == [checkout / "-1"]
    assert guard.new_entries() == []  # each new entry is reported once
    time.sleep(0.05)
    (checkout / "core" / "stray.txt").write_text("x")
    assert guard.new_entries() == [checkout / "core" / "stray.txt"]


# --- survivors of the second sample (issue 24's 80 mutants, seed 2024) ------------------------------------
# Judged equivalent, so left without a test:
# - batch/files.py OutputLock.__exit__'s `self._fd = None`: only a second __exit__ (a direct call the library
#   never makes) would see the old descriptor; the lock is entered and left once per run.
# - models/catalog.py write_atomic's `ensure_ascii=False` -> True: the cache file spells non-ASCII as \u
#   escapes instead of UTF-8, and reading it back gives the same catalog.


def test_two_ids_with_the_same_hash_are_not_called_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openrouter_registry import ConfigurationError
    from openrouter_registry.batch import files

    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n')
    monkeypatch.setattr(files, "_hash", lambda key: 7)  # every id collides on its 8-byte hash
    assert files.scan_input(path, set()).rows == 3  # confirmed against the real ids: no duplicate
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n')
    with pytest.raises(ConfigurationError, match=r"duplicate ids in .*: \"a\" on lines 1, 3; every row needs its own id"):
        files.scan_input(path, set())


async def test_too_few_vectors_name_the_model_that_answered(server: FakeOpenRouter) -> None:
    from openrouter_registry import InvalidResponseError

    short = Scripted(json={"object": "list", "data": [{"object": "embedding", "embedding": [0.5], "index": 0}],
                           "model": "text-embedding-3-large"})
    server.enqueue(short)
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, max_attempts=1)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(InvalidResponseError, match="1 embeddings for 2 inputs") as caught:
            await service.embed(["a", "b"], model="openai/text-embedding-3-large")
    assert caught.value.model == "text-embedding-3-large"  # the upstream's name, as on a result


async def test_a_stream_answered_with_a_json_body_raises_its_error_or_says_it_is_not_a_stream(
    server: FakeOpenRouter,
) -> None:
    from openrouter_registry import InvalidResponseError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, max_attempts=1)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        server.enqueue(Scripted(json={"error": {"message": "messages must not be empty", "code": 400}}))
        with pytest.raises(BadRequestError, match="messages must not be empty"):
            await service.stream("hi").collect()
        server.enqueue(Scripted(json={"id": "gen-1", "choices": []}))
        with pytest.raises(InvalidResponseError, match="expected an event stream"):
            await service.stream("hi").collect()


async def test_each_base_url_has_its_own_catalog(tmp_path: Path) -> None:
    with FakeOpenRouter() as first, FakeOpenRouter() as second:
        second.catalog_answer = Scripted(json={"data": [{"id": "acme/only-here", "context_length": 1000}]})
        one = await load_catalog(Settings.from_env({}, base_url=first.base_url, api_key=first.api_key))
        two = await load_catalog(Settings.from_env({}, base_url=second.base_url, api_key=second.api_key))
    assert one is not None and two is not None
    assert "acme/only-here" in two.models and "acme/only-here" not in one.models
    assert len(first.catalog_requests) == len(second.catalog_requests) == 1


def test_a_glob_family_pattern_is_refused_with_the_regular_expression_to_write() -> None:
    from openrouter_registry.plugins.matching import _compile_family

    with pytest.raises(ValueError, match=r'write r"acme/writer-.*"$'):
        _compile_family("acme/writer-*")
    with pytest.raises(ValueError, match=r'write r"acme/.-v2"$'):
        _compile_family("acme/?-v2")


def test_error_metadata_is_copied_8_levels_deep_and_cut_below() -> None:
    def nested(levels: int) -> Any:
        value: Any = "leaf"
        for _ in range(levels):
            value = {"a": value}
        return value

    def leaf(value: Any) -> Any:
        while isinstance(value, dict):
            value = value["a"]
        return value

    kept = error_for(400, {"error": {"message": "x", "code": 400, "metadata": nested(8)}}, model=None)
    cut = error_for(400, {"error": {"message": "x", "code": 400, "metadata": nested(9)}}, model=None)
    assert leaf(kept.metadata) == "leaf" and leaf(cut.metadata) == "…"


def test_error_metadata_keeps_finite_numbers_and_marks_the_rest() -> None:
    metadata = {"ratio": 0.25, "count": 2**63 - 1, "huge": 2**63, "inf": float("inf"), "nan": float("nan"), "ok": True}
    error = error_for(400, {"error": {"message": "x", "code": 400, "metadata": metadata}}, model=None)
    assert error.metadata == {"ratio": 0.25, "count": 2**63 - 1, "huge": "…", "inf": "…", "nan": "…", "ok": True}


@pytest.mark.parametrize("schema", [{"enum": [True, False]}, {"const": False}, {"type": "boolean"}])
def test_a_boolean_reply_meets_a_boolean_schema(schema: dict[str, Any]) -> None:
    assert parse_json_reply("false", schema) is False


def test_a_schema_s_type_is_found_through_8_levels_of_any_of_and_no_deeper() -> None:
    def wrapped(levels: int) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        for _ in range(levels):
            schema = {"anyOf": [schema]}
        return schema

    assert parse_json_reply('"hello"', wrapped(8)) == "hello"
    assert parse_json_reply('"hello"', wrapped(9)) is None  # the type is unknown there: objects and arrays only


# --- survivors of the third sample (80 mutants, seed 2025) ------------------------------------------------


async def test_a_row_without_a_usable_id_says_which_it_had(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        run = service.batch([{"prompt": "hi"}, {"id": "", "prompt": "hi"}])
        rows = [row async for row in run]
    assert [r.ok for r in rows] == [False, False]
    messages = sorted(r.error.message for r in rows if r.error is not None)
    assert messages == ["line 1: no 'id'; every row needs an 'id' that is a non-empty string or an integer",
                        "line 2: 'id' ''; every row needs an 'id' that is a non-empty string or an integer"]


async def test_the_summary_of_a_finished_run_no_longer_counts_time(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        run = service.batch([{"id": 1, "prompt": "hi"}])
        [row async for row in run]
    first = run.summary().wall_s
    time.sleep(0.05)
    assert run.summary().wall_s == first


@pytest.mark.parametrize("messages", [[], "hello", b"hello", {"role": "user", "content": "hi"}])
async def test_messages_that_are_not_a_non_empty_list_are_refused(server: FakeOpenRouter, messages: Any) -> None:
    from openrouter_registry import ConfigurationError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(ConfigurationError, match="messages must be a non-empty list"):
            await service.generate(None, messages=messages)
    assert server.requests == []


async def test_embed_takes_dimensions_from_1_and_refuses_0(server: FakeOpenRouter) -> None:
    from openrouter_registry import ConfigurationError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(ConfigurationError, match="dimensions must be a positive integer, got 0"):
            await service.embed(["a"], dimensions=0)
        assert server.requests == []
        result = await service.embed(["a"], dimensions=1)
    assert server.requests[-1].body["dimensions"] == 1 and [len(v) for v in result.vectors] == [1]


async def test_a_cache_file_of_another_format_is_ignored_with_a_warning(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    path = catalog_module.cache_file(settings, "catalog")
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = {"format": catalog_module.CACHE_FORMAT + 1, "fetched_at": time.time(), "source": "x",
             "models": [{"id": "acme/from-the-file", "context_length": 1000}]}
    path.write_text(json.dumps(stale))
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        loaded = await load_catalog(settings)
    assert loaded is not None and "acme/from-the-file" not in loaded.models
    assert len(server.catalog_requests) == 1
    assert any("not a catalog this version wrote" in r.getMessage() for r in caplog.records)


def test_a_stream_handle_shows_its_model_attempts_and_status() -> None:
    from openrouter_registry.http.transport import StreamHandle

    headers = {"Authorization": "Bearer sk-or-v1-repr-test-key"}
    handle = StreamHandle(None, "https://x.invalid/api/v1/chat/completions", {}, headers, model="openai/gpt-4o")  # type: ignore[arg-type]
    assert repr(handle) == "StreamHandle(model='openai/gpt-4o', attempts=0, status=None)"  # never the key


@pytest.mark.parametrize("raw", [42, 2.5, True, {"unrelated": 1}, [], ""])
def test_a_raw_provider_detail_without_a_message_leaves_the_message_alone(raw: Any) -> None:
    error = error_for(400, {"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": raw}}},
                      model=None)
    assert error.api_message == "Provider returned error"


# --- the rest of the third sample's survivors (seed 2025) -------------------------------------------------
# Judged equivalent, so left without a test:
# - schemas/validation.py validate()'s `surely_valid(data, key, plain=True)` -> False: fastvalid then checks
#   `plain_json(data)` itself, which `_shape` has just found true; one more walk of the data, the same answer.


async def test_a_priced_row_held_by_the_budget_keeps_its_estimate_after_a_row_fails_without_cost(
    server: FakeOpenRouter,
) -> None:
    """The first row fails (no cost: nothing observed yet) while the second, long one waits for it; the
    second row's own estimate then still decides, and it would pass ``max_cost``: not sent."""
    short, long = "Where is landmark 0?", "Where is landmark 1? " + "and more " * 2_000
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        low = await service.estimate_cost(short, max_tokens=60)
        high = await service.estimate_cost(long, max_tokens=60)
        assert low is not None and high is not None and high.high > 2 * low.high
        server.enqueue(Scripted(status=400, json={"error": {"message": "no such tool", "code": 400}}))
        run = service.batch([{"id": 1, "prompt": short}, {"id": 2, "prompt": long}], concurrency=4,
                            max_cost=low.high * Decimal("1.5"), max_tokens=60)
        rows = [row async for row in run]
    assert [(row.id, row.ok) for row in rows] == [(1, False)]
    assert rows[0].error is not None and rows[0].error.type == "BadRequestError"
    assert len([r for r in server.requests if r.path.endswith("/chat/completions")]) == 1
    assert run.summary().stopped == "budget"


def test_closing_a_service_closes_the_client_of_a_loop_running_in_another_thread(server: FakeOpenRouter) -> None:
    import asyncio
    import threading

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    service = OpenRouterService(settings, registry=Registry(environ={}))
    ready, release = threading.Event(), threading.Event()
    clients: list[Any] = []

    async def use_then_wait() -> None:
        await service.generate("hi")
        clients.append(service.transport.client)
        ready.set()
        while not release.is_set():  # the loop runs, busy: closing its client there takes a moment
            time.sleep(0.2)
            await asyncio.sleep(0)

    thread = threading.Thread(target=asyncio.run, args=(use_then_wait(),))
    thread.start()
    try:
        assert ready.wait(10)
        [client] = clients
        assert not client.is_closed
        asyncio.run(service.aclose())
        assert client.is_closed  # closed in its own loop (aclose waited for it), before that loop ends
    finally:
        release.set()
        thread.join()


def test_a_plugin_installed_twice_is_loaded_once_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    from test_plugin_loading import GOOD, install_fake_distribution

    monkeypatch.syspath_prepend(str(tmp_path))
    install_fake_distribution(tmp_path, "acme-writer", "1.0", "acme_twice_a", GOOD, "acme_twice")
    install_fake_distribution(tmp_path, "acme-writer-fork", "2.0", "acme_twice_b", GOOD, "acme_twice")
    try:
        with caplog.at_level(logging.WARNING, "openrouter_registry"):
            infos = [p for p in Registry(environ={}).plugins() if p.name == "acme_twice"]
    finally:
        for name in [m for m in sys.modules if m.startswith("acme_twice")]:
            del sys.modules[name]
    [info] = infos
    assert info.status == "loaded" and info.models == ("acme/writer-1",)
    other = "acme_twice_b" if info.distribution == "acme-writer" else "acme_twice_a"
    warnings = [r.getMessage() for r in caplog.records if "installed twice" in r.getMessage()]
    assert warnings == [f"plugin 'acme_twice' is installed twice; the second entry point ({other}) is ignored"]


def test_the_candidate_scan_stops_after_4096_blocks_repeated_ones_included() -> None:
    from openrouter_registry.replies.candidates import MAX_BLOCKS

    assert MAX_BLOCKS == 4_096
    within = "{} " * (MAX_BLOCKS - 1) + '{"a": 1}'
    assert list(json_candidates(within)) == ["{}", '{"a": 1}']  # the 4,096th block is still seen
    assert parse_json_reply(within, SCHEMA) == {"a": 1}
    past = "{} " * MAX_BLOCKS + '{"a": 1}'
    assert list(json_candidates(past)) == ["{}"]  # the 4,097th is not
    assert parse_json_reply(past, SCHEMA) == {}  # the only candidate left, though the schema wants "a"


@pytest.mark.parametrize("inline", ["```", "``` and ```", "``` and ``` and ```"])
def test_a_fence_mark_inside_a_fenced_line_does_not_close_the_block(inline: str) -> None:
    text = f'Here:\n```json\n"run {inline} then"\n```\nDone.\n'
    assert list(json_candidates(text)) == [f'"run {inline} then"']
    assert parse_json_reply(text, {"type": "string"}) == f"run {inline} then"
    two = f'```json\n{{"a": "x {inline} y"}}\n```\nand\n```\n[1]\n```\n'
    assert list(json_candidates(two)) == [f'{{"a": "x {inline} y"}}', "[1]"]


@pytest.mark.parametrize(("code", "status"), [(99, 502), (100, 100), ("100", 100), (599, 599), (600, 502), ("600", 502)])
def test_an_error_code_in_a_200_body_is_its_status_from_100_to_599(code: Any, status: int) -> None:
    from openrouter_registry.replies.decode import body_error

    error = body_error({"error": {"code": code, "message": "upstream said no"}}, model="acme/x")
    assert error is not None and error.status == status and error.api_message == "upstream said no"


@pytest.mark.parametrize(("text", "value"), [("{'a': -1, 'b': +2.5}", {"a": -1, "b": 2.5}), ("[-0.5, +3]", [-0.5, 3]),
                                             ("{'a': ~1}", None), ("{'a': not 1}", None), ("[-True]", None),
                                             ("[-'x']", None), ("[-(1, 2)]", None), ("{'a': -x}", None)])
def test_a_python_literal_takes_signed_numbers_and_no_other_unary_operator(text: str, value: Any) -> None:
    from openrouter_registry.replies.structured import parse_python_literal

    assert parse_python_literal(text, None) == value


@pytest.mark.parametrize("refused", ["{'tags': {1, 2}}", "[[1][0]]", "{'a': b'x'}", "[1j]"])
def test_a_python_literal_that_is_not_json_is_skipped_and_a_later_block_is_still_found(refused: str) -> None:
    from openrouter_registry.replies.structured import parse_python_literal

    text = f"First try: {refused}\nBetter: {{'a': 1, 'ok': True}}"
    assert parse_python_literal(text, None) == {"a": 1, "ok": True}
    assert parse_python_literal(text, SCHEMA) == {"a": 1, "ok": True}


@pytest.mark.parametrize("wrong", [19, 20, 21, 22, 30])
def test_validation_gives_at_most_20_messages_and_counts_the_rest(wrong: int) -> None:
    from openrouter_registry.schemas.validation import MAX_ERRORS, validate

    assert MAX_ERRORS == 20
    schema = {"type": "object", "properties": {f"k{i:02}": {"type": "integer"} for i in range(30)}}
    messages = validate({f"k{i:02}": "x" for i in range(wrong)}, schema)
    shown = [f"$.k{i:02}: 'x' is not of type 'integer'" for i in range(min(wrong, 20))]
    left = wrong - 20
    tail = [] if left <= 0 else [f"... and {left} more error{'s' if left > 1 else ''}"]
    assert messages == shown + tail


# --- survivors of the fresh sample (80 mutants, seed 2026) -------------------------------------------------
# Judged equivalent, so left without a test:
# - batch/run.py _budget_allows's `return False` (unpriced) -> `return None`: its one caller reads it as
#   `not self._budget_allows(...)`, and None is as false as False.
# - replies/candidates.py _crossed's `cut - _LONGEST_TOKEN + 1` -> `+ 2`: only the 76-character header token
#   can start that early, and it ends in `<|end_header_id|>`, itself a token found crossing the same cut:
#   the cut moves to the same place.
# - replies/structured.py _to_json's `raise _NotJSON(... is not JSON)` for a bytes/complex/non-finite constant
#   deleted: the node falls through to the function's last `raise _NotJSON`, caught by the same handler.


def test_a_prompt_of_exactly_32_mib_is_rendered_and_one_more_character_is_refused() -> None:
    from openrouter_registry.batch.run import MAX_PROMPT_CHARS, render

    assert MAX_PROMPT_CHARS == 32 * 1024 * 1024
    template = "Say: {text}"
    fits = "x" * (MAX_PROMPT_CHARS - len(template))
    assert render(template, {"text": fits}) == "Say: " + fits
    with pytest.raises(ValueError, match=f"^the prompt would pass {MAX_PROMPT_CHARS} characters$"):
        render(template, {"text": fits + "x"})


async def test_a_stopped_run_never_counts_fewer_than_0_rows_not_started(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        run = service.batch([{"id": i, "prompt": "hi"} for i in range(3)], total=3)
        rows = [row async for row in run]
        run.cancel()  # after every row came back: nothing was left to start
    assert len(rows) == 3 and run.summary().stopped == "interrupted" and run.summary().not_started == 0
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        run = service.batch([{"id": i, "prompt": "hi"} for i in range(3)], total=5)
        [row async for row in run]
        run.cancel()
    assert run.summary().not_started == 2


async def test_a_client_the_application_closed_is_replaced_on_the_next_call(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        await service.generate("hi")
        first = service.transport.client
        await first.aclose()
        assert (await service.generate("hi again")).text  # a new client, not "the client has been closed"
        assert service.transport.client is not first and not service.transport.client.is_closed


async def test_a_stream_handle_closes_twice_or_before_it_is_read_without_error(server: FakeOpenRouter) -> None:
    from openrouter_registry.http.transport import Transport

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with Transport(settings) as transport:
        unread = transport.stream_data("/chat/completions", body, headers, model="openai/gpt-4o")
        await unread.aclose()
        assert [event async for event in unread] == []  # closed: nothing more, and nothing was sent
        assert server.requests == []
        read = transport.stream_data("/chat/completions", body, headers, model="openai/gpt-4o")
        async with read:
            first = await read.__anext__()
            assert first
        await read.aclose()  # again: idempotent
        assert [event async for event in read] == []
    assert len(server.requests) == 1


async def test_an_event_of_exactly_max_response_bytes_is_read_and_one_more_is_refused(server: FakeOpenRouter) -> None:
    from openrouter_registry import InvalidResponseError
    from openrouter_registry.http.transport import Transport
    from openrouter_registry.replies.decode import decode_chunk
    from openrouter_registry.testing import Scripted

    def event(text: str) -> str:
        data = {"id": "gen-1", "model": "openai/gpt-4o", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        return "data: " + json.dumps(data)

    def sized(length: int) -> str:
        return event("y" * (length - len(event(""))))

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False,
                                 max_response_bytes=2048, max_attempts=1)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with Transport(settings) as transport:
        server.enqueue(Scripted(sse=[event("a") + "\n\n", sized(2048) + "\n\n", "data: [DONE]\n\n"]))
        texts = [decode_chunk(raw).text async for raw in transport.stream_data("/chat/completions", body, headers,
                                                                               model="openai/gpt-4o")]
        assert texts == ["a", "y" * (2048 - len(event("")))]
        split = sized(2049 - len("data: "))  # one event in two data lines (JSON may break at a space): 2,049 bytes
        cut = split.index(", ") + 1
        server.enqueue(Scripted(sse=[event("a") + "\n\n", split[:cut] + "\ndata: " + split[cut:] + "\n\n",
                                     "data: [DONE]\n\n"]))
        with pytest.raises(InvalidResponseError, match="an event is longer than OPENROUTER_MAX_RESPONSE_BYTES"):
            async for _ in transport.stream_data("/chat/completions", body, headers, model="openai/gpt-4o"):
                pass


async def test_only_the_models_list_of_a_catalog_answer_gives_models(server: FakeOpenRouter, tmp_path: Path) -> None:
    server.catalog_answer = Scripted(json={
        "notes": [{"id": "acme/ghost", "context_length": 1000}],
        "data": [{"id": "acme/real", "context_length": 1000}],
        "more": [{"id": "acme/ghost-2", "context_length": 1000}],
    })
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    catalog = await load_catalog(settings)
    assert catalog is not None and list(catalog.models) == ["acme/real"]


def _with_a_stale_cache_file(server: FakeOpenRouter, tmp_path: Path) -> Settings:
    """Settings for ``server`` whose disk cache holds a 3-day-old catalog of one model, acme/from-the-file."""
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    path = catalog_module.cache_file(settings, "catalog")
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": catalog_module.CACHE_FORMAT, "fetched_at": time.time() - 3 * 86400,
                                "source": "test", "models": [{"id": "acme/from-the-file", "context_length": 1000}]}))
    return settings


async def test_without_network_a_stale_cache_file_is_still_used(server: FakeOpenRouter, tmp_path: Path) -> None:
    settings = _with_a_stale_cache_file(server, tmp_path)
    catalog = await load_catalog(settings, network=False)  # however old, and never a fetch
    assert catalog is not None and list(catalog.models) == ["acme/from-the-file"]
    assert server.catalog_requests == []


async def test_a_modes_file_of_another_format_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from openrouter_registry.models.modes import MODE_MEMORY

    from test_modes_cache import MODEL, attempts, make_service

    MODE_MEMORY.clear()
    try:
        with FakeOpenRouter() as fake:
            fake.refuse_modes[MODEL] = {"json_schema", "json_object"}
            assert await attempts(fake, tmp_path) == 3  # json_schema, json_object, then prompt: learned
            path = catalog_module.cache_file(make_service(fake, tmp_path).settings, "modes")
            assert path is not None
            data = json.loads(path.read_text())
            MODE_MEMORY.clear()
            assert await attempts(fake, tmp_path) == 1  # read back from the file
            path.write_text(json.dumps({**data, "format": data["format"] + 1}))
            MODE_MEMORY.clear()
            with caplog.at_level(logging.WARNING, "openrouter_registry"):
                assert await attempts(fake, tmp_path) == 3
    finally:
        MODE_MEMORY.clear()
    assert any("not one this version wrote" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("text", ["Use <think> tags to reason, then answer.", "  I <think> so: yes"])
async def test_a_think_tag_inside_the_text_is_left_in_the_text(server: FakeOpenRouter, text: str) -> None:
    server.enqueue(Scripted.chat(text))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        result = await service.generate("hi")
    assert result.text == text and result.reasoning is None


def test_single_quoted_strings_after_a_bracket_hide_their_brackets_and_apostrophes_in_prose_do_not() -> None:
    from openrouter_registry.replies.structured import parse_python_literal

    assert list(json_candidates("Result: {'a': 'x}y', 'b': '[z'}")) == ["{'a': 'x}y', 'b': '[z'}"]
    assert parse_python_literal("Result: {'a': 'x}y', 'b': '[z'}", None) == {"a": "x}y", "b": "[z"}
    prose = "It's here: {\"a\": 1} and that's {\"b\": 2}"
    assert list(json_candidates(prose)) == ['{"a": 1}', '{"b": 2}']


def test_a_python_literal_with_escapes_python_and_json_share_is_read() -> None:
    from openrouter_registry.replies.structured import parse_python_literal

    assert parse_python_literal("{'a': 'it\\'s', 'b': 'x\\ny', 'c': 'back\\\\slash'}", None) == {
        "a": "it's", "b": "x\ny", "c": "back\\slash"}
    assert parse_python_literal("{'a': 'zip\\_code'}", None) is None  # Python would keep the backslash


def test_a_schema_s_type_is_found_through_8_references_and_no_more() -> None:
    def chained(links: int) -> dict[str, Any]:
        defs: dict[str, Any] = {f"a{i}": {"$ref": f"#/$defs/a{i + 1}"} for i in range(links - 1)}
        defs[f"a{links - 1}"] = {"type": "string"}
        return {"$ref": "#/$defs/a0", "$defs": defs}

    assert parse_json_reply('"hello"', chained(8)) == "hello"
    assert parse_json_reply('"hello"', chained(9)) is None  # the type is unknown there: objects and arrays only


# --- survivors of the second fresh sample (80 mutants, seed 2027) -----------------------------------------
# Judged equivalent, so left without a test:
# - replies/candidates.py _at_line_start's `i >= 0` -> `i >= 1` in the blank-skipping loop: stopping at index 0
#   leaves a space or tab there, which is not a line break either; the answer is False both ways.


async def test_rows_without_an_id_from_an_iterator_are_each_a_missing_id_not_a_duplicate(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)

    def items() -> Any:
        yield {"prompt": "hi"}
        yield {"prompt": "hi"}
        yield {"id": "a", "prompt": "hi"}

    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        rows = [row async for row in service.batch(items())]
    by_line = {row.line: row for row in rows}
    assert [by_line[n].error.message for n in (1, 2) if by_line[n].error is not None] == [
        f"line {n}: no 'id'; every row needs an 'id' that is a non-empty string or an integer" for n in (1, 2)]
    assert by_line[3].ok


def test_the_warning_for_a_dropped_catalog_entry_shows_80_characters_of_its_id(caplog: pytest.LogCaptureFixture) -> None:
    long = "acme/" + "w" * 295
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert parse_models([{"id": long, "context_length": 1000}]) == {}
    [record] = caplog.records
    assert f"(first: {long[:80]}: id '" in record.getMessage()


@pytest.mark.parametrize(("message", "mode", "refusal"), [
    ("No endpoints found that support tool use", "tools", True),
    ("No endpoints found that support tool use", "json_schema", False),
    ("No endpoints found that support tool use", None, False),
    ("Model acme/x not found", "tools", False),
    ("No endpoints found that can handle the requested parameters.", "json_schema", True),
    ("No endpoints found that can handle the requested parameters.", None, True),
])
def test_a_404_is_a_mode_refusal_only_when_it_says_so_and_tool_use_only_for_the_tools_mode(
    message: str, mode: str | None, refusal: bool
) -> None:
    from openrouter_registry.models.modes import is_mode_refusal

    error = error_for(404, {"error": {"message": message, "code": 404}}, model="acme/x")
    assert is_mode_refusal(error, mode) is refusal


def test_the_blocking_catalog_load_uses_what_it_holds_unless_asked_to_refresh(server: FakeOpenRouter, tmp_path: Path) -> None:
    from openrouter_registry.models.catalog import load_catalog_blocking

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
    first = load_catalog_blocking(settings)
    assert first is not None and load_catalog_blocking(settings) is not None
    assert len(server.catalog_requests) == 1  # the second from memory: no refresh by default
    assert load_catalog_blocking(settings, refresh=True) is not None and len(server.catalog_requests) == 2


def test_a_fence_mark_followed_by_a_fourth_backtick_opens_no_block() -> None:
    assert list(json_candidates('```\n"hello"\n```\n')) == ['"hello"']
    assert list(json_candidates('````\n"hello"\n```\n')) == []  # its header holds a backtick: not a fence


@pytest.mark.parametrize("kind", ["wrapper", "hookwrapper"])
def test_a_plugin_with_a_hook_wrapper_is_refused(kind: str) -> None:
    class Wrapping:
        @hookimpl(**{kind: True})
        def claimed_models(self) -> Any:
            return (yield)

    from openrouter_registry import PluginError

    registry = Registry(environ={})
    with pytest.raises(PluginError, match=r"^plugin 'wrapping': invalid plugin: 'claimed_models': hook wrappers are not supported$"):
        registry.register(Wrapping(), name="wrapping")
    [info] = [p for p in registry.plugins() if p.name == "wrapping"]
    assert (info.status, info.error) == ("failed", "invalid plugin: 'claimed_models': hook wrappers are not supported")


@pytest.mark.parametrize(("raw_id", "shown"), [("call_abc", "call_abc"), ("", "call_2"), (None, "call_2"), (7, "call_2")])
def test_a_tool_call_without_a_usable_id_is_named_by_its_index(raw_id: Any, shown: str) -> None:
    from openrouter_registry.replies.decode import tool_call_of

    call = tool_call_of({"id": raw_id, "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}, 2)
    assert (call.id, call.name, call.arguments) == (shown, "lookup", {"q": 1})


# --- survivors of the check of 2026-12-02 (seed 4001, 40 mutants) ------------------------------------------
# Equivalent, so no test: candidates.py `line_end < 0` -> `<= 0` (``text.find("\n", mark + 3)`` is never 0);
# settings.py's url check deleting its last `return None` (the implicit return is None too; `make mutate`
# no longer draws such deletions). A catalog listing that is not a list: tests/test_catalog.py now passes
# None and 7 too (a dict had iterated harmlessly).


def test_the_summary_of_a_batch_with_no_time_elapsed_says_zero_rows_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    from openrouter_registry.batch import run as run_module

    service = OpenRouterService(Settings.from_env({}, api_key="sk-or-v1-test", catalog=False))
    batch = service.batch([{"id": "1", "prompt": "p"}])
    monkeypatch.setattr(run_module.time, "monotonic", lambda: 100.0)  # not started: start and end are "now"
    summary = batch.summary()
    assert (summary.rows, summary.wall_s, summary.rows_per_s) == (0, 0.0, 0.0)


@pytest.mark.parametrize("length", [3999, 4000, 4001, 9000])
def test_a_reask_sends_back_4000_characters_at_most(length: int) -> None:
    from openrouter_registry.engine.calls import REASK_EXCERPT_CHARS, reask_excerpt

    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    sent = reask_excerpt(text)
    assert REASK_EXCERPT_CHARS == 4000
    if length <= 4000:
        assert sent == text
    else:
        assert sent == f"{text[:3000]}\n[... {length - 4000} characters left out ...]\n{text[-1000:]}"


@pytest.mark.parametrize("enabled", [True, False])
def test_parsing_a_catalog_leaves_the_garbage_collector_as_the_application_had_it(enabled: bool) -> None:
    import gc

    body = json.dumps({"data": [{"id": "acme/a-1", "context_length": 8000}]}).encode()
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        catalog = catalog_module._parse_body(body, "https://openrouter.ai/api/v1/models")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert "acme/a-1" in catalog.models


def test_a_bare_dict_field_is_any_json_object() -> None:
    import dataclasses

    from openrouter_registry.schemas.schema import to_json_schema

    @dataclasses.dataclass
    class Tagged:
        tags: dict  # type: ignore[type-arg]  # bare, as users write it

    schema = to_json_schema(Tagged)
    assert schema is not None and schema["properties"]["tags"] == {"type": "object"}


def test_copies_of_settings_keep_the_key() -> None:
    import copy

    settings = Settings.from_env({}, api_key="sk-or-v1-test")
    for copied in (copy.copy(settings), copy.deepcopy(settings)):
        assert copied.api_key is settings.api_key and copied.require_api_key() == "sk-or-v1-test"


# --- survivors of the check of 2026-12-02 (seed 4002, 40 mutants) ------------------------------------------
# Equivalent, so no test: settings.py `_is_loopback` returning None for False (its callers only test its
# truth); schema.py `_jsonable`'s enum and record branches returning None (cattrs has already turned enums
# and records into JSON data by then: reached only by a direct call).


async def test_a_row_refused_before_any_request_took_no_time_and_no_attempt() -> None:
    settings = Settings.from_env({}, api_key="sk-or-v1-test", catalog=False, base_url="http://127.0.0.1:9/api/v1")
    async with OpenRouterService(settings) as service:
        rows = [row async for row in service.batch([{"id": "1"}])]
    assert [(r.ok, r.error.type if r.error else None, r.latency_s, r.attempts) for r in rows] == [(False, "InputError", 0.0, 0)]


def test_the_retry_jitter_comes_from_the_rng_given() -> None:
    import random

    from openrouter_registry.http.transport import retry_delay

    delays = [retry_delay(n, base_delay=0.5, max_delay=8.0, rng=random.Random(7)) for n in range(6)]
    expected = [min(0.5 * 2.0**n, 8.0) * random.Random(7).uniform(0.75, 1.0) for n in range(6)]
    assert delays == expected


def test_the_default_backoff_is_capped_at_8_seconds() -> None:
    from openrouter_registry.http.transport import Transport

    transport = Transport(Settings.from_env({}, api_key="sk-or-v1-test", catalog=False))
    assert (transport.base_delay, transport.max_delay) == (0.5, 8.0)


@pytest.mark.parametrize("status", [299, 300, 399, 400])
def test_a_redirect_status_says_where_it_pointed(status: int) -> None:
    error = error_for(status, None, model="acme/a-1", headers={"Location": "https://elsewhere.example/api/v1"})
    redirected = "redirected to https://elsewhere.example/api/v1" in str(error)
    assert redirected is (300 <= status < 400), str(error)


def test_the_clean_json_fast_path_takes_only_text() -> None:
    from openrouter_registry.replies.structured import parse_clean_json

    assert parse_clean_json('{"a": 1}') == {"a": 1}
    assert parse_clean_json(b'{"a": 1}') is None  # type: ignore[arg-type]  # bytes: passed on, not decoded


# --- survivors of the exploratory check of 2026-12-03 (seed 5001, 120 mutants: 107 killed) -----------------
# Equivalent, so no test: files.py `_has_lone_surrogate` returning None for False after a failed dump (its one
# caller tests its truth); decode.py `tool_call_of`'s default index 0 -> 1 (its one caller passes the index);
# validation.py `is_valid` re-raising the jsonschema error instead of the ConfigurationError for an unresolvable
# $ref (its one caller, the candidate scan's `_validates`, takes any exception as "does not match");
# files.py `_row_line`'s second dump with allow_nan=True (the content, the only field that can hold NaN, is gone).


def _nested(levels: int, leaf: Any) -> Any:
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def test_error_metadata_keeps_8_levels_of_lists_and_cuts_the_ninth() -> None:
    def metadata(value: Any) -> Any:
        return error_for(400, {"error": {"message": "x", "code": 400, "metadata": value}}, model=None).metadata

    assert metadata({"raw": _nested(7, "deep")}) == {"raw": _nested(7, "deep")}  # the leaf 8 levels under the root
    assert metadata({"raw": _nested(8, "deep")}) == {"raw": _nested(8, "…")}


def test_the_error_for_a_bad_model_id_quotes_60_characters_of_it(caplog: pytest.LogCaptureFixture) -> None:
    bad = "acme/" + "w" * 100 + " x"  # a space: not a model id
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert parse_models([{"id": bad, "context_length": 1000}]) == {}
    [record] = caplog.records
    assert f"id {repr(bad)[:60]} is not a model id" in record.getMessage()


@pytest.mark.parametrize("name", ["My\nX-Evil: 1", "My\rX-Evil: 1", "My\r\nX-Evil: 1"])
def test_an_app_name_with_either_line_break_is_refused_as_one(name: str) -> None:
    from openrouter_registry import SettingsError

    with pytest.raises(SettingsError, match="a value with a line break"):
        Settings.from_env({}, site_name=name)


def test_a_row_whose_content_holds_nan_is_written_as_a_failed_row(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with RowWriter(out) as writer:
        writer.write(BatchRow(id="café", ok=True, content={"x": float("nan")}))

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    raw = out.read_bytes()
    assert raw.startswith('{"id":"café","ok":false,'.encode()) and raw.endswith(b"\n")  # UTF-8, not \u escapes
    line = json.loads(raw, parse_constant=refuse)  # strict JSON
    assert (line["id"], line["ok"], "content" in line) == ("café", False, False)
    assert line["error"] == {"type": "StructuredOutputError", "message": "the content holds NaN or Infinity, not JSON"}


async def test_a_reply_the_core_cannot_parse_within_the_deadline_is_a_structured_output_error(
    server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from openrouter_registry import StructuredOutputError
    from openrouter_registry.engine import calls
    from openrouter_registry.plugins import registry as registry_module
    from openrouter_registry.testing.hostile_replies import HOSTILE_REPLIES

    monkeypatch.setattr(registry_module, "PARSE_DEADLINE", 0.05)
    monkeypatch.setattr(calls, "PARSE_DEADLINE", 0.05)
    server.enqueue(Scripted.chat(HOSTILE_REPLIES["python-literals"](1_000_000), model="acme/x-1"))  # ~0.3 s to parse
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    registry = Registry(environ={})
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    async with OpenRouterService(settings, registry=registry) as service:
        with pytest.raises(StructuredOutputError, match=r"^the reply could not be parsed within 0.05s") as caught:
            await asyncio.wait_for(service.generate("a", model="acme/x-1", schema=schema, max_attempts=1), 10)
    assert caught.value.attempts == 1 and caught.value.cost is not None and len(server.requests) == 1
    assert {p.name: p.status for p in registry.plugins()}["openrouter_registry"] == "loaded"  # the core is never degraded


def _tool_chunk(calls: list[dict[str, Any]], finish: str | None = None) -> str:
    data = {"id": "gen-s", "model": "acme/x-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": calls}, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n"


async def test_a_streamed_tool_call_keeps_the_id_it_started_with(server: FakeOpenRouter) -> None:
    """The `ToolCallStarted` event announced the first id: a later fragment's id does not replace it."""
    server.enqueue(Scripted(sse=[
        _tool_chunk([{"index": 0, "id": "call_first", "type": "function", "function": {"name": "add", "arguments": '{"a": '}}]),
        _tool_chunk([{"index": 0, "id": "call_later", "function": {"arguments": "1}"}}]),
        _tool_chunk([], "tool_calls"),
        "data: [DONE]\n\n",
    ]))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        stream = service.stream("add", model="acme/x-1")
        events = [event async for event in stream.events()]
    from openrouter_registry import ToolCallStarted

    assert [e.id for e in events if isinstance(e, ToolCallStarted)] == ["call_first"]
    assert [(c.id, c.arguments) for c in stream.tool_calls] == [("call_first", {"a": 1})]


def _proper_noun(instance: Any, attribute: Any, value: str) -> None:
    raise TypeError("the city must be a proper noun")


def _silent(instance: Any, attribute: Any, value: str) -> None:
    raise ValueError()


@pytest.mark.parametrize(("validator", "expected"), [
    (_proper_noun, "invalid type (the city must be a proper noun) @ $"),  # cattrs already quotes it: not twice
    (_silent, "invalid value @ $"),  # no message: nothing added
])
async def test_a_validator_s_message_is_in_the_error_once_and_only_when_it_has_one(
    server: FakeOpenRouter, validator: Any, expected: str
) -> None:
    import attrs

    from openrouter_registry import StructuredOutputError

    @attrs.define
    class City:
        city: str = attrs.field(validator=validator)

    server.enqueue(Scripted.chat({"city": "paris"}, model="acme/x-1"))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, max_reasks=0)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(StructuredOutputError) as caught:
            await service.generate("Extract: paris.", schema=City, model="acme/x-1")
    assert caught.value.errors == [expected]


# --- survivors of the fresh check of 2026-12-03 (seed 5003, 80 mutants: 68 killed, 6 equivalent) -----------
# Equivalent, so no test:
# - calls.py `_unthink`'s `len(held) > keep` -> `>=` for the held tail (at 7 characters held[-7:] is held);
# - candidates.py `without_reasoning`'s count=1 -> 2 (the pattern is anchored at ^ without MULTILINE: one match);
# - candidates.py `_after_structural`'s `i >= 0` -> `>= 1` (it is only asked inside an open bracket, so a
#   non-space character always comes before the quote; 200,000 random texts gave the same candidates);
# - decode.py `is_transient` returning None for False on a CertificateError (its caller tests its truth);
# - modes.py `isinstance(error, BadRequestError) and error.status == 400` -> `or` (every error of status 400
#   is a BadRequestError; the one without, the pre-flight ContextLengthError, names no response_format).


def test_a_batch_run_made_directly_runs_16_rows_at_a_time_by_default(server: FakeOpenRouter) -> None:
    from openrouter_registry import BatchRun

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    run = BatchRun(OpenRouterService(settings, registry=Registry(environ={})), [{"prompt": "x"}])
    assert repr(run) == "BatchRun(rows=0, in_flight=0, limit=16)"


async def test_rows_in_flight_count_at_their_estimate_when_it_is_above_the_observed_cost(server: FakeOpenRouter) -> None:
    """Replies bill a thousandth of the estimate: the budget still holds 2 rows in flight at their estimates."""
    prompt = "Where is landmark 1? " + "and more " * 2_000
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
    server.latency = 0.05
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        estimate = await service.estimate_cost(prompt, max_tokens=60)
        assert estimate is not None
        cheap = Scripted.chat("hi", usage={"prompt_tokens": 5, "completion_tokens": 2, "cost": float(estimate.high / 1000)})
        server.enqueue(*[cheap] * 8)
        run = service.batch([{"id": i, "prompt": prompt} for i in range(8)], concurrency=8,
                            max_cost=estimate.high * Decimal("2.5"), max_tokens=60)
        in_flight = []
        async for _ in run:
            in_flight.append(run.in_flight)
    assert len(in_flight) == 8 and run.summary().stopped is None
    # 2 in flight, never more: one is still out when the other comes back (a row not yet billed counts at its
    # estimate, not at some floor: before any cost is known the highest observed is 0)
    assert max(in_flight) == 1


@pytest.mark.parametrize("message", [{"role": "assistant"}, {"role": "user", "tool_calls": [{"id": "c"}]}])
async def test_a_message_without_content_is_refused_unless_it_is_an_assistant_s_tool_calls(
    server: FakeOpenRouter, message: dict[str, Any]
) -> None:
    from openrouter_registry import ConfigurationError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(ConfigurationError, match=r"^messages\[1\] has no 'content'"):
            await service.generate(messages=[{"role": "user", "content": "hi"}, message])
    assert server.requests == []


async def test_a_streamed_tool_without_parameters_whose_arguments_trail_a_space_gets_an_empty_object(
    server: FakeOpenRouter,
) -> None:
    server.enqueue(Scripted(sse=[
        _tool_chunk([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]),
        _tool_chunk([{"index": 0, "function": {"arguments": "{}"}}]),
        _tool_chunk([{"index": 0, "function": {"arguments": " "}}]),
        _tool_chunk([], "tool_calls"),
        "data: [DONE]\n\n",
    ]))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        stream = service.stream("now?", model="acme/x-1")
        await stream.collect()
    assert [(c.arguments, c.arguments_text) for c in stream.tool_calls] == [({}, "{}")]


def test_a_catalog_entry_whose_context_length_is_a_bool_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert parse_models([{"id": "acme/bool", "context_length": True}]) == {}
    [record] = caplog.records
    assert "a token count must be an integer, got a bool" in record.getMessage()


@pytest.mark.parametrize("value", [123, b"https://app.example", ["https://app.example"]])
def test_an_app_url_that_is_not_text_is_refused(value: Any) -> None:
    from openrouter_registry import SettingsError

    for build in (lambda: Settings.from_env({}, http_referer=value), lambda: Settings(http_referer=value)):
        with pytest.raises(SettingsError, match=r"^OPENROUTER_HTTP_REFERER must be a URL, got "):
            build()


#: A value of the wrong type for every setting, given to ``Settings(...)`` directly (no structuring first)
WRONG_TYPES = {
    "api_key": 5, "model": 5, "max_tokens": "x", "http_referer": 123, "site_name": 123, "base_url": 5, "timeout": "x",
    "connect_timeout": True, "max_attempts": 2.5, "retry_after_max": "x", "max_reasks": 1.5, "embedder_model": 5,
    "embedder_dimensions": "256", "transport": 5, "max_connections": "5", "stream_idle_timeout": "x",
    "stream_timeout": "x", "max_response_bytes": 2048.0, "cache_dir": 5, "catalog_ttl": "x", "catalog": "no",
    "prompt_cache": 5, "prompt_cache_ttl": 5, "session_id": 5,
}


def test_the_wrong_types_cover_every_setting() -> None:
    import attrs

    assert sorted(WRONG_TYPES) == sorted(field.name for field in attrs.fields(Settings))


@pytest.mark.parametrize(("name", "value"), sorted(WRONG_TYPES.items()))
def test_settings_built_directly_refuse_a_value_of_the_wrong_type_naming_its_variable(name: str, value: Any) -> None:
    import attrs

    from openrouter_registry import SettingsError

    env = attrs.fields_dict(Settings)[name].metadata["env"]
    with pytest.raises(SettingsError, match=rf"^{env} must be ") as caught:
        Settings(**{name: value})
    assert caught.value.variable == env


async def test_a_schema_whose_reference_jsonschema_cannot_follow_is_refused_before_any_request(
    server: FakeOpenRouter,
) -> None:
    """A relative root $id ("a/b/") leaves the nested "item.json" resource unreachable for jsonschema too."""
    from openrouter_registry import ConfigurationError

    schema = {"$id": "a/b/", "type": "object", "properties": {"item": {"$ref": "item.json"}},
              "$defs": {"item": {"$id": "item.json", "type": "string"}}}
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(ConfigurationError, match=r"the \$ref 'item.json' at \$.properties.item in the schema cannot be resolved"):
            await service.generate("an item", schema=schema, model="acme/x-1")
    assert server.requests == []


# Survivors of the sample of seed 6001 (2026-12-03, at cc7623c: 38 of 40 killed).


async def test_calls_that_waited_while_a_catalog_fetch_failed_get_the_stale_cache_file(
    server: FakeOpenRouter, tmp_path: Path
) -> None:
    """OpenRouter's /models is down and the cached catalog is old: the first call fetches and fails, and
    the calls that queued behind its lock get the cached catalog, not nothing, and send no fetch of their
    own (catalog.py `_load`'s `return held` after a recent failure)."""
    settings = _with_a_stale_cache_file(server, tmp_path)
    server.catalog_answer = Scripted(status=500, json={"error": {"message": "down", "code": 500}}, delay=0.3)
    import asyncio

    catalogs = await asyncio.gather(*(load_catalog(settings) for _ in range(5)))
    assert [None if c is None else list(c.models) for c in catalogs] == [["acme/from-the-file"]] * 5
    fetches = len(server.catalog_requests)
    assert fetches >= 1
    assert await load_catalog(settings) is catalogs[0] and len(server.catalog_requests) == fetches


async def test_a_batch_closed_early_leaves_no_row_running(server: FakeOpenRouter) -> None:
    """Closing a batch's iterator after its first row cancels the rows in flight and waits for them: when
    ``aclose()`` returns, no task of the run is left pending (run.py's finally gathers the flights)."""
    import asyncio

    server.enqueue(Scripted.chat("fast"), *(Scripted.chat("slow", delay=2) for _ in range(3)))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, max_attempts=1)
    rows = [{"id": i, "prompt": f"Where is landmark {i}?"} for i in range(8)]
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        before = asyncio.all_tasks()
        run = service.batch(rows, concurrency=4, model="acme/x-1")
        iterator = aiter(run)
        first = await anext(iterator)
        started = asyncio.all_tasks() - before
        await iterator.aclose()  # type: ignore[attr-defined]
        assert first.ok and first.content == "fast"
        assert started and [t for t in started if not t.done()] == []
        assert run.in_flight == 0 and run.summary().rows == 1


# Survivors of the sample of seed 6002 (2026-12-03, at cc7623c: 66 of 80 killed). Judged equivalent:
# - batch/run.py `_plain_fields`' lru_cache(maxsize=64) -> 65: one more template cached, the same fields;
# - models/catalog.py `fetched_at > now + CLOCK_SKEW` -> `>=`: only a file stamped to the exact float of the
#   read's clock differs (the 5-minute boundary is pinned on both sides in test_edges_bounds.py);
# - models/catalog.py `settled()`'s `return True` for a fresh catalog -> False: `load_catalog` then takes its
#   lock and returns the same fresh catalog from memory (a coroutine more, no file read, the same value);
# - plugins/registry.py `_hook_order`'s rank 2 for trylast -> 3: still after every other rank, the same order;
# - replies/decode.py `any(key in delta ...)` -> `not in`: `_delta_extras` then also runs for a plain
#   role-and-content delta and finds nothing ({}), the same chunk;
# - replies/structured.py `_exact`'s `return` after a whole-text decode deleted: the next step raw-decodes the
#   same text to the same value (a duplicate candidate, validated the same way).


@pytest.mark.parametrize(("ids", "more"), [(5, ""), (6, " (and 1 more)")])
def test_a_duplicate_id_refusal_names_five_ids_and_counts_the_rest(tmp_path: Path, ids: int, more: str) -> None:
    from openrouter_registry import ConfigurationError
    from openrouter_registry.batch import files

    path = tmp_path / "in.jsonl"
    path.write_text("".join(f'{{"id": "r{i}"}}\n{{"id": "r{i}"}}\n' for i in range(ids)))
    with pytest.raises(ConfigurationError) as raised:
        files.scan_input(path, set())
    shown = "; ".join(f'"r{i}" on lines {2 * i + 1}, {2 * i + 2}' for i in range(5))
    assert str(raised.value) == f"duplicate ids in {path}: {shown}{more}; every row needs its own id. Nothing was sent"


def test_batch_latencies_above_the_top_bucket_are_reported_as_its_value() -> None:
    """1,701 buckets 1% wide from 1 ms: the top one holds everything from about 6.2 hours up, so memory
    stays bounded however long a row took; below it a quantile is within 1%."""
    from openrouter_registry.batch.run import _Latencies

    top = 0.001 * 1.01 ** 1699.5
    assert 6.1 * 3600 < top < 6.2 * 3600
    for seconds in (1e5, 1e9):
        latencies = _Latencies()
        latencies.add(seconds)
        assert latencies.quantile(0.5) == pytest.approx(top, rel=1e-12) and list(latencies.counts) == [1700]
    latencies = _Latencies()
    latencies.add(20_000.0)
    assert latencies.quantile(0.5) == pytest.approx(20_000.0, rel=0.01)


async def test_a_call_that_used_no_cache_saved_exactly_nothing(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        result = await service.generate("Where is the Louvre?", model="acme/x-1")
    assert result.usage.cached_tokens == 0 and result.usage.cache_write_tokens == 0
    assert result.cache_saving == Decimal(0) and str(result.cache_saving) == "0"


def test_the_blocking_client_returns_the_catalog_it_loaded(server: FakeOpenRouter, tmp_path: Path) -> None:
    from openrouter_registry import NLPServices

    server.catalog_answer = Scripted(json={"data": [{"id": "acme/listed", "context_length": 4096}]})
    with NLPServices.openrouter_sync(base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path)) as client:
        catalog = client.load_catalog(refresh=True)
    assert catalog is not None and list(catalog.models) == ["acme/listed"]
    assert catalog.models["acme/listed"].context_length == 4096 and len(server.catalog_requests) == 1


def test_an_apostrophe_inside_a_word_opens_no_string_in_the_candidate_scan() -> None:
    """``it's`` in prose inside a bracket is not a quoted string: the bracket's closer after ``'x]'``
    still ends the block (only a quote after ``{ [ , : (`` or at the start opens a string)."""
    assert list(json_candidates("[it's, 'x]', 1]")) == ["[it's, 'x]', 1]"]


def test_a_broken_object_that_json_repair_turns_into_an_array_is_not_an_answer() -> None:
    """json_repair reads this broken ``{...}`` block as an array of two values; an array that is not in
    the text is no answer for an array schema (a re-ask instead): a ``{`` block repairs only to an object."""
    block = '{"x": 2["x": 2"b"{}[1}'
    assert parse_json_reply(block, {"type": "array"}) is None
    assert parse_json_reply(f"Here it is: {block}", {"type": "array"}) is None


def test_json_broken_by_a_control_token_is_read_from_the_text_without_it() -> None:
    text = '<|im_start|>{"a": [1,<|im_sep|> 2]}'
    assert parse_json_reply(text, {"type": "object"}) == {"a": [1, 2]}


# Survivors of the sample of seed 6003, part 1 (batch, engine, plugins; 2026-12-03, after the tests above:
# 64 of 80 killed). Judged equivalent:
# - batch/files.py OutputLock.__enter__'s `return self` -> None: the library enters the lock with a plain
#   `with OutputLock(path):` (cli/batch.py) and never reads what it gives; OutputLock is not exported;
# - plugins/registry.py `_valid_generator`'s `return False` -> None: its only caller filters a list by its truth.


async def test_a_row_id_of_another_type_is_named_in_its_refusal(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    rows = [{"id": 1.5, "prompt": "x"}, {"id": {"a": 1}, "prompt": "y"}, {"prompt": "z"}]
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        done = [row async for row in service.batch(rows, model="acme/x-1")]
    rule = "every row needs an 'id' that is a non-empty string or an integer"
    assert [(row.ok, row.attempts, row.error and row.error.message) for row in done] == [
        (False, 0, f"line 1: 'id' 1.5; {rule}"),
        (False, 0, f"line 2: 'id' {{'a': 1}}; {rule}"),
        (False, 0, f"line 3: no 'id'; {rule}"),
    ]
    assert server.requests == []


async def test_rows_refused_before_any_request_are_not_rows_without_cost(server: FakeOpenRouter) -> None:
    """``rows_without_cost`` counts rows that were sent and came back unpriced, not rows never sent."""
    server.enqueue(Scripted.chat("ok", usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    rows = [{"id": "bad", "prompt": 7}, {"id": "sent", "prompt": "Where is the Louvre?"}]
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        run = service.batch(rows, model="acme/x-1")
        done = {row.id: row async for row in run}
    assert done["bad"].attempts == 0 and done["sent"].attempts == 1 and done["sent"].cost is None
    summary = run.summary()
    assert summary.rows == 2 and summary.rows_without_cost == 1 and summary.requests == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"session_id": ""}, "session_id must be a non-empty string of at most 256 characters, got ''"),
        ({"provider": 5}, "provider must be a Provider(...) or a dict of its fields, got int"),
        ({"models": "x"}, "models must be a non-empty list of model ids (the fallbacks), got 'x'"),
    ],
)
async def test_estimate_cost_refuses_bad_routing_options_as_generate_does(
    server: FakeOpenRouter, option: dict[str, Any], message: str
) -> None:
    from openrouter_registry import ConfigurationError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        for call in (service.estimate_cost, service.generate):
            with pytest.raises(ConfigurationError) as raised:
                await call("hi", model="acme/x-1", **option)
            assert str(raised.value) == message
    assert server.requests == []


async def test_a_library_error_from_a_generator_s_facts_reaches_the_caller(server: FakeOpenRouter) -> None:
    """A generator's ``facts()`` that raises one of the library's own errors (a ConfigurationError
    telling the user what to set) is that call's answer, not a plugin failure to step past."""
    from openrouter_registry import ConfigurationError
    from openrouter_registry.plugin import Generator

    from test_generator_containment import plugin_for

    class Strict(Generator):
        def facts(self) -> Any:
            raise ConfigurationError("the acme plugin needs ACME_REGION; set it and call again")

    registry = Registry(environ={})
    registry.register(plugin_for(Strict, exact="acme/strict-1"), name="acme")
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=registry) as service:
        with pytest.raises(ConfigurationError, match="^the acme plugin needs ACME_REGION; set it and call again$"):
            await service.generate("a city", schema={"type": "object"}, model="acme/strict-1")
    assert server.requests == []


@pytest.mark.parametrize("model", ["not a model", 7])
async def test_embed_refuses_a_model_that_is_not_a_model_id_before_any_request(server: FakeOpenRouter, model: Any) -> None:
    from openrouter_registry import ConfigurationError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(ConfigurationError) as raised:
            await service.embed(["Paris"], model=model)
    assert str(raised.value) == f"model must be a model id such as 'openai/text-embedding-3-large', got {model!r}"
    assert server.requests == []


@pytest.mark.parametrize(("length", "dots"), [(200, ""), (201, "...")])
def test_a_plugin_failure_names_200_characters_of_the_model(length: int, dots: str) -> None:
    import types

    def offer(model: str, settings: Settings) -> Any:
        raise RuntimeError("no table")

    model = "acme/" + "m" * (length - 5)
    registry = Registry(environ={})
    registry.register(types.SimpleNamespace(resolve_generator=hookimpl(offer)), name="broken")
    assert registry.resolve(model, Settings.from_env({})).plugin == "openrouter_registry"
    [info] = [p for p in registry.plugins() if p.name == "broken"]
    assert info.error is not None and info.error.endswith(f"raised RuntimeError: no table for model {model[:200]!r}{dots}")


# Survivors of the sample of seed 6003, part 2 (replies, schemas, settings). Judged equivalent:
# - settings.py `has_space_or_control`'s `ord(c) < 0x20` -> `ord(c) <= 32`: the one character it adds, the
#   space (0x20), is already counted by `c.isspace()` in the same `any`: the same answer for every text.


@pytest.mark.parametrize(("depth", "found"), [(500, True), (501, False)])
def test_the_candidate_scan_takes_brackets_nested_500_deep_and_stops_at_501(depth: int, found: bool) -> None:
    """MAX_SCAN_DEPTH: an opener 501 levels deep ends the scan, and a block that never closed in it is
    no candidate."""
    text = "[" * depth + "]" * depth
    assert list(json_candidates(text)) == ([text] if found else [])


def test_a_float_in_a_repaired_object_keeps_its_value() -> None:
    """A missing comma: only json_repair reads this block; its float comes back as the number written."""
    assert parse_json_reply('{"price": 1.5 "qty": 2}', None) == {"price": 1.5, "qty": 2}


def test_a_repaired_value_is_bounded_by_its_own_nesting_not_only_by_the_brackets_before_repair() -> None:
    """json_repair pairs quotes its own way: here it reads ``x"`` as an unquoted ``x``, so the 250
    brackets that the pre-check (which pairs ``", "`` ... ``,"`` as one string) never counts nest 250
    lists deep in the value. Such a value is kept while it nests at most MAX_DEPTH (500) levels, lists
    counted one level each like objects (json_repair itself gives up with a RecursionError, caught, long
    before 500, so that side of the bound cannot be reached through a reply)."""
    n = 250
    value = parse_json_reply('{"a": x", "b": ' + "[" * n + "1" + "]" * n + ' ,"c": "y"}', None)
    assert value is not None and sorted(value) == ["a", "b", "c"] and (value["a"], value["c"]) == ("x", "y")
    assert value["b"] == json.loads("[" * n + "1" + "]" * n)


def test_a_block_json_reads_is_not_read_again_as_a_python_literal() -> None:
    """JSON reads this whole reply as its first object (followed by chatter); Python would read it as a
    tuple of both objects, an array that is not in the text: for an array schema there is no answer."""
    from openrouter_registry.replies.structured import parse_python_literal

    text = '{"a": 1}, {"b": 2}'
    assert parse_json_reply(text, None) == {"a": 1}
    assert parse_json_reply(text, {"type": "array"}) is None
    assert parse_python_literal(text, {"type": "array"}) is None


def test_the_repair_reads_a_reasoning_draft_without_its_control_tokens() -> None:
    """Three views (the raw reply, the reply without control tokens, what follows an unopened
    ``</think>``): the repair pass reads the last two only, so the token inside the draft's string is
    never taken as content (a value that is not valid comes back as the fallback, as written less the token)."""
    schema = {"type": "object", "required": ["reply"], "properties": {"reply": {"minLength": 1}}}
    text = 'Draft: {"reply": "<|eot_id|>" "n": 1}</think>No JSON here.'
    assert parse_json_reply(text, schema) == {"reply": "", "n": 1}


@pytest.mark.parametrize(("depth", "valid"), [(100, True), (101, False)])
def test_a_value_nested_100_deep_is_validated_and_101_is_not(depth: int, valid: bool) -> None:
    """Schema validation's bound (MAX_DEPTH of schemas/validation.py): 100 levels are validated, 101 never
    validate; parse_embedded_json returns only a value that validates."""
    from openrouter_registry.replies.structured import parse_embedded_json

    text = "[" * depth + "]" * depth
    assert parse_embedded_json(text, {"type": "array"}) == (json.loads(text) if valid else None)


def test_a_value_too_deep_for_the_schema_s_recursion_never_counts_as_valid() -> None:
    """Ten ``allOf`` around a ``$ref`` per level: jsonschema runs out of stack on 99 levels (within the
    100-level bound) and the value is taken as not valid, with the reason validate gives."""
    from openrouter_registry.replies.structured import parse_embedded_json
    from openrouter_registry.schemas.validation import validate

    inner: dict[str, Any] = {"$ref": "#"}
    for _ in range(10):
        inner = {"allOf": [inner]}
    schema = {"type": "array", "items": inner}
    text = "[" * 99 + '"x"' + "]" * 99
    assert validate(json.loads(text), schema) == ["$: the reply nests too deeply to validate"]
    assert parse_embedded_json(text, schema) is None
    assert parse_json_reply(text, schema) == json.loads(text)  # not valid: the fallback of the right type


# Survivors of the sample of seed 6004 (2026-12-03, at b0e78ca).


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_the_batch_output_file_is_created_read_write_for_its_owner_and_never_executable(
    tmp_path: Path, umask: int, mode: int
) -> None:
    """OUT is made with mode 0o644 less the umask: the owner reads and writes, the umask decides who else
    reads, and nobody may execute it."""
    out = tmp_path / "out.jsonl"
    old = os.umask(umask)
    try:
        with RowWriter(out) as writer:
            writer.write(BatchRow(id="a", ok=True, content={"x": 1}))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("model", ["", 7])
async def test_the_error_event_of_a_call_without_a_usable_model_names_the_default_model(
    server: FakeOpenRouter, model: Any
) -> None:
    from openrouter_registry import ConfigurationError

    seen: list[Any] = []
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={}), on_event=seen.append) as service:
        with pytest.raises(ConfigurationError, match="model must be a model id such as 'openai/gpt-4o'"):
            await service.generate("hi", model=model)
    assert [(event.kind, event.model) for event in seen] == [("error", settings.model)]
    assert server.requests == []


@pytest.mark.parametrize("call", ["generate", "stream"])
async def test_parallel_tool_calls_without_tools_is_refused_before_any_request(server: FakeOpenRouter, call: str) -> None:
    from openrouter_registry import ConfigurationError

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(ConfigurationError, match="^parallel_tool_calls was given without tools="):
            answer = await getattr(service, call)("hi", model="acme/x-1", parallel_tool_calls=False)
            if call == "stream":
                async for _ in answer:
                    pass
    assert server.requests == []


# More of seed 6004. Judged equivalent:
# - models/catalog.py `fetched_at = 0.0` -> 1.0 for a cache file written in the future: 1970 either way, so the
#   catalog is as stale (and refetched) in both; the warning is the same;
# - plugins/registry.py `_Record.failures` default 0 -> 1: `register` sets every record's failures to 0 before
#   the plugin is listed or called (registry.py's reset of failures, streaks, logged and bad_headers).
# - models/catalog.py `_fetch`'s `verify = False if url.startswith("http://")` -> True: a plain-http URL has no
#   TLS, so httpx never reads verify there (an https URL takes the shared CA context either way).


def test_a_free_model_s_price_written_with_zeros_after_the_point_is_a_plain_zero() -> None:
    """"0.0000000" is Decimal(0), not Decimal("0E-7"): a free model's costs and its to_dict() say "0"."""
    models = parse_models([{"id": "acme/free-1", "context_length": 1000,
                            "pricing": {"prompt": "0.0000000", "completion": "0.00"}}])
    pricing = models["acme/free-1"].pricing
    assert pricing is not None
    assert str(pricing.prompt) == "0" and str(pricing.completion) == "0"
    assert pricing.to_dict()["prompt"] == "0" and pricing.to_dict()["completion"] == "0"


async def test_a_catalog_fetch_follows_no_redirect(server: FakeOpenRouter, tmp_path: Path) -> None:
    """A /models answered with a redirect is a failed fetch (HTTP 302, a warning), never a request to the
    redirect's target (catalog.py's follow_redirects=False, found beside a seed-6004 survivor)."""
    with FakeOpenRouter() as elsewhere:
        elsewhere.catalog_answer = Scripted(json={"data": [{"id": "acme/elsewhere", "context_length": 1000}]})
        server.catalog_answer = Scripted(status=302, headers={"Location": elsewhere.base_url + "/models"})
        settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(tmp_path))
        assert await load_catalog(settings) is None
        assert elsewhere.catalog_requests == [] and len(server.catalog_requests) == 1


async def test_a_row_held_by_the_budget_is_published_to_the_job_at_the_costliest_row_once_it_launches(
    server: FakeOpenRouter, tmp_path: Path
) -> None:
    """The first row costs three times its catalog estimate; the second, held until then, launches with its
    bound raised to that cost: another worker of the job sees both counted at the costliest row while the
    second is in flight, never the second at its (too low) estimate. (The run's own budget check takes
    max(bound, costliest row) itself, so without a shared ledger the run behaves the same either way.)"""
    from openrouter_registry import JobLedger

    prompt = "Where is landmark 1?"
    job = tmp_path / "job"
    other = JobLedger(job, worker="other", stale_after=0)
    seen: list[Decimal] = []

    def on_event(event: Any) -> None:
        if event.kind == "request":
            seen.append(other.others())  # what the other worker reads as this row's request goes out

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
    async with OpenRouterService(settings, registry=Registry(environ={}), on_event=on_event) as service:
        estimate = await service.estimate_cost(prompt, max_tokens=60)
        assert estimate is not None and estimate.high > 0
        costly = Scripted.chat("Paris", usage={"prompt_tokens": 5, "completion_tokens": 2, "cost": float(estimate.high * 3)})
        cheap = Scripted.chat("Rome", usage={"prompt_tokens": 5, "completion_tokens": 2, "cost": float(estimate.high / 10)})
        server.enqueue(costly, cheap)
        run = service.batch([{"id": i, "prompt": prompt} for i in range(2)], concurrency=2, max_tokens=60,
                            max_cost=estimate.high * 10, ledger=JobLedger(job, worker="me", stale_after=0))
        rows = [row async for row in run]
    assert [(row.id, row.ok) for row in rows] == [(0, True), (1, True)] and run.summary().stopped is None
    first, second = rows[0].cost, rows[1].cost
    assert first is not None and second is not None and first > estimate.high
    assert len(seen) == 2 and seen[0] <= estimate.high  # the first row alone, at its estimate
    assert seen[1] == first * 2  # spent, plus the held row at the costliest row's cost
    assert other.others() == first + second == run.summary().cost


@pytest.mark.parametrize(("finish", "reported"), [(None, "tool_calls"), ("stop", "tool_calls"), ("length", "length")])
async def test_a_streamed_reply_with_tool_calls_reports_tool_calls_unless_it_ended_for_another_reason(
    server: FakeOpenRouter, finish: str | None, reported: str
) -> None:
    server.enqueue(Scripted(sse=[
        _tool_chunk([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]),
        _tool_chunk([], finish),
        "data: [DONE]\n\n",
    ]))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        stream = service.stream("add 1", model="acme/x-1")
        await stream.collect()
    assert [(c.id, c.name, c.arguments) for c in stream.tool_calls] == [("call_1", "add", {"a": 1})]
    assert stream.finish_reason == reported


# The rest of seed 6004. Judged equivalent:
# - plugins/registry.py `_hook_order`'s `cached[0] == epoch` -> `cached[1] == epoch`: the cache is never hit, and
#   every call sorts the same hookimpls into the same order again (only slower);
# - plugins/registry.py `c.plugin == CORE_PLUGIN and c.match is Match.FALLBACK` -> `or`: the core plugin cannot
#   be unregistered and its resolve_generator always offers its FALLBACK, so both find one and append nothing;
# - replies/structured.py `_json_compatible`'s `depth > MAX_DEPTH` -> `>=`: json_repair gives up (a RecursionError,
#   caught) long before 500 levels, so a repaired value never reaches that bound (see the test above on it);
# - schemas/validation.py validate()'s plain=True -> False: judged above (fastvalid checks the shape again).


@pytest.mark.parametrize("reasons", ["violence", ["violence", 7], {"violence": True}])
def test_moderation_reasons_of_another_type_are_left_out_of_the_error_metadata(reasons: Any) -> None:
    """ModerationError reads metadata["reasons"] as a list of strings: anything else is not kept there
    (the error's reasons are empty), while the rest of the metadata is."""
    from openrouter_registry import ModerationError

    body = {"error": {"code": 403, "message": "flagged", "metadata": {"reasons": reasons, "provider_name": "OpenAI"}}}
    error = error_for(403, body, model="openai/gpt-4o")
    assert isinstance(error, ModerationError)
    assert "reasons" not in error.metadata and error.metadata["provider_name"] == "OpenAI"
    assert error.reasons == [] and "Reasons:" not in str(error)


async def test_a_reply_whose_only_extra_is_images_keeps_them(server: FakeOpenRouter) -> None:
    """A message with images and nothing else besides its content (an image model's usual reply)."""
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = {"id": "gen-img", "model": "acme/painter-1", "choices": [{"message": {
        "role": "assistant", "content": "Here it is.", "images": [image]}, "finish_reason": "stop"}]}
    server.enqueue(Scripted(json=body))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        result = await service.generate("a cat", model="acme/painter-1")
    assert result.text == "Here it is." and [dict(i) for i in result.images] == [image]
    assert result.tool_calls == () and result.reasoning is None


# Survivors of the final fresh sample of 2026-12-03 (seed 9001, 80 mutants at 9702dcd). Judged equivalent:
# - batch/run.py `_note_cost`'s `row.attempts > 0` -> `>= 0`: an ok row made at least one request (attempts >= 1);
# - replies/candidates.py `_after_structural`'s `i < 0` -> `i < 1`: a quote is only looked at inside an open
#   bracket, so index 0, when the walk back reaches it, is that `{` or `[` either way;
# - replies/structured.py nesting_depth's `level = highest = lowest = 0` -> 1: all three move together and only
#   `highest - lowest` is returned;
# - http/transport.py `_Call.attempts = 0` -> 1: both places that build a `_Call` pass attempts themselves.


async def test_a_stream_without_an_api_key_is_refused_before_any_request(server: FakeOpenRouter) -> None:
    from openrouter_registry import MissingAPIKeyError

    settings = Settings.from_env({}, base_url=server.base_url, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        with pytest.raises(MissingAPIKeyError, match="OPENROUTER_API_KEY is not set"):
            service.stream("hi")
    assert server.requests == []


def test_the_blocking_client_s_repr_names_its_model_and_base_url() -> None:
    from openrouter_registry.service import OpenRouterSyncService

    settings = Settings.from_env({}, api_key="sk-or-v1-test", catalog=False)
    client = OpenRouterSyncService(OpenRouterService(settings, registry=Registry(environ={})))
    try:
        assert repr(client) == "OpenRouterSyncService(model='openai/gpt-4o', base_url='https://openrouter.ai/api/v1')"
        assert "sk-or" not in repr(client)
    finally:
        client.close()
