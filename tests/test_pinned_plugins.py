"""Behaviours of the plugin registry, model matching, learned modes and the service that a constant
mutation pre-screen found unpinned (issue 24): each test fails on one constant changed by one.

Judged equivalent (no behaviour a user can see changes):
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.plugins.matching import Match


def test_the_four_match_levels_are_distinct_and_ranked_fallback_family_alias_exact() -> None:
    """`Match` is a public IntEnum: its members keep their own names and the values 0 to 3."""
    assert [(str(m), int(m)) for m in Match] == [("fallback", 0), ("family", 1), ("alias", 2), ("exact", 3)]
    assert str(Match.FAMILY) == "family" and str(Match.ALIAS) == "alias" and Match.ALIAS is not Match.EXACT


def test_a_candidate_and_a_model_table_default_to_priority_0() -> None:
    """A plugin that gives no priority ranks at 0: shown as ``priority 0`` by ``resolve --explain``."""
    from openrouter_registry.plugin import Generator
    from openrouter_registry.plugins.matching import Candidate, ModelTable

    class Writer(Generator):
        pass

    assert Candidate(Writer, "exact").priority == 0
    found = ModelTable(exact={"acme/writer-1": Writer}).match("acme/writer-1")
    assert found is not None and found.priority == 0 and found.match is Match.EXACT


# --- the service (service.py) ---------------------------------------------------------------------


@pytest.fixture
def server() -> Any:
    from openrouter_registry.testing import FakeOpenRouter

    with FakeOpenRouter() as fake:
        yield fake


def _service(server: Any, tmp_path: Path) -> Any:
    from openrouter_registry import OpenRouterService, Registry, Settings

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, model="openai/gpt-4o-mini",
                                 cache_dir=str(tmp_path), catalog=False)
    return OpenRouterService(settings, registry=Registry(environ={}))


async def test_run_tools_defaults_to_8_rounds_and_a_60_second_tool_timeout(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented defaults of `run_tools`: ``max_rounds`` 8, ``tool_timeout`` 60 seconds."""
    from openrouter_registry.engine import toolloop

    seen: dict[str, Any] = {}

    async def capture(service: Any, prompt: Any, **kwargs: Any) -> str:
        seen.update(kwargs)
        return "ran"

    monkeypatch.setattr(toolloop, "run_tools", capture)
    async with _service(server, tmp_path) as service:
        assert await service.run_tools("Go", tools=[]) == "ran"
    assert seen["max_rounds"] == 8 and seen["tool_timeout"] == 60.0


async def test_a_batch_starts_at_16_rows_in_flight_by_default(server: Any, tmp_path: Path) -> None:
    """`service.batch` without ``concurrency`` allows 16 rows in flight (its summary: ``concurrency start 16``)."""
    async with _service(server, tmp_path) as service:
        run = service.batch([])
        async for _ in run:
            pass
    assert run.limiter.limit == 16 and run.summary().concurrency.start == 16


def test_the_blocking_batch_passes_16_rows_in_flight_by_default(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`OpenRouterSyncService.batch` without ``concurrency`` runs the async batch with 16 rows in flight."""
    from openrouter_registry.service import OpenRouterSyncService

    seen: list[int] = []
    with OpenRouterSyncService(_service(server, tmp_path)) as client:
        original = client.service.batch

        def spy(items: Any, **kwargs: Any) -> Any:
            seen.append(kwargs["concurrency"])
            return original(items, **kwargs)

        monkeypatch.setattr(client.service, "batch", spy)
        assert client.batch([]) == []
    assert seen == [16]


def test_the_blocking_load_catalog_does_not_refresh_by_default(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`OpenRouterSyncService.load_catalog()` asks for ``refresh=False``; ``refresh=True`` is passed on."""
    from openrouter_registry.service import OpenRouterSyncService

    seen: list[bool] = []
    with OpenRouterSyncService(_service(server, tmp_path)) as client:

        async def spy(*, refresh: bool = False) -> None:
            seen.append(refresh)

        monkeypatch.setattr(client.service, "load_catalog", spy)
        client.load_catalog()
        client.load_catalog(refresh=True)
    assert seen == [False, True]
