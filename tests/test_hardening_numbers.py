"""Hardening: hostile numbers (catalog prices, counts and ids; a reply's usage.cost), budgets that hold
when prices are unknown or wrong, and batch input lines that must each become a row."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.batch.run import MAX_PROMPT_CHARS, render
from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import cache_file, load_catalog, parse_models
from openrouter_registry.result import cost_from_api
from openrouter_registry.testing import FakeOpenRouter, Scripted

from test_cli_batch import read_rows
from test_cli_generate import PROG, chat_requests, no_key, one_error_line, server  # noqa: F401  (fixtures)
from openrouter_registry.cli import main

GOOD = {"id": "acme/good-1", "context_length": 1000, "pricing": {"prompt": "0.000001", "completion": "0.000002"}}


def entry(**changes: Any) -> dict[str, Any]:
    value = json.loads(json.dumps(GOOD))
    for key, item in changes.items():
        if key in ("prompt", "completion", "request"):
            value["pricing"][key] = item
        else:
            value[key] = item
    return value


@pytest.mark.parametrize(
    "hostile",
    [
        entry(id="acme/huge-price", prompt="1e999999999"),
        entry(id="acme/nan", completion="NaN"),
        entry(id="acme/inf", prompt="Infinity"),
        entry(id="acme/e303", prompt="1e303"),
        entry(id="acme/tiny", prompt="1e-999999999"),
        entry(id="acme/digits", prompt="0." + "1" * 60),
        entry(id="acme/float", request=1e308),
        entry(id="acme/window", context_length=10**12),
        entry(id="acme/window-text", context_length="9" * 5000),
        entry(id="\x1b[2Jacme/escape"),
        entry(id="acme/with space"),
        entry(id="a" * 300),
    ],
)
def test_a_hostile_catalog_entry_is_dropped_with_a_warning(hostile: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        models = parse_models([GOOD, hostile])
    assert list(models) == ["acme/good-1"]
    assert "Skipped 1 malformed model(s)" in caplog.text and "\x1b" not in caplog.text


def test_real_and_boundary_prices_are_kept_exactly() -> None:
    models = parse_models([entry(prompt="0"), entry(id="acme/b", prompt="0.00000000000000000000000000001", completion="999999")])
    assert models["acme/good-1"].pricing.prompt == 0
    assert models["acme/b"].pricing.prompt == Decimal("1e-29") and models["acme/b"].pricing.completion == 999999


async def test_a_12_byte_price_no_longer_bloats_the_cache(tmp_path: Path) -> None:
    with FakeOpenRouter() as fake:
        fake.catalog_answer = Scripted(json={"data": [GOOD, entry(id="acme/bloat", prompt="1e999999999")]})
        settings = Settings.from_env({}, base_url=fake.base_url, api_key=fake.api_key, cache_dir=str(tmp_path))
        catalog = await load_catalog(settings)
    assert catalog is not None and list(catalog.models) == ["acme/good-1"]
    path = cache_file(settings, "catalog")
    assert path is not None and path.stat().st_size < 2000


@pytest.mark.parametrize("cost", [1e303, "1e999", "NaN", "Infinity", float("inf"), -1, 10**400, "x" * 100, [1]])
def test_a_hostile_usage_cost_is_ignored_with_a_warning(cost: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        assert cost_from_api({"cost": cost}) is None
    assert "Ignoring the reply's usage.cost" in caplog.text
    assert cost_from_api({"cost": "0.0125"}) == Decimal("0.0125") and cost_from_api({}) is None


@pytest.fixture
def fake() -> Any:
    with FakeOpenRouter() as server:
        yield server


def service_for(fake: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=fake.base_url, api_key=fake.api_key, **overrides)
    return OpenRouterService(settings, registry=Registry(environ={}))


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "prompt": f"row {i}"} for i in range(n)]


async def test_generate_with_a_hostile_cost_and_catalog_gives_no_inf(fake: FakeOpenRouter) -> None:
    fake.catalog_answer = Scripted(json={"data": [entry(id="acme/x", prompt="1e999"), GOOD]})
    fake.enqueue(Scripted.chat("hi", model="acme/x", usage={"prompt_tokens": 5, "completion_tokens": 2, "cost": 1e303}))
    async with service_for(fake) as service:
        result = await service.generate("hi", model="acme/x")
        assert result.cost is None  # ignored (a warning), never inf; the catalog has no usable price for acme/x
        assert await service.estimate_cost("hi", model="acme/x") is None


async def test_budget_without_any_price_stops_after_the_first_billed_row(fake: FakeOpenRouter) -> None:
    fake.catalog_answer = Scripted(json={"data": [GOOD]})
    reply = Scripted.chat("hi", model="acme/unlisted", usage={"prompt_tokens": 5, "completion_tokens": 2})
    fake.enqueue(*[reply] * 200)
    async with service_for(fake) as service:
        run = service.batch(items(200), concurrency=16, max_cost="0.0001", model="acme/unlisted", total=200)
        rows = [row async for row in run]
    summary = run.summary()
    assert len(rows) == 1 and len(fake.requests) == 1
    assert summary.stopped == "budget" and summary.unpriced and summary.not_started == 199
    assert "cannot be held" in summary.text()


async def test_budget_holds_when_the_catalog_says_free_but_replies_bill(fake: FakeOpenRouter) -> None:
    fake.catalog_answer = Scripted(json={"data": [entry(id="acme/free", prompt="0", completion="0")]})
    fake.latency = 0.01
    billed = Scripted.chat("hi", model="acme/free", usage={"prompt_tokens": 5, "completion_tokens": 2, "cost": 0.01})
    fake.enqueue(*[billed] * 100)
    async with service_for(fake) as service:
        run = service.batch(items(100), concurrency=50, max_cost="0.05", model="acme/free", total=100)
        rows = [row async for row in run]
    summary = run.summary()
    assert summary.stopped == "budget" and summary.cost <= Decimal("0.05")
    assert len(rows) == len(fake.requests) == 5


# -- input lines -------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_each_hostile_input_line_is_an_input_error_row_and_resume_bills_nothing_twice(
    server: FakeOpenRouter, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = [json.dumps({"id": f"ok-{i}", "prompt": "hi"}) for i in range(4)]
    hostile = [
        '{"id": "deep", "prompt": ' + "[" * 200_000 + "]" * 200_000 + "}",
        '{"id": "lone-\\ud800", "prompt": "hi"}',
        '{"id": "lone-in-prompt", "prompt": "\\udfff"}',
    ]
    write_lines(source, good[:2] + hostile + good[2:])
    args = ["batch", str(source), "--out", str(out), "--quiet"]
    assert main(args) == 2  # unusable input rows: exit 2, but every good row ran
    rows = read_rows(out)
    assert sorted(row["id"] for row in rows if row["ok"]) == [f"ok-{i}" for i in range(4)]
    problems = {row["line"]: row["error"]["message"] for row in rows if not row["ok"]}
    assert problems[3].endswith("nested too deeply to read")
    assert "lone surrogate" in problems[4] and "lone surrogate" in problems[5]
    sent = len(chat_requests(server))
    assert sent == 4
    assert main([*args, "--resume"]) == 2
    assert len(chat_requests(server)) == sent  # the ok rows are never billed again


def test_a_template_cannot_build_a_prompt_over_the_bound(server: FakeOpenRouter, tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [json.dumps({"id": "wide", "text": "x", "w": 400_000_000}), json.dumps({"id": "fine", "text": "x", "w": 3})])
    started = time.monotonic()
    assert main(["batch", str(source), "--out", str(out), "--quiet", "--template", "Say {text:>{w}}"]) == 2
    assert time.monotonic() - started < 30
    rows = {row["id"]: row for row in read_rows(out)}
    assert rows["fine"]["ok"] and not rows["wide"]["ok"] and "would build a prompt over" in rows["wide"]["error"]["message"]
    assert [r.body["messages"][-1]["content"] for r in chat_requests(server)] == ["Say   x"]


def test_render_bounds_repeated_fields_and_fixed_widths() -> None:
    with pytest.raises(ValueError, match="would pass"):
        render("{t}" * 40, {"t": "x" * (MAX_PROMPT_CHARS // 20)})
    with pytest.raises(ValueError, match="would pass"):
        render("{t:>30000000}{t:>30000000}", {"t": "x"})
    assert render("{t} {n:>4}", {"t": "a", "n": 7}) == "a    7"


def test_a_batch_with_hostile_costs_writes_every_billed_row(server: FakeOpenRouter, tmp_path: Path) -> None:
    source, out, summary = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "summary.json"
    write_lines(source, [json.dumps({"id": f"r{i}", "prompt": "hi"}) for i in range(6)])
    costs: list[Any] = [1e303, "NaN", "Infinity", "1e999", 10**400, 0.002]
    server.enqueue(*[Scripted.chat("hi", usage={"prompt_tokens": 3, "completion_tokens": 1, "cost": cost}) for cost in costs])
    args = ["batch", str(source), "--out", str(out), "--quiet", "--concurrency", "1", "--summary-json", str(summary)]
    assert main(args) == 0
    rows = read_rows(out)
    assert sorted(row["id"] for row in rows) == [f"r{i}" for i in range(6)] and all(row["ok"] for row in rows)
    assert all(row["cost"] is None or Decimal(row["cost"]) < 1 for row in rows)
    data = json.loads(summary.read_text())
    assert Decimal(data["cost_usd"]) < 1 and data["requests"] == 6
