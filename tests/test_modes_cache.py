"""Learned modes persist in the cache dir: a second process does not pay again for what the first learned."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.models.catalog import cache_file
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.testing import FakeOpenRouter

from city import CITY

MODEL = "acme/json-shy"  # not in the catalog: its mode has to be learned


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    MODE_MEMORY.clear()
    with FakeOpenRouter() as fake:
        fake.refuse_modes[MODEL] = {"json_schema", "json_object"}
        yield fake
    MODE_MEMORY.clear()


def make_service(server: FakeOpenRouter, cache: Path, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env(
        {}, base_url=server.base_url, api_key=server.api_key, cache_dir=str(cache), **overrides
    )
    return OpenRouterService(settings, registry=Registry(environ={}))


async def attempts(server: FakeOpenRouter, cache: Path, model: str = MODEL, **kwargs: Any) -> int:
    async with make_service(server, cache) as service:
        return (await service.generate("Extract: Paris, France.", schema=CITY, model=model, **kwargs)).attempts


SCRIPT = """
import asyncio, sys
from openrouter_registry import OpenRouterService, Registry, Settings
sys.path.insert(0, {tests!r})
from city import CITY
settings = Settings.from_env({{}}, base_url={base_url!r}, api_key={key!r}, cache_dir={cache!r})
async def main():
    async with OpenRouterService(settings, registry=Registry(environ={{}})) as service:
        print((await service.generate("Extract: Paris.", schema=CITY, model={model!r})).attempts)
asyncio.run(main())
"""


async def test_a_second_process_uses_what_the_first_learned(server: FakeOpenRouter, tmp_path: Path) -> None:
    script = SCRIPT.format(tests=str(Path(__file__).parent), base_url=server.base_url, key=server.api_key,
                           cache=str(tmp_path), model=MODEL)
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=os.environ)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "3"  # json_schema refused, json_object refused, prompt
    entries = json.loads(cache_file(make_service(server, tmp_path).settings, "modes").read_text())["modes"]
    assert [(e["model"], e["route"], e["mode"]) for e in entries] == [(MODEL, "", "prompt")]
    assert time.time() - entries[0]["learned_at"] < 60
    assert await attempts(server, tmp_path) == 1  # this process never learned it itself
    sent = [r.body.get("response_format", {}).get("type") for r in server.requests]
    assert sent == ["json_schema", "json_object", None, None]


async def test_modes_are_kept_per_routing(server: FakeOpenRouter, tmp_path: Path) -> None:
    await attempts(server, tmp_path, extra_body={"provider": {"order": ["DeepInfra"]}})
    MODE_MEMORY.clear()
    assert await attempts(server, tmp_path) == 3  # the default routing learns on its own
    MODE_MEMORY.clear()
    assert await attempts(server, tmp_path, extra_body={"provider": {"order": ["DeepInfra"]}}) == 1


async def test_learned_modes_expire_with_the_ttl(server: FakeOpenRouter, tmp_path: Path) -> None:
    await attempts(server, tmp_path)
    path = cache_file(make_service(server, tmp_path).settings, "modes")
    data = json.loads(path.read_text())
    data["modes"][0]["learned_at"] = time.time() - 86_401
    path.write_text(json.dumps(data))
    MODE_MEMORY.clear()
    assert await attempts(server, tmp_path) == 3


async def test_a_corrupt_modes_file_is_a_warning(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = cache_file(make_service(server, tmp_path).settings, "modes")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format": 1, "modes": [{"model": "acme/json-shy", "route": "", "mode": "telepathy", '
                    '"learned_at": 1}, "junk"]}')
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert await attempts(server, tmp_path) == 3
    assert "Ignored 2 malformed entries" in caplog.text
    assert json.loads(path.read_text())["modes"][0]["mode"] == "prompt"  # replaced by a good file
    path.write_text("{not json")
    MODE_MEMORY.clear()
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert await attempts(server, tmp_path) == 3
    assert "unreadable cache file" in caplog.text


async def test_an_unwritable_cache_is_a_warning(
    server: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, "openrouter_registry"):
        assert await attempts(server, blocker / "cache") == 3
        assert await attempts(server, blocker / "cache") == 1  # still remembered in memory
    assert len([r for r in caplog.records if "Could not save learned modes" in r.getMessage()]) == 1


async def test_catalog_off_keeps_modes_in_memory_only(server: FakeOpenRouter, tmp_path: Path) -> None:
    async with make_service(server, tmp_path, catalog=False) as service:
        await service.generate("x", schema=CITY, model=MODEL)
    assert list(tmp_path.iterdir()) == []
