"""Behaviours of the plugin registry, model matching, learned modes and the service that a constant
mutation pre-screen found unpinned (issue 24): each test fails on one constant changed by one.

Judged equivalent (no behaviour a user can see changes) are listed in the comments below."""

# - plugins/registry.py:78 _CACHE_SIZE 1024 -> 1025: the bound of the resolution cache; past it the cache is
#   emptied and models are resolved again to the same answers: only speed changes.
# - plugins/registry.py:223 self._epoch = 0 -> 1: the epoch is only compared with itself (cache validity),
#   never shown; any start value behaves the same.
# - plugins/registry.py:359 self._epoch += 1 -> += 2: the same; only "has it changed" is ever asked.
# - plugins/registry.py:139 _Record.bad_headers = False -> True: reset to False whenever a plugin is loaded
#   (line 351), and only read for a loaded plugin (its shown status, its request headers).

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


# --- learned modes (models/modes.py) ----------------------------------------------------------------


def _mode_settings(tmp_path: Path) -> Any:
    from openrouter_registry import Settings

    return Settings.from_env({}, base_url="http://127.0.0.1:9/api/v1", api_key="k", cache_dir=str(tmp_path))


def test_the_modes_file_is_format_1_both_written_and_read(tmp_path: Path) -> None:
    """A learned mode is saved as ``{"format": 1, ...}``, and a format-1 file written earlier is read back."""
    from openrouter_registry.models.modes import ModeMemory

    settings = _mode_settings(tmp_path)
    memory = ModeMemory()
    memory.fall_back("acme/a", "json_schema", "json_object", settings=settings)
    [path] = list(tmp_path.rglob("modes-*.json"))
    assert json.loads(path.read_text())["format"] == 1
    entry = {"model": "acme/b", "route": "", "mode": "prompt", "learned_at": time.time()}
    path.write_text(json.dumps({"format": 1, "modes": [entry]}))
    assert ModeMemory().get("acme/b", settings=settings) == "prompt"


def test_a_modes_file_of_4_mib_is_read_and_one_byte_more_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The learned-modes file is read up to 4 MiB (bound lowered here to keep the test small)."""
    from openrouter_registry.models import modes
    from openrouter_registry.models.modes import ModeMemory

    assert modes.MAX_MODES_BYTES == 4 * 1024 * 1024 == 4_194_304
    settings = _mode_settings(tmp_path)
    ModeMemory().fall_back("acme/a", "json_schema", "json_object", settings=settings)
    [path] = list(tmp_path.rglob("modes-*.json"))
    size = len(path.read_bytes())
    monkeypatch.setattr(modes, "MAX_MODES_BYTES", size)
    assert ModeMemory().get("acme/a", settings=settings) == "json_object"
    monkeypatch.setattr(modes, "MAX_MODES_BYTES", size - 1)
    assert ModeMemory().get("acme/a", settings=settings) is None


def test_the_routing_key_of_a_learned_mode_sorts_its_keys() -> None:
    """``route_of`` is the same key whatever order ``provider`` and ``models`` were given in."""
    from openrouter_registry.models.modes import route_of

    route = route_of({"provider": {"only": ["x"]}, "models": ["a/b"], "temperature": 1})
    assert route == '{"models":["a/b"],"provider":{"only":["x"]}}'
    assert route_of({}) == "" and route_of({"temperature": 1}) == ""


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_the_warning_for_malformed_learned_modes_counts_them(
    bad: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each malformed entry of the modes file (an unknown mode, an infinite time) counts once in the
    warning; none gives no warning."""
    from openrouter_registry.models.modes import ModeMemory

    settings = _mode_settings(tmp_path)
    ModeMemory().fall_back("acme/a", "json_schema", "json_object", settings=settings)
    [path] = list(tmp_path.rglob("modes-*.json"))
    data = json.loads(path.read_text())
    wrong = [{"model": "acme/x", "route": "", "mode": "no-such-mode", "learned_at": time.time()},
             {"model": "acme/y", "route": "", "mode": "prompt", "learned_at": "1e999"}][:bad]
    path.write_text(json.dumps({**data, "modes": data["modes"] + wrong}))
    caplog.clear()
    with caplog.at_level("WARNING", logger="openrouter_registry"):
        assert ModeMemory().get("acme/a", settings=settings) == "json_object"
    shown = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert shown == ([f"Ignored {bad} malformed entries in the learned-modes file {path}"] if bad else [])


def test_resolve_explain_numbers_the_candidates_from_1() -> None:
    """``resolve --explain`` lists the candidates as ``1.``, ``2.``... best first, the core's fallback last."""
    from openrouter_registry import Registry

    lines = Registry(environ={}).resolve("acme/unknown-model").explain().splitlines()
    listed = [line for line in lines if line.startswith("  ") and line.strip()[:1].isdigit()]
    assert listed and [line.split(".")[0].strip() for line in listed] == [str(i) for i in range(1, len(listed) + 1)]
    assert listed[0].startswith("  1. fallback")


# --- the plugin registry (plugins/registry.py) -------------------------------------------------------


@pytest.mark.parametrize(("odd_one", "shown"), [("acme/m4", "per-model"), ("acme/m5", "static")])
def test_build_headers_is_probed_with_the_first_5_claimed_models(odd_one: str, shown: str) -> None:
    """At load, ``build_headers`` is asked for the probe model, the default model and the first 5 claimed ids
    (sorted): headers that differ only for the 6th id are not seen, and the listing shows ``static``."""
    from openrouter_registry import Registry
    from openrouter_registry.plugin import hookimpl

    class Headers:
        @hookimpl
        def claimed_models(self) -> Any:
            return [f"acme/m{i}" for i in range(7)]

        @hookimpl
        def build_headers(self, model: str) -> Any:
            return {"X-Acme": "odd" if model == odd_one else "same"}

    registry = Registry(environ={})
    registry.register(Headers(), name="headers")
    [info] = [p for p in registry.plugins() if p.name == "headers"]
    assert info.headers == shown


def test_the_documented_parser_deadline_and_pause() -> None:
    """docs/guides/errors.md: a plugin's ``parse_structured`` call may take 2 s; a parser past it is skipped
    for 60 s; a hook is probed after 5 failures in a row."""
    from openrouter_registry.plugins import registry as registry_module

    assert registry_module.PARSE_DEADLINE == 2.0 and registry_module.HUNG_PARSER_PAUSE == 60.0
    assert registry_module.DISABLE_AFTER == 5


def test_a_plugin_s_fallback_against_the_core_s_fallback_is_a_tie_broken_by_priority() -> None:
    """Two candidates with the same match (a plugin's fallback and the core's) are a tie, and
    ``tie_break`` says how it was broken."""
    from openrouter_registry import Registry
    from openrouter_registry.plugin import Generator, hookimpl
    from openrouter_registry.plugins.matching import Candidate

    class Mine(Generator):
        pass

    class Fallback:
        @hookimpl
        def resolve_generator(self, model: str) -> Any:
            return Candidate(Mine, "fallback", priority=1)

    registry = Registry(environ={})
    registry.register(Fallback(), name="alpha")
    resolution = registry.resolve("acme/unknown-model")
    assert [c.plugin for c in resolution.candidates] == ["alpha", "openrouter_registry"]
    assert resolution.tie_break == "alpha and openrouter_registry both match fallback; priority 1 > 0"


def test_a_freshly_registered_plugin_is_listed_loaded_with_no_failures() -> None:
    """A new plugin shows ``loaded`` (not ``degraded``) and 0 failures in ``openrouter-registry plugins``;
    a `PluginInfo` built without a count has 0 failures."""
    from openrouter_registry import Registry
    from openrouter_registry.plugin import hookimpl
    from openrouter_registry.plugins.registry import PluginInfo

    class Quiet:
        @hookimpl
        def claimed_models(self) -> Any:
            return ["acme/m"]

    registry = Registry(environ={})
    registry.register(Quiet(), name="quiet")
    [info] = [p for p in registry.plugins() if p.name == "quiet"]
    assert (info.status, info.failures, info.models) == ("loaded", 0, ("acme/m",))
    assert PluginInfo("x", None, None, "loaded").failures == 0


@pytest.mark.parametrize(("status", "message", "mode", "refusal"), [
    (400, "json_schema is not supported", None, True),
    (422, "json_schema is not supported", None, False),
    (500, "json_schema is not supported", None, False),
    (401, "json mode: no auth", None, False),
    (404, "No endpoints found that support tool use", "tools", True),
    (404, "No endpoints found that support tool use", "json_schema", False),
])
def test_only_a_400_naming_json_mode_or_a_no_endpoints_404_is_a_mode_refusal(
    status: int, message: str, mode: Any, refusal: bool
) -> None:
    """A mode refusal (so a fallback to the next mode) is a 400 naming structured output or the 404s
    saying no provider can; any other error is raised to the caller."""
    from openrouter_registry.models.modes import is_mode_refusal
    from openrouter_registry.replies.decode import error_for

    error = error_for(status, {"error": {"message": message, "code": status}}, model="acme/m")
    assert is_mode_refusal(error, mode) is refusal


def test_an_exact_match_over_the_core_fallback_needs_no_tie_break() -> None:
    """Candidates with different matches are no tie: ``tie_break`` is None, ``--explain`` says none needed."""
    from openrouter_registry import Registry
    from openrouter_registry.plugin import Generator, ModelTable, hookimpl

    class Mine(Generator):
        pass

    table = ModelTable(exact={"acme/m": Mine})

    class Exact:
        @hookimpl
        def resolve_generator(self, model: str) -> Any:
            return table.match(model)

    registry = Registry(environ={})
    registry.register(Exact(), name="exact")
    resolution = registry.resolve("acme/m")
    assert [c.plugin for c in resolution.candidates] == ["exact", "openrouter_registry"]
    assert resolution.tie_break is None and resolution.explain().endswith("tie-break: none needed")


def test_a_plugin_registered_three_times_without_a_name_gets_suffixes_2_and_3() -> None:
    """`Registry.register` names a repeated default name ``name#2``, then ``name#3``."""
    from openrouter_registry import Registry
    from openrouter_registry.plugin import hookimpl

    class Same:
        @hookimpl
        def claimed_models(self) -> Any:
            return []

    registry = Registry(environ={})
    first, second, third = (registry.register(Same()) for _ in range(3))
    assert (second, third) == (f"{first}#2", f"{first}#3") and "#" not in first


def test_registering_an_invalid_plugin_raises_and_logs_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    """`Registry.register` of a plugin with an unknown hook raises `PluginError`; nothing is logged for it."""
    from openrouter_registry import Registry
    from openrouter_registry.errors import PluginError
    from openrouter_registry.plugin import hookimpl

    class Wrong:
        @hookimpl
        def no_such_hook(self) -> Any:
            return None

    registry = Registry(environ={})
    with caplog.at_level("DEBUG", logger="openrouter_registry"), pytest.raises(PluginError):
        registry.register(Wrong(), name="wrong")
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_headers_seen_for_only_one_probed_model_are_listed_as_static() -> None:
    """A ``build_headers`` that answers for the probe model only (and raises for the others) still registers;
    its listing shows the headers it gave: ``static`` with their names."""
    from openrouter_registry import Registry
    from openrouter_registry.plugin import hookimpl
    from openrouter_registry.plugins.registry import PROBE_MODEL

    class OneModel:
        @hookimpl
        def build_headers(self, model: str) -> Any:
            if model != PROBE_MODEL:
                raise RuntimeError("no headers for this model")
            return {"X-Acme": "1"}

    registry = Registry(environ={})
    registry.register(OneModel(), name="one")
    [info] = [p for p in registry.plugins() if p.name == "one"]
    assert (info.headers, info.header_names) == ("static", ("X-Acme",))
