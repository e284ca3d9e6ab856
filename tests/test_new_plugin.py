"""`openrouter-registry new-plugin NAME`: the distribution it writes installs with pip (no network) and
its own tests pass at once; bad names and occupied targets are refused with one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrouter_registry.cli import main


def _env(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), *sys.path])
    return env


def test_the_new_plugin_installs_and_its_tests_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "acme-openrouter", "--dir", str(tmp_path), "--model", "acme/writer-1"]) == 0
    out = capsys.readouterr().out
    project = tmp_path / "acme-openrouter"
    assert f'next: python -m pip install "{project}[test]" && python -m pytest {project}' in out
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
        "README.md",
        "acme_openrouter/__init__.py",
        "pyproject.toml",
        "tests/test_acme_openrouter.py",
    ]
    target = tmp_path / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(project)],
        check=True, timeout=300, cwd=tmp_path,
    )
    assert list(target.glob("acme_openrouter-0.1.0.dist-info"))
    env = _env(target)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "openrouter_registry", "plugins", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    plugin = {p["name"]: p for p in json.loads(listed.stdout)}["acme_openrouter"]
    assert (plugin["status"], plugin["distribution"], plugin["models"]) == ("loaded", "acme-openrouter", ["acme/writer-1"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["new-plugin", "9lives"], "plugin name '9lives' must start with a letter"),
        (["new-plugin", "class"], "gives the module name 'class', which cannot be used"),
        (["new-plugin", "acme", "--model", "no-slash"], "--model must be an OpenRouter model id"),
    ],
)
def test_bad_names_are_refused(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_occupied_target_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acme" / "keep.txt").parent.mkdir()
    (tmp_path / "acme" / "keep.txt").write_text("mine")
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "acme").iterdir()] == ["keep.txt"]


def test_next_steps_install_from_the_local_folder_with_the_test_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", "openrouter-gemini", "--model", "google/gemini-2.0-flash"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4] == 'next: python -m pip install "./openrouter-gemini[test]" && python -m pytest ./openrouter-gemini'
    readme = (tmp_path / "openrouter-gemini" / "README.md").read_text()
    assert 'python -m pip install "./openrouter-gemini[test]"' in readme and "python -m pytest ./openrouter-gemini" in readme


def test_the_family_claims_only_the_models_stem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openrouter_registry import Registry, Settings

    main(["new-plugin", "openrouter-gemini", "--dir", str(tmp_path), "--model", "google/gemini-2.0-flash"])
    monkeypatch.syspath_prepend(str(tmp_path / "openrouter-gemini"))
    import openrouter_gemini  # type: ignore[import-not-found]

    registry = Registry(load_entrypoints=False, environ={})
    registry.register(openrouter_gemini, name="openrouter_gemini")
    settings = Settings.from_env({})
    served = {m: registry.resolve(m, settings).plugin for m in (
        "google/gemini-2.0-flash", "google/gemini-2.5-pro:free", "google/gemma-3-27b-it", "google/gemini", "openai/gpt-4o",
    )}
    assert served == {
        "google/gemini-2.0-flash": "openrouter_gemini",
        "google/gemini-2.5-pro:free": "openrouter_gemini",
        "google/gemma-3-27b-it": "openrouter_registry",
        "google/gemini": "openrouter_registry",
        "openai/gpt-4o": "openrouter_registry",
    }
    fenced = '```json\n{"a": 1}\n```'
    assert openrouter_gemini.parse_structured("google/gemini-2.5-pro", fenced, None) == {"a": 1}
    assert openrouter_gemini.parse_structured("google/gemma-3-27b-it", fenced, None) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("openrouter-gpt", "it is a plugin bundled with openrouter-registry"),
        ("openrouter_claude", "it is a plugin bundled with openrouter-registry"),
        ("httpx", "the distribution httpx "),
        ("json", "the module 'json' can already be imported"),
    ],
)
def test_names_that_collide_are_refused(
    name: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"plugin name {name!r} cannot be used: {message}" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
