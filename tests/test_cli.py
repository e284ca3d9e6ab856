"""The `openrouter-registry` command: plugins, resolve, exit statuses and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from openrouter_registry.cli import main


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "openrouter_registry", *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def test_plugins_json_lists_every_plugin() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert set(plugins) == {"openrouter_registry", "openrouter_gpt", "openrouter_claude", "openrouter_llama"}
    gpt = plugins["openrouter_gpt"]
    assert set(gpt) >= {"name", "distribution", "version", "status", "error", "hooks", "models"}
    assert (gpt["distribution"], gpt["version"], gpt["status"], gpt["error"]) == ("openrouter-gpt", "0.1.0", "loaded", None)
    assert gpt["models"] == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert "resolve_generator" in gpt["hooks"]


def test_plugins_shows_blocked_plugins() -> None:
    result = run_cli("plugins", "--json", OPENROUTER_REGISTRY_DISABLE="openrouter_llama")
    statuses = {p["name"]: p["status"] for p in json.loads(result.stdout)}
    assert statuses["openrouter_llama"] == "blocked"


def test_resolve_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "anthropic/claude-3.5-sonnet:nitro", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {k: data[k] for k in ("model", "generator", "plugin", "match", "context_window", "max_output_tokens")} == {
        "model": "anthropic/claude-3.5-sonnet:nitro",
        "generator": "OpenRouterClaude35Sonnet",
        "plugin": "openrouter_claude",
        "match": "alias",
        "context_window": 200_000,
        "max_output_tokens": 8_192,
    }
    assert data["structured_modes"] == ["prompt"]
    assert [(c["plugin"], c["match"]) for c in data["candidates"]] == [
        ("openrouter_claude", "alias"),
        ("openrouter_registry", "fallback"),
    ]


def test_resolve_fallback_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "google/gemini-pro-1.5", "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("google/gemini-pro-1.5 -> OpenRouterGeneric (plugin openrouter_registry, match fallback")
    assert "candidates, best first:" in out and "tie-break: none needed" in out


def test_python_dash_m_and_console_script_agree() -> None:
    module = run_cli("resolve", "openai/gpt-4o")
    script = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "openrouter-registry"), "resolve", "openai/gpt-4o"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.stdout == script.stdout == "openai/gpt-4o -> OpenRouterGPT4O (openrouter_gpt, exact)\n"


@pytest.mark.parametrize(
    ("args", "env", "stderr"),
    [
        (("resolve",), {}, "openrouter-registry: error: the following arguments are required: MODEL\n"),
        (("frobnicate",), {}, "openrouter-registry: error: argument COMMAND: invalid choice: 'frobnicate'"),
        ((), {}, "openrouter-registry: error: a command is required"),
        (
            ("resolve", "openai/gpt-4o"),
            {"OPENROUTER_MAX_TOKENS": "lots"},
            "openrouter-registry: SettingsError: OPENROUTER_MAX_TOKENS must be a positive integer, got 'lots'\n",
        ),
        (
            ("resolve", "openai/gpt-4o"),
            {"OPENROUTER_BASE_URL": "http://evil.example"},
            "openrouter-registry: SettingsError: OPENROUTER_BASE_URL must be an https:// URL",
        ),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_one_line(
    args: tuple[str, ...], env: dict[str, str], stderr: str
) -> None:
    result = run_cli(*args, **env)
    assert result.returncode == 2
    assert result.stderr.startswith(stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""
