"""Hardening: loading the model catalog never stalls the event loop: it is parsed (and written, and read
back from the cache) on a worker thread, in steps of one entry, with the collector paused. Bounds: 50 ms
for a catalog the size of the real one (~2 MB), 250 ms for a 30 MB one."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import load_catalog, read_listing
from openrouter_registry.settings import Settings
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.testing.server import MODELS


def listing(models: int, description: int) -> bytes:
    data = []
    for i in range(models):
        entry = dict(MODELS[i % len(MODELS)])
        entry["id"], entry["description"] = f"acme/model-{i}", "d" * description
        data.append(entry)
    return json.dumps({"data": data}).encode()


async def worst_stall(work: Any) -> float:
    """The longest the event loop went without running a 1 ms ticker while ``work`` ran."""
    worst, done = 0.0, False

    async def tick() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    try:
        await work
    finally:
        done = True
        await ticker
    return worst


# 1,500 models is about 2 MB (the real catalog); 30,000 with 200-character descriptions about 31 MB, under the 32 MiB fetch cap
@pytest.mark.parametrize("models, description, bound", [(1500, 600, 0.050), (30000, 200, 0.250)])
async def test_loading_the_catalog_never_stalls_the_loop(tmp_path: Path, models: int, description: int, bound: float) -> None:
    body = listing(models, description)
    with FakeOpenRouter() as fake:
        fake.catalog_answer = Scripted(body=body, headers={"Content-Type": "application/json"})
        settings = Settings.from_env({}, base_url=fake.base_url, api_key=fake.api_key, cache_dir=str(tmp_path))
        assert len(await load_catalog(settings) or ()) == models  # first load: imports, caches
        fetched = min([await worst_stall(load_catalog(settings, refresh=True)) for _ in range(2)])
        stalls = []
        for _ in range(2):
            catalog_module.reset()
            stalls.append(await worst_stall(load_catalog(settings, network=False)))
        cached = min(stalls)
        assert len(await load_catalog(settings, network=False) or ()) == models
    assert fetched < bound and cached < bound, (fetched, cached)


def test_read_listing_is_strict_json_and_hands_out_items_one_at_a_time() -> None:
    items: list[Any] = []
    fields = read_listing(' {"a": 1, "data": [ {"id": 1} , [2], "x" ], "b": {"c": null} } ', "data", items.append)
    assert items == [{"id": 1}, [2], "x"] and fields == {"a": 1, "data": catalog_module.LISTED, "b": {"c": None}}
    assert read_listing('{"data": []}', "data", items.append) == {"data": catalog_module.LISTED}
    for bad in ['{"data": [NaN]}', '{"data": [1,]}', '{"data": [1] 2}', '[1]', '{"data": [1]} x', '{"a" 1}', "", '{"data": [1']:
        with pytest.raises(ValueError):
            read_listing(bad, "data", items.append)
