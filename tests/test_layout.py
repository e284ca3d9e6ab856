"""The package's layout: stage folders in one direction, two import surfaces, old paths deprecated.

Every import in the package counts (top-level, inside functions, under ``if TYPE_CHECKING``): a
module may import its own stage and the stages below it, never one above it, and no import circle
exists at all. An import that must break the rule says why on its own line, after
``# layer exception:``; there is none today.
"""

from __future__ import annotations

import ast
import importlib
import pydoc
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "openrouter_registry"

#: Top to bottom. A stage may import the stages after it; names in one tuple are peers that must not
#: import each other. The shared base (result types, settings, errors) sits at the bottom.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("testing",),
    ("service",),
    ("batch", "adapters"),
    ("engine",),
    ("plugins",),
    ("models",),
    ("http",),
    ("replies",),
    ("result",),
    ("schemas",),
    ("settings",),
    ("errors",),
)
#: The import surfaces: they may import anything; internal modules import none of them.
SURFACES = ("__init__", "__main__", "plugin")
RANK = {stage: rank for rank, peers in enumerate(LAYERS) for stage in peers}
FACADE = {"__init__", "__main__", "service", "settings", "errors", "result", "plugin"}
EXCEPTION = "# layer exception:"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[int, str, str]]:
    """(line, imported module, the source line) for every import in ``path``, wherever it stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            # `from . import hookspecs` imports a module; `from .x import name` imports x
            targets = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in known else base_name for a in node.names]
        else:
            continue
        for target in targets:
            if target == "openrouter_registry" or target.startswith("openrouter_registry."):
                yield node.lineno, target, lines[node.lineno - 1]


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for _, target, line in imports(path, known):
            if EXCEPTION not in line and target in known and target != module:
                edges[module].add(target)
    return edges


def test_top_level_is_only_the_facade() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == FACADE and len(top) <= 8
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {s for peers in LAYERS for s in peers} - FACADE


@pytest.mark.parametrize("folder", sorted(s for peers in LAYERS for s in peers if s not in FACADE))
def test_each_stage_says_what_it_does_and_what_it_may_import(folder: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())) or ""
    assert "may import" in doc.lower(), folder
    assert "internal" in doc, folder


def test_no_module_imports_a_stage_above_its_own() -> None:
    known = modules()
    problems = []
    for module, path in known.items():
        here = stage_of(module)
        for lineno, target, line in imports(path, known):
            if EXCEPTION in line:
                assert line.split(EXCEPTION, 1)[1].strip(), f"{path}:{lineno}: say why after {EXCEPTION!r}"
                continue
            there = stage_of(target)
            where = f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}"
            if here in SURFACES:
                continue
            if target == "openrouter_registry":
                # the root package is loaded before any of its modules: only its version is read from it
                if not re.search(r"import __version__\b", line):
                    problems.append(f"{where}  (internal code imports the app surface)")
                continue
            if there in SURFACES:
                problems.append(f"{where}  (internal code imports the surface {there!r})")
            elif here != there and RANK[there] < RANK[here]:
                problems.append(f"{where}  ({here} sits below {there})")
            elif here != there and RANK[there] == RANK[here]:
                problems.append(f"{where}  ({here} and {there} are peers)")
    assert problems == []


def test_the_rule_sees_lazy_and_type_checking_imports() -> None:
    """The checker itself: an import inside a function or under TYPE_CHECKING is an import."""
    known = modules()
    found = {target for _, target, _ in imports(PACKAGE / "service.py", known)}
    assert "openrouter_registry.batch.run" in found  # inside `batch()`
    assert "openrouter_registry.adapters.parlant" in found  # inside `__call__`
    found = {target for _, target, _ in imports(PACKAGE / "batch" / "run.py", known)}
    assert "openrouter_registry.engine.calls" in found  # under TYPE_CHECKING


def test_no_import_circle_anywhere() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    # a surface re-exports modules that import the package root (for __version__): not a circle of code
    circles = [c for c in circles if not any(stage_of(m) in SURFACES for m in c)]
    assert circles == []


SURFACE_IMPORT = re.compile(r"^\s*(?:from|import)\s+(openrouter_registry[\w.]*)", re.M)


def surface_imports(text: str) -> set[str]:
    return set(SURFACE_IMPORT.findall(text))


@pytest.mark.parametrize("family", ["gpt", "claude", "llama"])
def test_bundled_plugins_import_only_the_two_surfaces(family: str) -> None:
    text = (ROOT / "plugins" / f"openrouter_{family}" / f"openrouter_{family}" / "__init__.py").read_text()
    assert surface_imports(text) == {"openrouter_registry.plugin"}


def test_scaffold_imports_only_the_two_surfaces(tmp_path: Path) -> None:
    from openrouter_registry.cli.plugin import write_plugin

    write_plugin("acme-openrouter", tmp_path, "acme/writer-1")
    found: set[str] = set()
    for path in tmp_path.rglob("*.py"):
        found |= surface_imports(path.read_text())
    assert found == {"openrouter_registry", "openrouter_registry.plugin"}


def test_readme_plugin_example_imports_only_the_two_surfaces() -> None:
    section = (ROOT / "docs" / "guides" / "writing-a-plugin.md").read_text()  # the plugin guide, whole
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    found = set().union(*(surface_imports(b) for b in blocks))
    assert found and found <= {"openrouter_registry", "openrouter_registry.plugin"}


def test_app_surface_has_every_type_its_public_calls_return() -> None:
    import openrouter_registry as app

    for name in [
        "NLPServices", "OpenRouterService", "Settings", "GenerationResult", "EmbeddingResult", "TextStream",
        "BatchRun", "BatchRow", "BatchSummary", "CostEstimate", "Catalog", "ModelInfo", "Resolution", "Usage",
        "Registry", "PluginInfo", "OpenRouterError", "TruncatedOutputError",
    ]:
        assert name in app.__all__ and getattr(app, name).__name__ == name
    assert not {"hookimpl", "Generator", "ModelTable", "Candidate", "Match"} & set(app.__all__)


def test_plugin_surface_has_what_a_family_plugin_needs() -> None:
    import openrouter_registry.plugin as plugin

    for name in [
        "hookimpl", "Generator", "Mode", "Facts", "ModelTable", "Match", "Candidate", "family_hooks",
        "parse_clean_json", "parse_json_reply", "parse_embedded_json", "parse_python_literal",
        "FakeOpenRouter", "Scripted", "HOSTILE_REPLIES", "Settings",
    ]:
        assert name in plugin.__all__ and getattr(plugin, name) is not None
    from openrouter_registry.plugins.family import family_hooks
    from openrouter_registry.testing import FakeOpenRouter

    assert plugin.family_hooks is family_hooks and plugin.FakeOpenRouter is FakeOpenRouter
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        plugin.nope  # noqa: B018


def test_help_shows_the_app_surface_first() -> None:
    import openrouter_registry

    text = pydoc.render_doc(openrouter_registry, renderer=pydoc.plaintext)
    assert text.index("NLPServices") < text.index("openrouter_registry.plugin") < text.index("PACKAGE CONTENTS")


OLD_PATHS = {
    "openrouter_registry.structured": ("parse_json_reply", "openrouter_registry.replies.structured"),
    "openrouter_registry.family": ("family_hooks", "openrouter_registry.plugins.family"),
    "openrouter_registry.generator": ("Generator", "openrouter_registry.models.generator"),
    "openrouter_registry.matching": ("ModelTable", "openrouter_registry.plugins.matching"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_work_with_a_deprecation_warning(old: str) -> None:
    name, new = OLD_PATHS[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{re.escape(old)} is deprecated.*openrouter_registry\.plugin"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_old_top_level_plugin_names_warn_and_name_the_new_import() -> None:
    import openrouter_registry
    from openrouter_registry.plugin import hookimpl

    with pytest.warns(DeprecationWarning, match=r"from openrouter_registry\.plugin import hookimpl"):
        assert openrouter_registry.hookimpl is hookimpl
    with pytest.warns(DeprecationWarning, match=r"from openrouter_registry import BatchRow"):
        from openrouter_registry.batch import BatchRow  # noqa: F401


def test_unknown_old_looking_paths_still_fail() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("openrouter_registry.transport")


def test_importing_the_package_loads_no_stage() -> None:
    code = (
        "import sys, openrouter_registry, openrouter_registry.plugin;"
        "print(sorted(m for m in sys.modules if m.startswith('openrouter_registry.')))"
    )
    with warnings.catch_warnings():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['openrouter_registry.plugin']"
