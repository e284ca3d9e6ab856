"""The isolation rule: a failing hook call is skipped for that call; bad data never disables a plugin;
only a plugin that keeps failing, even on harmless input, is disabled. Plus the switches and names
that must never crash the registry or fail silently."""

from __future__ import annotations

import json
import logging
import threading
import types
from typing import Any

import pytest

from openrouter_registry import PluginError, Registry, Settings
from openrouter_registry.plugin import Candidate, Generator, Match, ModelTable, hookimpl
from openrouter_registry.plugins.registry import DISABLE_AFTER, PROBE_MODEL

SETTINGS = Settings.from_env({}, api_key="sk-or-v1-isolation-test-key")
HOSTILE = "[" * 100_000  # json.loads raises RecursionError on it


class AcmeWriter(Generator):
    description = "Acme"


def _statuses(registry: Registry) -> dict[str, tuple[str, int, str | None]]:
    return {p.name: (p.status, p.failures, p.error) for p in registry.plugins()}


class NaiveParser:
    """The parser people write first: a bare json.loads (raises on any bad text)."""

    @hookimpl
    def parse_structured(self, model: str, text: str) -> Any:
        if not model.startswith("acme/"):
            return None
        return json.loads(text)


def test_hostile_replies_never_disable_a_plugin(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry(environ={})
    registry.register(NaiveParser(), name="naive")
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        for _ in range(4 * DISABLE_AFTER):
            registry.parse_structured("acme/writer-1", HOSTILE, None)  # the core's parser goes on
        status, failures, error = _statuses(registry)["naive"]
    assert (status, failures) == ("degraded", 4 * DISABLE_AFTER)
    assert error is not None and "RecursionError" in error and "model 'acme/writer-1'" in error
    # the plugin still parses the next good reply, and then it is healthy again
    assert registry.parse_structured("acme/writer-1", '{"a": 1}', None) == {"a": 1}
    assert _statuses(registry)["naive"][0] == "loaded"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # once per plugin, hook and exception type
    assert errors[0].startswith(
        "plugin 'naive' (registered at run time): hook parse_structured raised RecursionError: "
    )
    assert "for model 'acme/writer-1'; skipped for this call" in errors[0]


def test_a_failing_parser_passes_the_reply_to_the_next_one() -> None:
    registry = Registry(environ={})
    registry.register(NaiveParser(), name="naive")
    # not JSON for json.loads: the plugin raises, the core's repairing parser recovers it
    assert registry.parse_structured("acme/writer-1", 'Sure! ```json\n{"a": 1,}\n```', None) == {"a": 1}


def test_each_failure_has_its_traceback_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry(environ={})
    registry.register(NaiveParser(), name="naive")
    with caplog.at_level(logging.DEBUG, logger="openrouter_registry"):
        registry.parse_structured("acme/x", "not json", None)
        registry.parse_structured("acme/x", "still not json", None)
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "naive" in r.getMessage()]
    assert len(debug) == 2 and all(r.exc_info and r.exc_info[0] is json.JSONDecodeError for r in debug)


def test_a_hook_that_fails_on_every_input_is_disabled_after_the_probe(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry(environ={})
    seen: list[str] = []

    class Broken:
        @hookimpl
        def parse_structured(self, model: str, text: str) -> Any:
            seen.append(text)
            return undefined_name  # type: ignore[name-defined]  # noqa: F821

    registry.register(Broken(), name="broken")
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        for i in range(DISABLE_AFTER - 1):
            assert registry.parse_structured("acme/x", f'{{"n": {i}}}', None) == {"n": i}
        assert _statuses(registry)["broken"][0] == "degraded"
        assert registry.parse_structured("acme/x", '{"n": 9}', None) == {"n": 9}
    status, failures, error = _statuses(registry)["broken"]
    assert (status, failures) == ("failed", DISABLE_AFTER)
    assert error == (
        f"hook parse_structured failed {DISABLE_AFTER} calls in a row and again on harmless input "
        f"(model {PROBE_MODEL!r}): NameError: name 'undefined_name' is not defined"
    )
    assert seen[-1] == "{}"  # the probe
    assert any(r.getMessage().startswith("plugin 'broken' (registered at run time) disabled: hook") for r in caplog.records)
    registry.parse_structured("acme/x", "{}", None)
    assert len(seen) == DISABLE_AFTER + 1  # no longer called


def test_a_success_in_between_resets_the_count() -> None:
    registry = Registry(environ={})
    registry.register(NaiveParser(), name="naive")
    for _ in range(3 * DISABLE_AFTER):
        for _ in range(DISABLE_AFTER - 1):
            registry.parse_structured("acme/x", "bad", None)
        assert registry.parse_structured("acme/x", "[1]", None) == [1]
    assert _statuses(registry)["naive"][:2] == ("loaded", 3 * DISABLE_AFTER * (DISABLE_AFTER - 1))


def test_a_lookup_that_raises_for_other_models_is_probed_with_its_own_model() -> None:
    registry = Registry(environ={})
    table = {"acme/writer-1": AcmeWriter}

    class Lookup:
        @hookimpl
        def resolve_generator(self, model: str) -> Candidate:
            return Candidate(table[model], Match.EXACT)  # KeyError for every other model

        @hookimpl
        def claimed_models(self) -> list[str]:
            return list(table)

    registry.register(Lookup(), name="lookup")
    for i in range(3 * DISABLE_AFTER):
        assert registry.resolve(f"google/model-{i}", SETTINGS).plugin == "openrouter_registry"
    assert _statuses(registry)["lookup"][0] == "degraded"
    assert registry.resolve("acme/writer-1", SETTINGS).plugin == "lookup"


def test_a_data_error_does_not_disable_even_when_it_always_happens() -> None:
    registry = Registry(environ={})

    class Picky:
        @hookimpl
        def parse_structured(self, text: str) -> Any:
            if len(text) > 1000:
                raise RecursionError("maximum recursion depth exceeded")
            return None

    registry.register(Picky(), name="picky")
    for _ in range(3 * DISABLE_AFTER):
        registry.parse_structured("acme/x", "x" * 2000, None)
    assert _statuses(registry)["picky"][0] == "degraded"


def test_a_contract_breach_is_a_failed_call() -> None:
    registry = Registry(environ={})

    class Garbage:
        @hookimpl
        def resolve_generator(self, model: str) -> Any:
            return "OpenRouterGPT4O"

    registry.register(Garbage(), name="garbage")
    assert registry.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_gpt"
    status, _, error = _statuses(registry)["garbage"]
    assert status == "degraded"
    assert error == "hook resolve_generator broke its contract for model 'openai/gpt-4o': resolve_generator returned str, not a Candidate or None"


def test_a_generator_that_cannot_be_built_gives_way_to_the_next_candidate() -> None:
    registry = Registry(environ={})

    class Exploding(Generator):
        def __init__(self, model: str, settings: Settings) -> None:
            raise ValueError("no")

    class Plugin:
        @hookimpl
        def resolve_generator(self, model: str) -> Candidate | None:
            return Candidate(Exploding, Match.EXACT, priority=99) if model == "openai/gpt-4o" else None

    registry.register(Plugin(), name="exploding")
    resolution = registry.resolve("openai/gpt-4o", SETTINGS)
    assert (resolution.plugin, [c.plugin for c in resolution.candidates]) == (
        "openrouter_gpt",
        ["openrouter_gpt", "openrouter_registry"],
    )
    assert "Exploding() raised ValueError: no" in (_statuses(registry)["exploding"][2] or "")


# --- the lock and concurrency ----------------------------------------------------------------------


def test_a_slow_hook_does_not_block_the_registry() -> None:
    registry = Registry(environ={})
    entered, release = threading.Event(), threading.Event()

    class Slow:
        @hookimpl
        def parse_structured(self, text: str) -> Any:
            if text == "slow":
                entered.set()
                release.wait(10)
            return None

    registry.register(Slow(), name="slow")
    parsing = threading.Thread(target=registry.parse_structured, args=("acme/x", "slow", None))
    parsing.start()
    try:
        assert entered.wait(10)
        others = threading.Thread(
            target=lambda: (
                registry.register(types.SimpleNamespace(__name__="late"), name="late"),
                registry.resolve("anthropic/claude-3.5-sonnet", SETTINGS),
                registry.parse_structured("acme/x", "[1]", None),
                registry.plugins(),
            )
        )
        others.start()
        others.join(10)
        assert not others.is_alive(), "the registry waited for a plugin hook"
    finally:
        release.set()
        parsing.join(10)


def test_failure_accounting_is_exact_under_threads() -> None:
    registry = Registry(environ={})
    registry.register(NaiveParser(), name="naive")
    threads, calls = 8, 200

    def work() -> None:
        for i in range(calls):
            # 3 bad replies, then a good one: never DISABLE_AFTER in a row within one thread, but
            # interleaved threads can line up failures: the probe then keeps the plugin loaded
            registry.parse_structured("acme/x", "[1]" if i % 4 == 3 else "bad", None)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    status, failures, _ = _statuses(registry)["naive"]
    assert status in ("loaded", "degraded") and failures == threads * calls * 3 // 4


# --- switches and names ----------------------------------------------------------------------------


def test_disabling_the_core_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        registry = Registry(environ={"OPENROUTER_REGISTRY_DISABLE": "openrouter_registry"})
        resolution = registry.resolve("google/gemini-pro-1.5", SETTINGS)
    assert (resolution.plugin, str(resolution.match)) == ("openrouter_registry", "fallback")
    assert _statuses(registry)["openrouter_registry"][0] == "loaded"
    assert [r.getMessage() for r in caplog.records] == [
        "OPENROUTER_REGISTRY_DISABLE names the core plugin 'openrouter_registry', which cannot be disabled "
        "(it serves every model no family plugin claims); ignored"
    ]
    with pytest.raises(PluginError, match="core plugin cannot be unregistered"):
        registry.unregister("openrouter_registry")


def test_resolution_always_has_the_fallback_candidate() -> None:
    registry = Registry(environ={})
    registry.plugin_manager.unregister(name="openrouter_registry")  # even behind the registry's back
    registry._changed()
    resolution = registry.resolve("google/gemini-pro-1.5", SETTINGS)
    assert (type(resolution.generator).__name__, resolution.plugin) == ("OpenRouterGeneric", "openrouter_registry")


@pytest.mark.parametrize(
    ("variable", "value", "warning"),
    [
        (
            "OPENROUTER_REGISTRY_DISABLE",
            "opnrouter_gpt",
            "OPENROUTER_REGISTRY_DISABLE names 'opnrouter_gpt', which matches no installed plugin; did you mean "
            "'openrouter_gpt'",
        ),
        (
            "OPENROUTER_REGISTRY_PLUGINS",
            "openrouter_gpt,openrouter_lama",
            "OPENROUTER_REGISTRY_PLUGINS names 'openrouter_lama', which matches no installed plugin; did you mean "
            "'openrouter_llama'",
        ),
        ("OPENROUTER_REGISTRY_DISABLE", "acme_*", "OPENROUTER_REGISTRY_DISABLE names 'acme_*', which matches no"),
        (  # a short name, a word of the installed one: suggested too
            "OPENROUTER_REGISTRY_DISABLE",
            "claude",
            "OPENROUTER_REGISTRY_DISABLE names 'claude', which matches no installed plugin; did you mean "
            "'openrouter_claude'?",
        ),
        (
            "OPENROUTER_REGISTRY_PLUGINS",
            "openrouter_gpt,Llama",
            "OPENROUTER_REGISTRY_PLUGINS names 'Llama', which matches no installed plugin; did you mean "
            "'openrouter_llama'?",
        ),
    ],
)
def test_a_switch_name_matching_no_plugin_is_warned_about(
    variable: str, value: str, warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        Registry(environ={variable: value}).plugins()
    (record,) = caplog.records
    assert record.getMessage().startswith(warning)
    assert "(installed plugins: openrouter_claude, openrouter_gpt, openrouter_llama, openrouter_registry)" in record.getMessage()


def test_switches_accept_distribution_names_and_globs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        by_dist = Registry(environ={"OPENROUTER_REGISTRY_DISABLE": "OpenRouter-Claude"})
        assert {p.name: p.status for p in by_dist.plugins()}["openrouter_claude"] == "blocked"
        by_glob = Registry(environ={"OPENROUTER_REGISTRY_DISABLE": "openrouter_*"})
        statuses = {p.name: (p.status, p.error) for p in by_glob.plugins()}
        only = Registry(environ={"OPENROUTER_REGISTRY_PLUGINS": "openrouter-gpt"})
        assert {p.name for p in only.plugins() if p.status == "loaded"} == {"openrouter_registry", "openrouter_gpt"}
    assert statuses == {
        "openrouter_registry": ("loaded", None),  # the core is never disabled
        "openrouter_claude": ("blocked", "blocked by OPENROUTER_REGISTRY_DISABLE ('openrouter_*')"),
        "openrouter_gpt": ("blocked", "blocked by OPENROUTER_REGISTRY_DISABLE ('openrouter_*')"),
        "openrouter_llama": ("blocked", "blocked by OPENROUTER_REGISTRY_DISABLE ('openrouter_*')"),
    }
    assert caplog.records == []
    assert by_glob.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_registry"


def test_a_misspelt_argument_gets_did_you_mean() -> None:
    registry = Registry(environ={})

    @hookimpl
    def parse_structured(model: str, txt: str) -> None:
        return None

    with pytest.raises(PluginError) as caught:
        registry.register(types.SimpleNamespace(parse_structured=parse_structured), name="typo")
    assert str(caught.value) == (
        "plugin 'typo': invalid plugin: parse_structured() has an argument 'txt' that the hook does not pass "
        "(it passes model, text, schema); did you mean 'text'?"
    )


def test_register_without_a_name_gives_a_readable_one_and_reports_a_bad_plugin_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry(environ={})

    class AcmePlugin:
        @hookimpl
        def claimed_models(self) -> list[str]:
            return ["acme/writer-1"]

    first, second = registry.register(AcmePlugin()), registry.register(AcmePlugin())
    qualified = f"{__name__}.{AcmePlugin.__qualname__}"
    assert (first, second) == (qualified, f"{qualified}#2")
    module = types.ModuleType("acme_module")
    assert registry.register(module) == "acme_module"

    class Bad:
        @hookimpl
        def resolve_generater(self, model: str) -> None:
            return None

    with caplog.at_level(logging.DEBUG, logger="openrouter_registry"):
        with pytest.raises(PluginError, match="did you mean 'resolve_generator'"):
            registry.register(Bad())
    assert caplog.records == []  # the exception is the report
    info = {p.name: p for p in registry.plugins()}[f"{__name__}.{Bad.__qualname__}"]
    assert info.status == "failed" and info.distribution is None


@pytest.mark.parametrize("pattern", ["acme/writer-*", "acme/*", "*", "acme/writer-?"])
def test_model_table_refuses_a_glob_and_shows_the_regex(pattern: str) -> None:
    with pytest.raises(ValueError, match="looks like a glob.*regular expressions matched against the whole model id"):
        ModelTable(families=[(pattern, AcmeWriter)])


def test_model_table_families_are_full_match_regexes() -> None:
    table = ModelTable(families=[(r"acme/writer-.*", AcmeWriter), (r"acme/x\-*", AcmeWriter)])
    assert table.match("acme/writer-2") is not None and table.match("ACME/Writer-9:free") is not None
    assert table.match("acme/writer") is None and table.match("other/acme/writer-2") is None
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ModelTable(families=[("acme/(", AcmeWriter)])


def test_a_resolution_computed_while_plugins_changed_is_not_cached() -> None:
    registry = Registry(environ={})
    late = types.SimpleNamespace(
        __name__="late",
        resolve_generator=hookimpl(lambda model: Candidate(AcmeWriter, Match.EXACT) if model == "acme/x" else None),
    )

    class Registering:
        @hookimpl
        def resolve_generator(self, model: str) -> None:
            if not any(p.name == "late" for p in registry.plugins()):
                registry.register(late)  # another thread would do this while the hook runs
            return None

    registry.register(Registering(), name="registering")
    assert registry.resolve("acme/x", SETTINGS).plugin == "openrouter_registry"  # asked before 'late' existed
    assert registry.resolve("acme/x", SETTINGS).plugin == "late"  # not served from a stale cache


async def test_tasks_and_threads_share_the_registry_safely() -> None:
    import asyncio

    registry = Registry(environ={})
    registry.register(NaiveParser(), name="naive")

    async def task(i: int) -> Any:
        text = "[1]" if i % 2 else "bad"
        if i % 3:
            return await asyncio.to_thread(registry.parse_structured, "acme/x", text, None)
        return registry.parse_structured("acme/x", text, None)

    results = await asyncio.gather(*(task(i) for i in range(400)))
    assert [r for i, r in enumerate(results) if i % 2] == [[1]] * 200
    status, failures, _ = _statuses(registry)["naive"]
    assert status in ("loaded", "degraded") and failures == 200
