"""`service.batch()` against the local server: the rows it yields, errors as rows, duplicate ids, templates,
the budget, adaptive concurrency on 429s, cancellation; `events` retry observers; the AIMD limiter."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from openrouter_registry import ConfigurationError
from openrouter_registry.batch.run import BatchRow, BatchRun, _in_flight_bound, _Limiter, _Request, render
from openrouter_registry.http.events import RetryEvent, observe_retries
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS
from test_service import make_service, server  # noqa: F401  (the fixture)

RATE_LIMITED = Scripted(status=429, json={"error": {"message": "Rate limit exceeded", "code": 429}}, headers={"Retry-After": "0.2"})


def items(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    return ({"id": f"row-{i}", "prompt": f"Where is landmark {i}?"} for i in range(start, start + n))


async def collect(run: BatchRun) -> list[BatchRow]:
    return [row async for row in run]


def chats(server: FakeOpenRouter) -> list[Any]:
    return [r for r in server.requests if r.path == "/api/v1/chat/completions"]


async def test_every_item_gives_one_ok_row_with_the_facts_of_its_call(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        run = service.batch(items(20), schema=CITY, concurrency=5)
        rows = await collect(run)
    assert sorted(row.id for row in rows) == sorted(f"row-{i}" for i in range(20))
    assert all(row.ok and row.content == PARIS and row.error is None for row in rows)
    assert {row.model for row in rows} == {"openai/gpt-4o"} and {row.mode for row in rows} == {"json_schema"}
    assert all(row.attempts == 1 and row.usage.prompt_tokens > 0 and row.latency_s > 0 for row in rows)
    assert all(isinstance(row.cost, Decimal) and row.cost > 0 for row in rows)
    assert all(row.generation_id and row.generation_id.startswith("gen-") for row in rows)
    # each item's prompt went out once, through the generation path (json_schema response_format)
    sent = sorted(r.body["messages"][-1]["content"] for r in chats(server))
    assert sent == sorted(f"Where is landmark {i}?" for i in range(20))
    assert all(r.body["response_format"]["type"] == "json_schema" for r in chats(server))
    summary = run.summary()
    assert (summary.rows, summary.ok, summary.failed, summary.requests) == (20, 20, {}, 20)
    assert summary.cost == sum((row.cost for row in rows if row.cost is not None), Decimal(0))
    assert summary.prompt_tokens == sum(row.usage.prompt_tokens for row in rows)
    assert summary.latency_p50_s is not None and summary.latency_p95_s is not None
    assert summary.latency_p50_s <= summary.latency_p95_s
    data = rows[0].to_dict()
    assert list(data)[:3] == ["id", "ok", "content"] and data["content"] == PARIS and data["cost"] == str(rows[0].cost)  # money in JSON: a decimal string


async def test_messages_template_and_async_input(server: FakeOpenRouter) -> None:
    async def source() -> AsyncIterator[dict[str, Any]]:
        yield {"id": 1, "text": "We landed in Lyon", "meta": {"page": 3}}
        yield {"id": 2, "text": "Rome at night"}

    async with make_service(server) as service:
        rows = await collect(service.batch(source(), template="Extract the city from: {text} {meta}", concurrency=1))
        assert [row.ok for row in rows] == [True, False]  # row 1 renders; row 2 lacks "meta"
        messages = await collect(service.batch([{"id": "m", "messages": [{"role": "user", "content": "Hi there"}]}]))
    assert rows[1].error is not None and rows[1].error.type == "InputError"
    assert rows[1].error.message == "line 2: the template needs 'meta', which this row lacks"
    (first,) = [r.body for r in chats(server)][:1]
    assert first["messages"] == [{"role": "user", "content": 'Extract the city from: We landed in Lyon {"page": 3}'}]
    assert messages[0].ok and chats(server)[-1].body["messages"] == [{"role": "user", "content": "Hi there"}]


async def test_errors_are_rows_never_raised(server: FakeOpenRouter) -> None:
    server.set_reply("city_country", {"city": 5})  # never valid: one re-ask, then StructuredOutputError
    bad_request = Scripted(status=400, json={"error": {"message": "Invalid model", "code": 400}})
    async with make_service(server) as service:
        server.enqueue(bad_request)
        rows = await collect(service.batch(items(1), schema=CITY, concurrency=1))
        rows += await collect(service.batch(items(1, start=1), schema=CITY))
        rows += await collect(service.batch([{"id": "x"}, {"prompt": "no id"}, {"id": True, "prompt": "p"}, "text"]))
    api, structure, *inputs = rows
    assert not api.ok and api.error is not None and api.error.type == "BadRequestError" and api.attempts == 1
    assert "Invalid model" in api.error.message and api.content is None
    assert not structure.ok and structure.error is not None and structure.error.type == "StructuredOutputError"
    assert structure.attempts == 2 and structure.cost is not None and structure.usage.prompt_tokens > 0
    assert [(r.id, r.error.type if r.error else None, r.line) for r in inputs] == [
        ("x", "InputError", 1), (None, "InputError", 2), (None, "InputError", 3), (None, "InputError", 4)
    ]
    assert inputs[0].error is not None and "needs 'prompt'" in inputs[0].error.message
    assert inputs[1].error is not None and "every row needs an 'id'" in inputs[1].error.message
    assert len(chats(server)) == 3  # the input errors sent nothing


async def test_duplicate_ids_in_a_list_are_refused_before_anything_is_sent(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match=r'duplicate ids in the batch input: "row-1"'):
            service.batch([*items(3), {"id": "row-1", "prompt": "again"}])
    assert server.requests == []


async def test_duplicate_ids_in_a_one_shot_iterator_become_error_rows(server: FakeOpenRouter) -> None:
    source = iter([*items(2), {"id": "row-0", "prompt": "again"}])
    async with make_service(server) as service:
        rows = await collect(service.batch(source, concurrency=1))
    assert [(r.id, r.ok) for r in rows] == [("row-0", True), ("row-1", True), ("row-0", False)]
    assert rows[2].error is not None and rows[2].error.type == "DuplicateIdError"
    assert rows[2].error.message == 'line 3: id "row-0" already came earlier in this batch; not sent'
    assert len(chats(server)) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"template": "Extract {"}, "not a valid format string"),
        ({"template": "Extract {}"}, "fields must be named"),
        ({"concurrency": 0}, "concurrency must be a positive integer"),
        ({"max_cost": "lots"}, "a USD amount must be a number"),
        ({"max_cost": 0}, "max_cost must be a positive amount"),
        ({"temperature": 3}, "temperature must be a number from 0 to 2"),
    ],
)
async def test_bad_arguments_are_refused_at_once(server: FakeOpenRouter, options: dict[str, Any], message: str) -> None:
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match=message):
            service.batch(items(2), **options)
    assert server.requests == []


async def test_the_budget_stops_launching_before_the_spend_could_pass_it(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        estimate = await service.estimate_cost("Where is landmark 0?", schema=CITY, max_tokens=60)
        assert estimate is not None  # the catalog (GET /models of the local server) prices openai/gpt-4o
        budget = estimate.high * Decimal("4.5")
        run = service.batch(items(200), schema=CITY, concurrency=8, max_cost=budget, max_tokens=60, total=200)
        rows = await collect(run)
    summary = run.summary()
    assert summary.stopped == "budget" and summary.not_started == 200 - len(rows)
    assert all(row.ok for row in rows) and len(chats(server)) == len(rows) == summary.rows
    assert summary.cost == sum((row.cost for row in rows if row.cost is not None), Decimal(0))
    # what was spent stays within the budget, and the next row's bound really could have passed it
    assert summary.cost <= budget < summary.cost + estimate.high
    assert all(r.body["max_tokens"] == 60 for r in chats(server))
    assert "stopped: the next row could pass max_cost" in summary.text()


async def test_in_flight_bound_is_the_catalog_estimate_never_below_the_costliest_row(server: FakeOpenRouter) -> None:
    request = _Request("a", 1, "Where?", None)
    async with make_service(server) as service:
        estimate = await service.estimate_cost("Where?", schema=CITY, model="openai/gpt-4o-mini", max_tokens=50)
        assert estimate is not None and estimate.high > 0

        async def bound(model: str, highest: Decimal | None) -> Decimal | None:
            return await _in_flight_bound(service, request, schema=CITY, model=model, max_tokens=50, highest=highest)

        assert await bound("openai/gpt-4o-mini", None) == estimate.high
        assert await bound("openai/gpt-4o-mini", estimate.high * 2) == estimate.high * 2
        # a model the catalog does not price: the costliest finished row, else unknown
        assert await bound("acme/unpriced-1", None) is None
        assert await bound("acme/unpriced-1", Decimal("0.3")) == Decimal("0.3")


async def test_without_prices_one_row_runs_until_a_cost_is_known(server: FakeOpenRouter) -> None:
    server.latency = 0.02
    async with make_service(server) as service:
        run = service.batch(items(12), concurrency=8, max_cost=1, model="acme/unpriced-1")
        in_flight: list[int] = []
        async for _ in run:
            in_flight.append(run.in_flight)
    assert in_flight[0] == 0  # the first row ran alone: nothing else was launched before its cost was known
    assert max(in_flight) > 1 and run.summary().rows == 12 and run.summary().stopped is None


async def test_429s_halve_the_concurrency_then_it_grows_back(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        server.enqueue(*[RATE_LIMITED] * 6)
        run = service.batch(items(120), schema=CITY, concurrency=8)
        rows = await collect(run)
    report = run.summary().concurrency
    assert all(row.ok for row in rows) and len(rows) == 120
    assert run.summary().requests == 126 == len(chats(server))  # six retried requests
    assert report.start == 8 and report.decreases >= 1 and report.min <= 4
    assert report.increases >= 1 and report.final == report.max == 8
    retried = [row for row in rows if row.attempts == 2]
    assert len(retried) == 6


def test_limiter_halves_on_a_burst_of_429s_once_per_round_and_adds_back_per_round() -> None:
    now = [100.0]
    limiter = _Limiter(64, clock=lambda: now[0])
    for _ in range(200):
        limiter.completed()
    limiter.rate_limited(sent_at=99.0, wait=1.0)  # a lone 429 among many answers: retried, nothing more
    assert (limiter.slots, limiter.decreases, limiter.pause_left()) == (64, 0, 0.0)
    for _ in range(3):  # then 429s pass 5% of the recent answers: the limit is too high
        limiter.rate_limited(sent_at=99.0, wait=1.0)
    assert (limiter.slots, limiter.decreases, limiter.pause_left()) == (32, 1, 1.0)
    for _ in range(5):  # more 429s for requests sent before that decrease: the same round
        limiter.rate_limited(sent_at=99.5, wait=1.0)
    assert limiter.slots == 32 and limiter.decreases == 1
    now[0] = 102.0
    limiter.rate_limited(sent_at=101.5, wait=0.5)  # sent after the pause: the new limit is still too high
    assert limiter.slots == 16 and limiter.decreases == 2 and limiter.pause_left() == 0.5
    for _ in range(15):
        limiter.completed()
    limiter.completed(clean=False)  # a row that met a 429 does not count towards a calm round
    assert limiter.slots == 16
    limiter.completed()  # one round of clean completions adds 64 // 32 = 2 slots
    assert limiter.slots == 18
    for _ in range(1000):
        limiter.completed()
    assert limiter.report().to_dict() == {"start": 64, "min": 16, "max": 64, "final": 64, "decreases": 2, "increases": 24}


async def test_cancel_yields_what_finished_and_ends(server: FakeOpenRouter) -> None:
    server.latency = 0.05
    async with make_service(server) as service:
        run = service.batch(items(200), schema=CITY, concurrency=4, total=200)
        rows: list[BatchRow] = []
        async for row in run:
            rows.append(row)
            if len(rows) == 6:
                run.cancel()
    summary = run.summary()
    assert summary.stopped == "interrupted" and 6 <= len(rows) <= 10 and summary.rows == len(rows)
    assert summary.not_started == 200 - len(rows)
    assert len(chats(server)) <= len(rows) + 4  # at most the rows in flight were cut off


async def test_retry_observers_see_each_retry_in_their_own_context_only(server: FakeOpenRouter) -> None:
    seen: list[RetryEvent] = []
    other: list[RetryEvent] = []
    async with make_service(server) as service:
        server.enqueue(RATE_LIMITED)
        with observe_retries(seen.append):
            await service.generate("Hi")
        server.enqueue(RATE_LIMITED)
        context = contextvars.copy_context()  # not observed by `seen`
        with observe_retries(other.append):
            await asyncio.create_task(service.generate("Hi"), context=context)

        def broken(event: RetryEvent) -> None:
            raise RuntimeError("observer bug")

        server.enqueue(RATE_LIMITED)
        with observe_retries(broken):
            result = await service.generate("Hi")  # the request does not care
    assert [(e.status, e.wait, e.attempt, e.error, e.rate_limited) for e in seen] == [(429, 0.2, 1, "RateLimitError", True)]
    assert other == [] and result.attempts == 2


def test_the_readme_batch_example_runs_as_written_and_prints_what_the_readme_shows() -> None:
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "batch.md").read_text(encoding="utf-8")
    block = readme.split("<!-- example-batch", 1)[1]
    source, shown = re.findall(r"```(?:python|text)\n(.*?)```", block, re.DOTALL)[:2]
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed, expected = done.stdout.splitlines(), shown.splitlines()
    assert sorted(printed[:3]) == sorted(expected[:3])  # the rows, in whatever order they finished
    assert printed[3:5] == expected[3:5]  # counts, requests, tokens and the exact cost
    assert printed[6].startswith("concurrency start 16, min 16, max 16, final 16")


async def test_input_is_read_lazily_as_rows_finish(server: FakeOpenRouter) -> None:
    pulled = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for item in items(10_000):
            pulled += 1
            yield item

    async with make_service(server) as service:
        run = service.batch(source(), concurrency=4)
        async for _ in run:
            break  # the consumer stops after the first row: the rest is never read, never sent
    assert pulled <= 5 and len(chats(server)) <= 5


@pytest.mark.parametrize(
    "template, entry, expected",
    [
        ("From: {text}", {"text": "Paris", "id": 1}, "From: Paris"),
        ("{n:>4}|{text!r}", {"n": 7, "text": "x"}, "   7|'x'"),
        ("Data: {data}", {"data": {"city": "Café", "n": [1, 2]}}, 'Data: {"city": "Café", "n": [1, 2]}'),
        ("Items: {items} of {text}", {"items": ["a"], "text": "t"}, 'Items: ["a"] of t'),
        ("First: {row[name]}", {"row": {"name": "Ada"}}, "First: Ada"),
        ("Nothing: {text}", {"text": None}, "Nothing: None"),
    ],
)
def test_templates_render_dicts_and_lists_as_json_and_the_rest_as_str_format(
    template: str, entry: dict[str, Any], expected: str
) -> None:
    assert render(template, entry) == expected


def test_a_missing_template_field_is_a_key_error_on_either_path() -> None:
    with pytest.raises(KeyError):
        render("From: {text}", {"id": 1})
    with pytest.raises(KeyError):
        render("From: {row[name]}", {"id": 1})
