"""A model-family plugin is a table plus a parser: `family_hooks` turns them into the plugin's three
hookimpls, so that a family plugin module holds only its generators, its `ModelTable` and the name of
its reply parser.

    from openrouter_registry.plugin import ModelTable, family_hooks, parse_embedded_json

    TABLE = ModelTable(exact={"acme/model-1": AcmeModel1}, families=[(r"acme/[\\w.\\-]+", Acme)])
    resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_embedded_json, prefix="acme/")

The three module-level names are what pluggy finds when it registers the module (the entry point's
value stays the module). The hooks behave as hand-written ones would:

- ``resolve_generator(model, settings)``: ``TABLE.match(model)``;
- ``claimed_models()``: ``TABLE.claimed()``;
- ``parse_structured(model, text, schema)``: ``parser(text, schema)`` for models whose id starts with
  ``prefix`` (case-insensitive), None (pass to the next parser) for every other model. A parser
  takes the reply text and the schema (or None) and returns the data, or None to pass; it should
  never raise (the core's parsers in `openrouter_registry.replies.structured` never do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .matching import Candidate, ModelTable
    from ..settings import Settings

__all__ = ["FamilyHooks", "ReplyParser", "family_hooks"]

#: ``parser(text, schema)``: the JSON data in a reply, or None to pass it on.
ReplyParser = Callable[[str, Mapping[str, Any] | None], Any]


class FamilyHooks(NamedTuple):
    """The hookimpls of one family plugin, to be bound to module-level names of the same names."""

    resolve_generator: Callable[[str, Settings], Candidate | None]
    claimed_models: Callable[[], list[str]]
    parse_structured: Callable[[str, str, Mapping[str, Any] | None], Any]


def family_hooks(table: ModelTable, parser: ReplyParser, *, prefix: str | tuple[str, ...]) -> FamilyHooks:
    """The ``resolve_generator``, ``claimed_models`` and ``parse_structured`` hookimpls of a family
    plugin whose models are ``table`` and whose replies ``parser`` reads (for model ids starting with
    ``prefix``, one string or several)."""
    prefixes = tuple(p.lower() for p in ((prefix,) if isinstance(prefix, str) else prefix))
    if not prefixes or not all(prefixes):
        raise ValueError("family_hooks needs a non-empty model id prefix, e.g. prefix='openai/'")

    @hookimpl
    def resolve_generator(model: str, settings: Settings) -> Candidate | None:
        return table.match(model)

    @hookimpl
    def claimed_models() -> list[str]:
        return table.claimed()

    @hookimpl
    def parse_structured(model: str, text: str, schema: Mapping[str, Any] | None) -> Any:
        if not model.lower().startswith(prefixes):
            return None
        return parser(text, schema)

    return FamilyHooks(resolve_generator, claimed_models, parse_structured)
