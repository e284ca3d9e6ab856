"""The synchronous client (`NLPServices.openrouter_sync`): the same calls as the async service, blocking,
from a plain function, from many threads at once and from inside a running event loop (a Jupyter cell),
against the local OpenRouter-compatible server on a real socket."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from decimal import Decimal

import pydantic
import pytest

from openrouter_registry import (
    ConfigurationError,
    NLPServices,
    OpenRouterSyncService,
    StructuredOutputError,
    SyncTextStream,
)
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS


class City(pydantic.BaseModel):
    city: str
    country: str


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(text_reply="Hello from {model}") as s:
        s.set_reply("city_country", PARIS)
        s.set_reply("City", PARIS)  # the pydantic class's schema title
        yield s


@pytest.fixture
def client(server: FakeOpenRouter) -> Iterator[OpenRouterSyncService]:
    with NLPServices.openrouter_sync(base_url=server.base_url, api_key=server.api_key, model_name="openai/gpt-4o") as c:
        yield c


def test_generate_returns_the_validated_class_instance_with_decimal_cost(client: OpenRouterSyncService) -> None:
    g = client.generate("Extract: Paris, France.", schema=CITY)
    assert g.content == PARIS and isinstance(g.cost, Decimal) and g.attempts == 1
    typed = client.generate("Extract: Paris, France.", schema=City)
    assert typed.content == City(**PARIS)
    text = client.generate("Say hello")
    assert text.content == "Hello from openai/gpt-4o"


def test_stream_is_a_plain_iterator_with_the_totals_after_it(client: OpenRouterSyncService, server: FakeOpenRouter) -> None:
    stream = client.stream("Say hello", model="openai/gpt-4o-mini")
    assert isinstance(stream, SyncTextStream) and server.requests == []  # nothing sent before the first step
    deltas = list(stream)
    assert "".join(deltas) == stream.text == "Hello from openai/gpt-4o-mini" and len(deltas) > 1
    assert stream.finish_reason == "stop" and stream.attempts == 1 and stream.usage.total_tokens > 0
    assert isinstance(stream.cost, Decimal) and server.requests[0].body["stream"] is True


def test_embed_and_estimate_cost(client: OpenRouterSyncService, server: FakeOpenRouter) -> None:
    result = client.embed(["first", "second"], model="openai/text-embedding-3-small")
    assert len(result) == 2 and [len(v) for v in result] == [result.dimensions] * 2
    assert server.requests[-1].body["input"] == ["first", "second"]
    estimate = client.estimate_cost("Extract: Paris, France.", schema=CITY, max_tokens=100)
    assert estimate is not None and isinstance(estimate.low, Decimal) and 0 < estimate.low <= estimate.high


def test_batch_returns_every_row_in_input_order(client: OpenRouterSyncService, server: FakeOpenRouter) -> None:
    items = [{"id": f"r{i}", "prompt": f"Extract: Paris, visit {i}"} for i in range(12)]
    items.insert(5, {"id": "bad"})  # no prompt: a failed row, in its place
    rows = client.batch(items, schema=CITY, concurrency=4)
    assert [row.id for row in rows] == [item["id"] for item in items]
    assert [row.ok for row in rows].count(False) == 1 and not rows[5].ok and rows[5].error is not None
    assert all(row.content == PARIS for row in rows if row.ok)


def test_batch_rows_the_budget_skipped_come_back_not_started(client: OpenRouterSyncService, server: FakeOpenRouter) -> None:
    items = [{"id": i, "prompt": f"Extract: Paris, visit {i}"} for i in range(10)]
    rows = client.batch(items, schema=CITY, concurrency=1, max_cost="0.0000001")  # below one row's estimate
    assert [row.id for row in rows] == list(range(10))  # one row per item, never a gap
    assert [row.line for row in rows] == list(range(1, 11))  # each at its 1-based position in the input
    assert all(row.error is not None and row.error.type == "NotStarted" for row in rows)
    assert "budget (max_cost)" in rows[0].error.message and server.requests == []


def test_calls_from_many_threads_share_one_client(client: OpenRouterSyncService, server: FakeOpenRouter) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = client.generate(f"Say hello {i}", model="openai/gpt-4o-mini").content
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and sorted(results) == list(range(16))
    assert set(results.values()) == {"Hello from openai/gpt-4o-mini"} and len(server.requests) == 16


async def test_works_inside_a_running_event_loop_like_a_jupyter_cell(client: OpenRouterSyncService) -> None:
    asyncio.get_running_loop()  # this test body runs on an event loop, as a notebook cell does
    g = client.generate("Extract: Paris, France.", schema=City)
    assert g.content.city == "Paris"
    assert "".join(client.stream("Say hello")) == "Hello from openai/gpt-4o"


def test_errors_are_the_async_services_errors(client: OpenRouterSyncService, server: FakeOpenRouter) -> None:
    server.enqueue(Scripted.chat("no JSON here", model="openai/gpt-4o"), Scripted.chat("still none", model="openai/gpt-4o"))
    with pytest.raises(StructuredOutputError) as info:
        client.generate("Extract: Paris.", schema=CITY)
    assert info.value.text == "still none" and info.value.attempts == 2
    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        client.generate("hi", timeout=0)
    with pytest.raises(ConfigurationError, match="temperature"):
        client.stream("hi", temperature=5)  # refused when called, before anything is sent


def test_leaving_a_stream_early_and_closing(server: FakeOpenRouter) -> None:
    client = NLPServices.openrouter_sync(base_url=server.base_url, api_key=server.api_key)
    for delta in client.stream("Say hello"):
        assert delta
        break
    assert client.generate("Say hello").content.startswith("Hello from")  # the connection came back
    client.close()
    client.close()  # idempotent
    with pytest.raises(ConfigurationError, match="closed"):
        client.generate("Say hello")


def test_a_plain_script_runs_and_exits(server: FakeOpenRouter, tmp_path: pytest.TempPathFactory) -> None:
    script = textwrap.dedent(f"""
        from openrouter_registry import NLPServices
        client = NLPServices.openrouter_sync(base_url={server.base_url!r}, api_key={server.api_key!r})
        print(client.generate("Say hello", model="openai/gpt-4o").content)
    """)  # never closed: the interpreter's exit closes it, without a warning
    done = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "Hello from openai/gpt-4o\n", "")
