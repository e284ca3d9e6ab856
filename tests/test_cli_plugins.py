"""`openrouter-registry plugins` shows every plugin's state and last error, and every warning or plugin
failure the CLI prints is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_plugin_loading import install_fake_distribution

CAFE = """
    from openrouter_registry.plugin import hookimpl

    @hookimpl
    def build_headers(model, settings):
        return {"X-Title": "Caf\\u00e9 Bot", "X-Cafe": "ok"}
"""

TEAM = """
    from openrouter_registry.plugin import hookimpl

    @hookimpl
    def build_headers(model):
        return {"X-Team": "search"} if model.startswith("acme/") else None
"""


def run_cli(*args: str, site: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER")}
    full_env.update(env)
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join([str(site), *sys.path])
    return subprocess.run(
        [sys.executable, "-m", "openrouter_registry", *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def test_switch_warnings_are_one_line_each() -> None:
    done = run_cli(
        "resolve", "google/gemini-pro-1.5", OPENROUTER_REGISTRY_DISABLE="openrouter_registry, opnrouter_gpt"
    )
    assert done.returncode == 0
    assert done.stdout == "google/gemini-pro-1.5 -> OpenRouterGeneric (openrouter_registry, fallback)\n"
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("openrouter-registry: OPENROUTER_REGISTRY_DISABLE names ") for line in lines)
    assert "did you mean 'openrouter_gpt'?" in done.stderr and "cannot be disabled" in done.stderr


def test_plugins_shows_states_errors_and_headers(tmp_path: Path) -> None:
    install_fake_distribution(tmp_path, "acme-cafe", "1.0", "acme_cafe", CAFE, "acme_cafe")
    install_fake_distribution(tmp_path, "acme-team", "2.0", "acme_team", TEAM, "acme_team")
    install_fake_distribution(tmp_path, "acme-broken", "0.1", "acme_broken", "import not_installed_anywhere\n", "acme_broken")
    done = run_cli("plugins", site=tmp_path)
    assert done.returncode == 0
    text = done.stdout
    assert (
        "acme_broken  [failed]  acme-broken 0.1\n"
        "    error: import failed: ModuleNotFoundError: No module named 'not_installed_anywhere'\n"
    ) in text
    assert (
        "acme_cafe  [degraded]  acme-cafe 1.0\n"
        "    last error: hook build_headers returned an unsendable header for model 'openai/gpt-4o': "
        "header 'X-Title' has non-ASCII characters in its value\n"
        "    failed calls since load, all hooks and generator methods: 2\n"
        "    hooks: build_headers\n"
        "    headers: the same for every model (X-Cafe), checked at load\n"
    ) in text
    assert (
        "acme_team  [loaded]  acme-team 2.0\n"
        "    hooks: build_headers\n"
        "    headers: depend on the model, checked at each request\n"
    ) not in text  # no claimed ids: both probe models get no headers
    assert "acme_team  [loaded]  acme-team 2.0\n    hooks: build_headers\n" in text
    errors = done.stderr.splitlines()
    assert len(errors) == 2, done.stderr  # one line per problem, not per call
    assert errors[0].startswith("openrouter-registry: plugin 'acme_broken' (acme-broken 0.1) disabled: import failed")
    assert errors[1] == (
        "openrouter-registry: plugin 'acme_cafe' (acme-cafe 1.0): hook build_headers returned an unsendable header "
        "for model 'openrouter-registry/probe': header 'X-Title' has non-ASCII characters in its value; "
        "header dropped, not sent"
    )
    data = {p["name"]: p for p in json.loads(run_cli("plugins", "--json", site=tmp_path).stdout)}
    assert {k: data["acme_cafe"][k] for k in ("status", "failures", "headers", "header_names")} == {
        "status": "degraded",
        "failures": 2,
        "headers": "static",
        "header_names": ["X-Cafe"],
    }
