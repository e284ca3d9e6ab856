"""Entry-point discovery: real installed metadata, guarded loading, env switches, laziness."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openrouter_registry import Registry, Settings

SETTINGS = Settings.from_env({}, api_key="sk-or-v1-loading-test-key")


def install_fake_distribution(root: Path, dist: str, version: str, module: str, source: str, ep_name: str) -> None:
    """Write `module.py` and a `<dist>-<version>.dist-info` with an entry point, as pip would."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[openrouter_registry]\n{ep_name} = {module}\n")


GOOD = """
    from openrouter_registry.plugin import Generator, ModelTable, hookimpl

    class AcmeWriter(Generator):
        context_window = 64_000
        max_output_tokens = 4_096

    TABLE = ModelTable(exact={"acme/writer-1": AcmeWriter})

    @hookimpl
    def resolve_generator(model, settings):
        return TABLE.match(model)

    @hookimpl
    def claimed_models():
        return TABLE.claimed()
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("acme_")]:
        del sys.modules[name]


def test_a_real_entry_point_plugin_is_found_through_installed_metadata(site: Path) -> None:
    install_fake_distribution(site, "acme-writer", "1.2.3", "acme_writer", GOOD, "acme_writer")
    registry = Registry(environ={})
    resolution = registry.resolve("acme/writer-1", SETTINGS)
    assert (type(resolution.generator).__name__, resolution.plugin, str(resolution.match)) == (
        "AcmeWriter",
        "acme_writer",
        "exact",
    )
    info = {p.name: p for p in registry.plugins()}["acme_writer"]
    assert (info.distribution, info.version, info.status, info.models) == (
        "acme-writer",
        "1.2.3",
        "loaded",
        ("acme/writer-1",),
    )
    assert info.hooks == ("claimed_models", "resolve_generator")


def test_the_three_family_plugins_are_found_with_their_distributions() -> None:
    infos = {p.name: p for p in Registry(environ={}).plugins()}
    assert {n: (i.distribution, i.status) for n, i in infos.items()} == {
        "openrouter_registry": ("openrouter-registry", "loaded"),
        "openrouter_gpt": ("openrouter-gpt", "loaded"),
        "openrouter_claude": ("openrouter-claude", "loaded"),
        "openrouter_llama": ("openrouter-llama", "loaded"),
    }


def test_a_plugin_that_fails_to_import_is_skipped_and_reported(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    install_fake_distribution(site, "acme-broken", "0.9", "acme_broken", "import does_not_exist_anywhere\n", "acme_broken")
    install_fake_distribution(site, "acme-writer", "1.2.3", "acme_writer", GOOD, "acme_writer")
    registry = Registry(environ={})
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        infos = {p.name: p for p in registry.plugins()}
    broken = infos["acme_broken"]
    assert broken.status == "failed"
    assert "ModuleNotFoundError" in (broken.error or "") and "does_not_exist_anywhere" in (broken.error or "")
    assert (broken.distribution, broken.version) == ("acme-broken", "0.9")
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "acme_broken" in message and "acme-broken" in message and "0.9" in message
    # every other plugin and the generic fallback keep working
    assert registry.resolve("acme/writer-1", SETTINGS).plugin == "acme_writer"
    assert registry.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_gpt"
    assert registry.resolve("google/gemini-pro-1.5", SETTINGS).plugin == "openrouter_registry"


def test_a_plugin_that_exits_at_import_does_not_take_the_process_down(site: Path) -> None:
    install_fake_distribution(site, "acme-exit", "1.0", "acme_exit", "raise SystemExit(3)\n", "acme_exit")
    registry = Registry(environ={})
    assert {p.name: p.status for p in registry.plugins()}["acme_exit"] == "failed"
    assert registry.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_gpt"


def test_a_plugin_with_an_invalid_hookimpl_signature_is_skipped(site: Path) -> None:
    source = """
        from openrouter_registry.plugin import hookimpl

        @hookimpl
        def resolve_generator(model_name, settings):
            return None
    """
    install_fake_distribution(site, "acme-sig", "2.0", "acme_sig", source, "acme_sig")
    registry = Registry(environ={})
    info = {p.name: p for p in registry.plugins()}["acme_sig"]
    assert info.status == "failed" and "model_name" in (info.error or "")
    assert registry.resolve("openai/gpt-4o-mini", SETTINGS).plugin == "openrouter_gpt"


def test_a_plugin_whose_hook_raises_is_skipped_for_that_call(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = """
        from openrouter_registry.plugin import hookimpl

        @hookimpl
        def resolve_generator(model, settings):
            raise KeyError(model)
    """
    install_fake_distribution(site, "acme-raise", "1.0", "acme_raise", source, "acme_raise")
    registry = Registry(environ={})
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        assert registry.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_gpt"
    info = {p.name: p for p in registry.plugins()}["acme_raise"]
    assert info.status == "degraded" and "KeyError" in (info.error or "") and info.failures == 1
    # one line: plugin, distribution, version, hook, model, exception
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        "plugin 'acme_raise' (acme-raise 1.0): hook resolve_generator raised KeyError: 'openai/gpt-4o' "
        "for model 'openai/gpt-4o'; skipped for this call"
    )


def test_plugins_env_selects_plugins_and_empty_loads_none(site: Path) -> None:
    install_fake_distribution(site, "acme-writer", "1.2.3", "acme_writer", GOOD, "acme_writer")
    only = Registry(environ={"OPENROUTER_REGISTRY_PLUGINS": "acme_writer, openrouter_llama"})
    statuses = {p.name: p.status for p in only.plugins()}
    assert statuses == {
        "openrouter_registry": "loaded",
        "acme_writer": "loaded",
        "openrouter_llama": "loaded",
        "openrouter_gpt": "blocked",
        "openrouter_claude": "blocked",
    }
    none = Registry(environ={"OPENROUTER_REGISTRY_PLUGINS": ""})
    assert {p.name for p in none.plugins() if p.status == "loaded"} == {"openrouter_registry"}
    assert none.resolve("openai/gpt-4o", SETTINGS).plugin == "openrouter_registry"


def test_disable_env_blocks_a_plugin_without_importing_it(site: Path) -> None:
    install_fake_distribution(site, "acme-loud", "1.0", "acme_loud", "raise RuntimeError('imported!')\n", "acme_loud")
    registry = Registry(environ={"OPENROUTER_REGISTRY_DISABLE": "acme_loud,openrouter_claude"})
    infos = {p.name: p for p in registry.plugins()}
    assert (infos["acme_loud"].status, infos["openrouter_claude"].status) == ("blocked", "blocked")
    assert "acme_loud" not in sys.modules
    assert registry.resolve("anthropic/claude-3.5-sonnet", SETTINGS).plugin == "openrouter_registry"


def test_when_both_switches_name_a_plugin_disable_wins() -> None:
    environ = {"OPENROUTER_REGISTRY_PLUGINS": "openrouter_gpt,openrouter_claude", "OPENROUTER_REGISTRY_DISABLE": "openrouter-claude"}
    infos = {p.name: p for p in Registry(environ=environ).plugins()}
    assert (infos["openrouter_gpt"].status, infos["openrouter_claude"].status) == ("loaded", "blocked")
    assert infos["openrouter_claude"].error == "blocked by OPENROUTER_REGISTRY_DISABLE ('openrouter-claude')"
    assert infos["openrouter_llama"].error == "not in OPENROUTER_REGISTRY_PLUGINS"


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=60)


def test_import_is_lazy_no_plugins_no_http_no_jsonschema() -> None:
    code = (
        "import sys, json, openrouter_registry\n"
        "heavy = ['pluggy', 'httpx', 'jsonschema', 'cattrs', 'json_repair', 'openrouter_gpt', 'importlib.metadata']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_resolving_does_not_import_the_http_stack_or_jsonschema() -> None:
    code = (
        "import sys, json\n"
        "from openrouter_registry import get_registry\n"
        "r = get_registry().resolve('openai/gpt-4o')\n"
        "print(json.dumps([type(r.generator).__name__, [m for m in ('httpx', 'jsonschema', 'json_repair') if m in sys.modules]]))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["OpenRouterGPT4O", []]
