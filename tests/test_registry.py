"""Resolution: best match, variant suffixes, tie-breaking, caching, run-time registration, headers."""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest

from openrouter_registry import PluginError, Registry, Settings
from openrouter_registry.plugin import Candidate, Generator, Match, ModelTable, hookimpl
from openrouter_registry.http.headers import with_authorization

SETTINGS = Settings.from_env({}, api_key="sk-or-v1-registry-test-key")


@pytest.mark.parametrize(
    ("model", "generator", "plugin", "match"),
    [
        ("openai/gpt-4o", "OpenRouterGPT4O", "openrouter_gpt", "exact"),
        ("openai/gpt-4o-mini", "OpenRouterGPT4OMini", "openrouter_gpt", "exact"),
        ("anthropic/claude-3.5-sonnet", "OpenRouterClaude35Sonnet", "openrouter_claude", "exact"),
        ("meta-llama/llama-3.3-70b-instruct", "OpenRouterLlama33_70B", "openrouter_llama", "exact"),
        # other members of a family
        ("openai/gpt-4o-2024-11-20", "OpenRouterGPT4O", "openrouter_gpt", "family"),
        ("openai/gpt-4o-mini-2024-07-18", "OpenRouterGPT4OMini", "openrouter_gpt", "family"),
        ("openai/gpt-4-turbo", "OpenRouterGPT", "openrouter_gpt", "family"),
        ("anthropic/claude-3-opus", "OpenRouterClaude", "openrouter_claude", "family"),
        ("meta-llama/llama-3.1-8b-instruct", "OpenRouterLlama", "openrouter_llama", "family"),
        # aliases and variant suffixes
        ("anthropic/claude-3-5-sonnet", "OpenRouterClaude35Sonnet", "openrouter_claude", "alias"),
        ("openai/gpt-4o:nitro", "OpenRouterGPT4O", "openrouter_gpt", "alias"),
        ("anthropic/claude-3.5-sonnet:floor", "OpenRouterClaude35Sonnet", "openrouter_claude", "alias"),
        ("meta-llama/llama-3.3-70b-instruct:free", "OpenRouterLlama33_70B", "openrouter_llama", "alias"),
        ("meta-llama/llama-3.1-8b-instruct:online", "OpenRouterLlama", "openrouter_llama", "family"),
        # everything else
        ("google/gemini-pro-1.5", "OpenRouterGeneric", "openrouter_registry", "fallback"),
        ("mistralai/mixtral-8x7b-instruct", "OpenRouterGeneric", "openrouter_registry", "fallback"),
        ("openrouter/auto", "OpenRouterGeneric", "openrouter_registry", "fallback"),
    ],
)
def test_best_match(model: str, generator: str, plugin: str, match: str) -> None:
    resolution = Registry(environ={}).resolve(model, SETTINGS)
    assert type(resolution.generator).__name__ == generator
    assert (resolution.plugin, str(resolution.match)) == (plugin, match)
    assert resolution.generator.model == model  # the id that is sent keeps its variant suffix


def test_known_model_facts() -> None:
    registry = Registry(environ={})
    facts = {
        m: (g.context_window, g.max_output_tokens)
        for m in ("openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "meta-llama/llama-3.3-70b-instruct")
        for g in [registry.generator(m, SETTINGS)]
    }
    assert facts == {
        "openai/gpt-4o": (128_000, 16_384),
        "openai/gpt-4o-mini": (128_000, 16_384),
        "anthropic/claude-3.5-sonnet": (200_000, 8_192),
        "meta-llama/llama-3.3-70b-instruct": (131_072, 16_384),
    }


def test_every_candidate_is_reported_best_first() -> None:
    resolution = Registry(environ={}).resolve("openai/gpt-4o", SETTINGS)
    assert [(c.plugin, str(c.match)) for c in resolution.candidates] == [
        ("openrouter_gpt", "exact"),
        ("openrouter_registry", "fallback"),
    ]
    data = resolution.to_dict()
    assert data["generator"] == "OpenRouterGPT4O" and data["structured_modes"] == ["json_schema", "json_object", "prompt"]


def test_missing_family_plugin_falls_back_to_generic() -> None:
    registry = Registry(environ={"OPENROUTER_REGISTRY_PLUGINS": "openrouter_gpt"})
    assert registry.resolve("anthropic/claude-3.5-sonnet", SETTINGS).plugin == "openrouter_registry"
    assert registry.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_gpt"


def test_default_model_comes_from_settings() -> None:
    registry = Registry(environ={})
    settings = Settings.from_env({"OPENROUTER_MODEL": "anthropic/claude-3.5-sonnet"})
    assert registry.resolve(None, settings).model == "anthropic/claude-3.5-sonnet"


# --- third-party plugins and tie-breaking ----------------------------------------------------------


class AcmeGenerator(Generator):
    context_window = 32_000
    description = "Acme"


class AcmeFastGenerator(Generator):
    description = "Acme fast"


def _plugin(name: str, candidate: Candidate | None, counter: list[str] | None = None) -> types.SimpleNamespace:
    @hookimpl
    def resolve_generator(model: str) -> Candidate | None:
        if counter is not None:
            counter.append(model)
        return candidate if model.startswith("acme/") else None

    return types.SimpleNamespace(__name__=name, resolve_generator=resolve_generator)


def test_third_party_plugin_in_a_few_lines() -> None:
    registry = Registry(environ={})

    class AcmePlugin:
        table = ModelTable(exact={"acme/writer-1": AcmeGenerator})

        @hookimpl
        def resolve_generator(self, model: str) -> Candidate | None:
            return self.table.match(model)

        @hookimpl
        def claimed_models(self) -> list[str]:
            return self.table.claimed()

    name = registry.register(AcmePlugin(), name="acme")
    resolution = registry.resolve("acme/writer-1", SETTINGS)
    assert (name, type(resolution.generator), resolution.match) == ("acme", AcmeGenerator, Match.EXACT)
    assert [p.models for p in registry.plugins() if p.name == "acme"] == [("acme/writer-1",)]


def test_plugin_overrides_a_builtin_for_one_model_id() -> None:
    registry = Registry(environ={})

    class Override:
        @hookimpl
        def resolve_generator(self, model: str) -> Candidate | None:
            if model == "openai/gpt-4o":
                return Candidate(AcmeGenerator, Match.EXACT, priority=10)
            return None

    registry.register(Override(), name="override")
    assert type(registry.generator("openai/gpt-4o", SETTINGS)) is AcmeGenerator
    assert type(registry.generator("openai/gpt-4o-mini", SETTINGS)).__name__ == "OpenRouterGPT4OMini"


@pytest.mark.parametrize("order", [("zeta", "alpha"), ("alpha", "zeta")])
def test_equal_ties_break_by_plugin_name_not_registration_order(order: tuple[str, str]) -> None:
    registry = Registry(environ={})
    gens = {"alpha": AcmeGenerator, "zeta": AcmeFastGenerator}
    for name in order:
        registry.register(_plugin(name, Candidate(gens[name], Match.EXACT)), name=name)
    resolution = registry.resolve("acme/x", SETTINGS)
    assert resolution.plugin == "alpha"
    assert resolution.tie_break == "alpha and zeta both match exact at priority 0; plugin name order"
    assert "tie-break: alpha and zeta" in resolution.explain()


def test_priority_beats_plugin_name_and_match_beats_priority() -> None:
    registry = Registry(environ={})
    registry.register(_plugin("alpha", Candidate(AcmeGenerator, Match.EXACT)), name="alpha")
    registry.register(_plugin("zeta", Candidate(AcmeFastGenerator, Match.EXACT, priority=5)), name="zeta")
    registry.register(_plugin("mid", Candidate(AcmeGenerator, Match.FAMILY, priority=100)), name="mid")
    resolution = registry.resolve("acme/x", SETTINGS)
    assert resolution.plugin == "zeta"
    assert resolution.tie_break == "zeta and alpha both match exact; priority 5 > 0"
    assert [c.plugin for c in resolution.candidates] == ["zeta", "alpha", "mid", "openrouter_registry"]


def test_resolution_is_cached_until_plugins_change() -> None:
    registry = Registry(environ={})
    calls: list[str] = []
    registry.register(_plugin("counting", Candidate(AcmeGenerator, Match.EXACT), calls), name="counting")
    first = registry.resolve("acme/x", SETTINGS)
    assert registry.resolve("acme/x", SETTINGS) is first
    assert calls == ["acme/x"]
    registry.register(_plugin("other", None), name="other")
    assert registry.resolve("acme/x", SETTINGS) is not first
    assert calls == ["acme/x", "acme/x"]


def test_register_rejects_a_taken_name_and_an_invalid_plugin() -> None:
    registry = Registry(environ={})
    with pytest.raises(PluginError, match="already registered"):
        registry.register(_plugin("x", None), name="openrouter_gpt")

    @hookimpl
    def resolve_generator(modl: str) -> None:  # wrong argument name
        return None

    with pytest.raises(PluginError, match="modl"):
        registry.register(types.SimpleNamespace(resolve_generator=resolve_generator), name="typo")
    assert registry.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_gpt"


def test_unknown_hook_name_fails_validation() -> None:
    registry = Registry(environ={})

    @hookimpl
    def resolve_generater(model: str) -> None:
        return None

    with pytest.raises(PluginError, match="'resolve_generater' is not an openrouter_registry hook; did you mean 'resolve_generator'"):
        registry.register(types.SimpleNamespace(resolve_generater=resolve_generater), name="misspelt")


# --- headers ---------------------------------------------------------------------------------------


def _header_plugin(headers: Any) -> object:
    class P:
        @hookimpl
        def build_headers(self, model: str, settings: Settings) -> Any:
            return headers

    return P()


def test_headers_core_first_plugins_on_top_authorization_last() -> None:
    registry = Registry(environ={})
    settings = Settings.from_env(
        {"OPENROUTER_HTTP_REFERER": "https://app.example", "OPENROUTER_SITE_NAME": "My App"}, api_key="sk-or-v1-abc"
    )
    registry.register(_header_plugin({"x-title": "Plugin Title", "X-Trace": "t1"}), name="tracing")
    headers = registry.build_headers("openai/gpt-4o", settings)
    assert headers == {"HTTP-Referer": "https://app.example", "x-title": "Plugin Title", "X-Trace": "t1"}
    assert with_authorization(headers, settings)["Authorization"].reveal() == "Bearer sk-or-v1-abc"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Bad": "a\r\nInjected: 1"}, "CR or LF"),
        ({"X-Bad\n": "a"}, "CR or LF"),
        ({"X-Unicode": "caf\u00e9"}, "non-ASCII"),
        ({"Host": "evil.example"}, "set by the core"),
        ({"Authorization": "Bearer stolen"}, "the plugin's value was dropped, not sent"),
    ],
)
def test_an_unsendable_header_is_dropped_alone_with_one_error_line(
    headers: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(environ={})
    registry.register(_header_plugin({**headers, "X-Sloppy-Good": "kept"}), name="sloppy")
    registry.register(_header_plugin({"X-Good": "yes"}), name="tidy")
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        first = registry.build_headers("openai/gpt-4o", SETTINGS)
        second = registry.build_headers("openai/gpt-4o", SETTINGS)
    assert first == second == {"X-Sloppy-Good": "kept", "X-Good": "yes"}
    info = {p.name: p for p in registry.plugins()}["sloppy"]
    assert info.status == "degraded" and message in (info.error or "")
    assert (info.error or "").startswith("hook build_headers returned an unsendable header for model 'openai/gpt-4o': ")
    # reported once, at registration (the load-time check), not again for each request
    lines = [r.getMessage() for r in caplog.records if "sloppy" in r.getMessage()]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("plugin 'sloppy' (registered at run time): ")
    assert lines[0].endswith("; header dropped, not sent")
    assert with_authorization(first, SETTINGS)["Authorization"].reveal() == "Bearer sk-or-v1-registry-test-key"


def test_a_header_problem_is_found_when_the_plugin_loads(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry(environ={})
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        registry.register(_header_plugin({"X-Title": "Caf\u00e9 Bot"}), name="cafe")
    info = {p.name: p for p in registry.plugins()}["cafe"]
    assert (info.status, info.headers, info.header_names) == ("degraded", "none", ())
    assert "non-ASCII" in (info.error or "")
    assert [r.getMessage() for r in caplog.records] == [
        "plugin 'cafe' (registered at run time): hook build_headers returned an unsendable header for model "
        "'openrouter-registry/probe': header 'X-Title' has non-ASCII characters in its value; header dropped, not sent"
    ]


def test_static_and_per_model_headers_are_told_apart_at_load() -> None:
    registry = Registry(environ={})
    registry.register(_header_plugin({"X-Team": "search"}), name="static")

    class PerModel:
        @hookimpl
        def build_headers(self, model: str) -> dict[str, str]:
            return {"X-Model": model}

    registry.register(PerModel(), name="per_model")
    infos = {p.name: p for p in registry.plugins()}
    assert (infos["static"].headers, infos["static"].header_names) == ("static", ("X-Team",))
    assert (infos["per_model"].headers, infos["per_model"].status) == ("per-model", "loaded")
    assert infos["openrouter_gpt"].headers is None


def test_build_headers_returning_a_non_mapping_is_skipped() -> None:
    registry = Registry(environ={})
    registry.register(_header_plugin(["not", "a", "mapping"]), name="listy")
    assert registry.build_headers("openai/gpt-4o", SETTINGS) == {}
    info = {p.name: p for p in registry.plugins()}["listy"]
    assert info.status == "degraded" and "not a mapping" in (info.error or "")
