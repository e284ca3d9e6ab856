"""`family_hooks`: a family plugin is a table plus a parser. The three hookimpls it makes behave like
hand-written ones, and a module built with it registers and answers like the bundled plugins."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import openrouter_claude
import openrouter_gpt
import openrouter_llama
import pytest

from openrouter_registry import Registry, Settings
from openrouter_registry.plugin import Generator, Match, ModelTable
from openrouter_registry.plugins.family import family_hooks


class Acme(Generator):
    description = "Acme family"


class Acme1(Acme):
    description = "Acme 1"


TABLE = ModelTable(exact={"acme/one": Acme1}, aliases={"acme/1": "acme/one"}, families=[(r"acme/[\w.\-]+", Acme)])
SEEN: list[tuple[str, Mapping[str, Any] | None]] = []


def _parser(text: str, schema: Mapping[str, Any] | None) -> Any:
    SEEN.append((text, schema))
    return {"parsed": text}


def _module() -> types.ModuleType:
    module = types.ModuleType("acme_family")
    module.resolve_generator, module.claimed_models, module.parse_structured = family_hooks(  # type: ignore[attr-defined]
        TABLE, _parser, prefix="acme/"
    )
    return module


def test_hooks_answer_from_the_table_and_the_parser() -> None:
    resolve, claimed, parse = family_hooks(TABLE, _parser, prefix="acme/")
    settings = Settings.from_env({})
    exact, alias, family = resolve("acme/one", settings), resolve("acme/1", settings), resolve("acme/two", settings)
    assert exact is not None and (exact.generator, exact.match) == (Acme1, Match.EXACT)
    assert alias is not None and (alias.generator, alias.match) == (Acme1, Match.ALIAS)
    assert family is not None and (family.generator, family.match) == (Acme, Match.FAMILY)
    assert resolve("other/one", settings) is None
    assert claimed() == ["acme/one"]
    SEEN.clear()
    assert parse("ACME/One", "{}", {"type": "object"}) == {"parsed": "{}"}
    assert parse("other/one", "{}", None) is None  # another family's reply: passed on, parser not called
    assert SEEN == [("{}", {"type": "object"})]


def test_several_prefixes_and_an_empty_one() -> None:
    parse = family_hooks(TABLE, _parser, prefix=("acme/", "acme-labs/")).parse_structured
    assert parse("acme-labs/x", "t", None) == {"parsed": "t"}
    with pytest.raises(ValueError, match="non-empty model id prefix"):
        family_hooks(TABLE, _parser, prefix="")


def test_a_module_built_with_it_is_a_plugin() -> None:
    registry = Registry(environ={})
    registry.register(_module(), name="acme_family")
    resolution = registry.resolve("acme/one")
    assert (type(resolution.generator), resolution.plugin) == (Acme1, "acme_family")
    assert registry.parse_structured("acme/one", "reply", None) == {"parsed": "reply"}
    info = {p.name: p for p in registry.plugins()}["acme_family"]
    assert (info.status, info.models) == ("loaded", ("acme/one",))
    assert set(info.hooks) == {"resolve_generator", "claimed_models", "parse_structured"}


@pytest.mark.parametrize(
    ("module", "model", "other"),
    [
        (openrouter_gpt, "openai/gpt-4o", "anthropic/claude-3.5-sonnet"),
        (openrouter_claude, "anthropic/claude-3.5-sonnet", "openai/gpt-4o"),
        (openrouter_llama, "meta-llama/llama-3.3-70b-instruct", "openai/gpt-4o"),
    ],
)
def test_bundled_family_plugins_are_a_table_plus_a_parser(module: Any, model: str, other: str) -> None:
    assert module.claimed_models() == module.TABLE.claimed()
    assert module.resolve_generator(model, Settings.from_env({})) == module.TABLE.match(model)
    assert module.parse_structured(model, '{"a": 1}', None) == {"a": 1}
    assert module.parse_structured(other, '{"a": 1}', None) is None
