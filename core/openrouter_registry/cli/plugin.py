"""`openrouter-registry new-plugin NAME [--dir DIR] [--model MODEL]`: write a ready-to-install plugin
distribution, so that ``python -m pip install "./NAME[test]" && python -m pytest ./NAME`` passes at once.

The family it claims is built from the model id: ``vendor/stem-...`` for ``--model vendor/stem-2.5``
(``google/gemini-2.0-flash`` claims ``google/gemini-...``, never ``google/gemma-...``), and its parser
reads only those ids. A NAME that collides with an installed distribution, an importable module or a
bundled plugin is refused: installing it would replace or shadow that code.

    NAME/pyproject.toml               the distribution, with its ``openrouter_registry`` entry point
    NAME/<module>/__init__.py         a Generator, a ModelTable, family_hooks with a strict parser
    NAME/tests/test_<module>.py       a test against the local OpenRouter-compatible server
    NAME/README.md                    what to edit next
"""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path
from string import Template

from ..errors import ConfigurationError

__all__ = ["cmd_new_plugin", "write_plugin"]

PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "openrouter-registry plugin for $model"
requires-python = ">=3.11"
dependencies = ["openrouter-registry$requirement"]

[project.optional-dependencies]
test = ["pytest>=8"]

# the entry point's name is the plugin's name; the registry finds the plugin through it
[project.entry-points.openrouter_registry]
$module = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
''')

MODULE = Template('''\
"""openrouter-registry plugin $dist: serves $model (and the $stem_ids family) on OpenRouter.

A family plugin is a table plus a parser. Hook contracts: the "Writing a plugin" section of
openrouter-registry's README.
"""

from __future__ import annotations

from collections.abc import Mapping

from openrouter_registry.plugin import (
    Generator, ModelTable, Resolution, Settings, family_hooks, hookimpl, parse_embedded_json,
)

__all__ = ["$cls", "TABLE"]


class $cls(Generator):
    """$model: put what you know about the model here."""

    context_window = None  # e.g. 128_000
    max_output_tokens = None  # requests are capped to it when set
    structured_modes = ("json_schema", "json_object", "prompt")  # best first
    description = "$model ($dist)"


TABLE = ModelTable(
    exact={"$model": $cls},
    aliases={},  # another id OpenRouter accepts -> the exact id it stands for
    # regular expressions, matched against the whole id without its :variant; claim only the ids
    # you know: r"$vendor/.+" would also claim every other model of $vendor
    families=[(r"$family", $cls)],
)

# resolve_generator: TABLE.match; claimed_models: TABLE.claimed; parse_structured: the parser for
# ids starting with $prefix_text, None (pass to the next parser, at last the core's generic one) for others.
# parse_embedded_json reads this family's habit, exact JSON in a ```json fence or inside prose; it is
# strict (no NaN or Infinity), bounded, and never raises. Other strict parsers in
# openrouter_registry.plugin: parse_clean_json, parse_python_literal. A parser of your own must
# never raise either: tests/ runs it over openrouter_registry.plugin.HOSTILE_REPLIES.
resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_embedded_json, prefix=$prefixes)


@hookimpl
def build_headers(model: str, settings: Settings, resolution: Resolution) -> Mapping[str, str] | None:
    if resolution.plugin != "$module":
        return None  # another plugin's generator serves this call: add nothing to it
    return None  # extra request headers for this plugin's calls, e.g. {"X-Team": "search"}
''')

TEST = Template('''\
"""$dist against openrouter-registry's local OpenRouter-compatible server (no network)."""

import asyncio

import $module
from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.plugin import HOSTILE_REPLIES, FakeOpenRouter, Scripted

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


async def ask(service, prompt, **options):
    async with service:
        return await service.generate(prompt, **options)


def test_the_installed_plugin_serves_its_models():
    registry = Registry(environ={})
    assert {p.name: p.status for p in registry.plugins()}["$module"] == "loaded"
    for model in ("$model", "$model:free"):
        resolution = registry.resolve(model, Settings.from_env({}))
        assert (type(resolution.generator).__name__, resolution.plugin) == ("$cls", "$module")


def test_a_structured_reply_end_to_end():
    with FakeOpenRouter() as server:
        server.enqueue(Scripted.chat(content='Here you are:\\n```json\\n{"city": "Paris"}\\n```', model="$model"))
        settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
        service = OpenRouterService(settings, registry=Registry(environ={}))
        result = asyncio.run(ask(service, "Where is the Louvre?", schema=SCHEMA, model="$model"))
        (request,) = server.requests

    assert result.content == {"city": "Paris"}
    assert (result.plugin, result.parser) == ("$module", "$module")  # this plugin's generator and parser
    assert request.body["model"] == "$model"
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.headers["authorization"] == f"Bearer {server.api_key}"


def test_the_family_is_only_this_models_family():
    registry = Registry(environ={})
    settings = Settings.from_env({})
    assert registry.resolve("$sibling", settings).plugin == "$module"
    assert registry.resolve("$other", settings).plugin != "$module"


def test_the_parser_passes_what_it_cannot_read():
    bad = ("```json\\n{oops\\n```", "```json\\n" + "[" * 100_000 + "\\n```", "no json at all", '{"city": NaN}')
    for text in bad:  # strict JSON only (no NaN or Infinity); anything else goes on to the next parser
        assert $module.parse_structured("$model", text, None) is None
    assert $module.parse_structured("other/model", '```json\\n{"a": 1}\\n```', None) is None
    assert $module.parse_structured("$other", '```json\\n{"a": 1}\\n```', None) is None


def test_replies_built_to_break_parsers_never_raise():
    for name, make in HOSTILE_REPLIES.items():
        value = $module.parse_structured("$model", make(100_000), SCHEMA)
        assert value is None or isinstance(value, dict), name
''')

README = Template('''\
# $dist

An [openrouter-registry](https://pypi.org/project/openrouter-registry/) plugin for `$model`.

```sh
# the plugin (entry point `$module`) and its test extra (pytest)
python -m pip install "./$dist[test]"
# its tests, against the bundled local OpenRouter server (no network, no key)
python -m pytest ./$dist
# `$module` loaded, with its models; which generator serves the model, and why
openrouter-registry plugins
openrouter-registry resolve $model --explain
```

Run the tests with the `python` you installed into (`python -m pytest`, not a `pytest` found
elsewhere on `PATH`): the `[test]` extra puts pytest beside the plugin, and a system pytest cannot
import it. The tests need no network and no key; they talk to `FakeOpenRouter` on 127.0.0.1.

It claims `$model` exactly, its `:free`/`:nitro`... variants, and the family `$stem_ids`
(`$family`); its parser reads only those ids.

Edit `$module/__init__.py`: the model's facts on `$cls`, the ids in `TABLE`, the reply parser given to
`family_hooks` (it must never raise), and other hooks such as `build_headers`.
''')

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*")


def _requirement() -> str:
    from .. import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    return f">={major}.{minor},<{major + 1}" if major else f">={major}.{minor},<{major}.{minor + 1}"


def write_plugin(name: str, directory: Path, model: str | None = None) -> list[Path]:
    """Write the distribution ``directory/name``; return the files written.

    Raises `ConfigurationError` for a name that is not a valid distribution name (or whose module
    name is not a Python identifier), a malformed model id, or a target that exists and is not empty."""
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"plugin name {name!r} must start with a letter and hold only letters, digits, '-', '_' and '.' "
            "(e.g. acme-openrouter)"
        )
    module = re.sub(r"[-.]+", "_", name).lower()
    if not module.isidentifier() or keyword.iskeyword(module) or module == "openrouter_registry":
        raise ConfigurationError(f"plugin name {name!r} gives the module name {module!r}, which cannot be used")
    vendor = re.split(r"[-_.]", name.lower())[0]
    model = model or f"{vendor}/example-1"
    if not _MODEL.fullmatch(model):
        raise ConfigurationError(f"--model must be an OpenRouter model id such as 'acme/writer-1', got {model!r}")
    target = directory / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigurationError(f"{target} already exists and is not empty: choose another NAME or --dir")
    _refuse_collisions(name, module)
    vendor, rest = model.split(":", 1)[0].split("/", 1)
    stem = re.split(r"[-_.:]", rest, maxsplit=1)[0] or rest
    base = model.split(":", 1)[0]
    prefixes = (f"{vendor}/{stem}-",) + (() if base.startswith(f"{vendor}/{stem}-") else (base,))
    values = {
        "dist": name,
        "module": module,
        "model": model,
        "vendor": vendor,
        "stem_ids": f"{vendor}/{stem}-...",
        "sibling": f"{vendor}/{stem}-next-2",
        "other": f"{vendor}/not{stem}-1",
        "family": re.escape(f"{vendor}/{stem}") + r"-[a-z0-9][a-z0-9._-]*",
        "prefixes": f'"{prefixes[0]}"' if len(prefixes) == 1 else "(" + ", ".join(f'"{p}"' for p in prefixes) + ")",
        "prefix_text": " or ".join(f'"{p}"' for p in prefixes),
        "cls": "".join(part.capitalize() for part in module.split("_") if part) + "Generator",
        "requirement": _requirement(),
    }
    files = {
        target / "pyproject.toml": PYPROJECT,
        target / module / "__init__.py": MODULE,
        target / "tests" / f"test_{module}.py": TEST,
        target / "README.md": README,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
    return list(files)


#: The plugins that ship with openrouter-registry (entry-point names and distributions).
BUNDLED = ("openrouter_gpt", "openrouter_claude", "openrouter_llama", "openrouter-gpt", "openrouter-claude", "openrouter-llama")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _refuse_collisions(name: str, module: str) -> None:
    """Raise `ConfigurationError` when ``name`` or its module would replace or shadow existing code:
    a bundled plugin, an installed distribution, an importable module or a plugin's entry-point name."""
    import importlib.metadata
    import importlib.util

    why = None
    if _canonical(name) in {_canonical(b) for b in BUNDLED} or _canonical(module) in {_canonical(b) for b in BUNDLED}:
        why = "it is a plugin bundled with openrouter-registry"
    else:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            dist = None
        if dist is not None:
            why = f"the distribution {dist.metadata['Name']} {dist.version} is installed (pip install would replace it)"
        elif module in {ep.name for ep in importlib.metadata.entry_points(group="openrouter_registry")}:
            why = f"an installed plugin already has the entry-point name {module!r}"
        else:
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            if spec is not None:
                where = spec.origin or "a namespace package"
                why = f"the module {module!r} can already be imported ({where}); the plugin's would shadow it or be shadowed"
    if why is not None:
        raise ConfigurationError(f"plugin name {name!r} cannot be used: {why}; choose another NAME (e.g. acme-openrouter)")


def _shown(path: Path) -> str:
    """``path`` as the user would type it: ``./name`` under the current directory, else absolute."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path.resolve())
    return "./" + relative.as_posix() if relative.parts else "."


def cmd_new_plugin(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    written = write_plugin(args.name, directory, args.model)
    for path in written:
        print(f"wrote {path}")
    target = _shown(directory / args.name)
    print(f'next: python -m pip install "{target}[test]" && python -m pytest {target}')
    print("      (the [test] extra installs pytest beside the plugin; run both with the same python)")
    return 0
