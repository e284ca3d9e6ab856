"""Separate installability: the core alone, and the core plus one plugin, installed for real by pip
from wheels into a fresh target directory, run in an interpreter that sees nothing else of ours.

Third-party dependencies are taken from the running environment (symlinked into a directory that
holds only the core's declared requirements), so no network is needed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.out_of_process  # a child process does the work

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from openrouter_registry import get_registry
registry = get_registry()
plugins = {p.name: p.status for p in registry.plugins()}
resolved = {m: [type(r.generator).__name__, r.plugin] for m in sys.argv[1:] for r in [registry.resolve(m)]}
print(json.dumps({"plugins": plugins, "resolved": resolved}))
"""


def _requirement_closure(name: str) -> list[metadata.Distribution]:
    seen: set[str] = set()
    found: list[metadata.Distribution] = []
    todo = [name]
    while todo:
        try:
            dist = metadata.distribution(todo.pop())
        except metadata.PackageNotFoundError:
            continue  # excluded by an environment marker (e.g. python_version < "3.11")
        if dist.metadata["Name"] != metadata.distribution(name).metadata["Name"]:
            found.append(dist)
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            dep = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]
            key = dep.lower().replace("_", "-")
            if key not in seen:
                seen.add(key)
                todo.append(dep)
    return found


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only the core's third-party requirements (symlinks into this environment)."""
    farm = tmp_path_factory.mktemp("deps")
    for dist in _requirement_closure("openrouter-registry"):
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".pth")) or top in ("..", "__pycache__", "bin"):
                continue
            target = farm / top
            if not target.exists():
                target.symlink_to(Path(file.locate()).resolve().parents[len(file.parts) - 1] / top)
    return farm


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources, and the suite writes
    # only inside its temp dirs
    sources = tmp_path_factory.mktemp("sources")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".venv", "site")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, sources / name)
    shutil.copytree(ROOT / "core", sources / "core", ignore=skip)
    shutil.copytree(ROOT / "plugins" / "openrouter_gpt", sources / "openrouter_gpt", ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(sources), str(sources / "openrouter_gpt")],
        check=True,
        timeout=300,
    )
    return out


def _install_and_probe(wheels: Path, deps: Path, target: Path, dists: list[str], models: list[str]) -> dict:
    files = [str(next(wheels.glob(f"{d.replace('-', '_')}-*.whl"))) for d in dists]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target), *files],
        check=True,
        timeout=300,
    )
    code = f"import sys; sys.path[:0] = [{str(target)!r}, {str(deps)!r}]\n" + PROBE
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-s", "-c", code, *models], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_core_alone(wheels: Path, dependencies: Path, tmp_path: Path) -> None:
    found = _install_and_probe(wheels, dependencies, tmp_path, ["openrouter-registry"], ["openai/gpt-4o"])
    assert found == {
        "plugins": {"openrouter_registry": "loaded"},
        "resolved": {"openai/gpt-4o": ["OpenRouterGeneric", "openrouter_registry"]},
    }


def test_core_plus_one_plugin(wheels: Path, dependencies: Path, tmp_path: Path) -> None:
    found = _install_and_probe(
        wheels,
        dependencies,
        tmp_path,
        ["openrouter-registry", "openrouter-gpt"],
        ["openai/gpt-4o", "anthropic/claude-3.5-sonnet"],
    )
    assert found == {
        "plugins": {"openrouter_registry": "loaded", "openrouter_gpt": "loaded"},
        "resolved": {
            "openai/gpt-4o": ["OpenRouterGPT4O", "openrouter_gpt"],
            "anthropic/claude-3.5-sonnet": ["OpenRouterGeneric", "openrouter_registry"],
        },
    }
