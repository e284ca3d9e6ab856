"""How a plugin says which models it serves: `Match`, `Candidate` and the `ModelTable` helper, and
what the registry answers: `Resolution` (the winning candidate, its generator, every candidate)."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..models.generator import Generator

__all__ = ["Match", "Candidate", "ModelTable", "Resolution", "split_variant"]


class Match(enum.IntEnum):
    """How specific a candidate is; higher wins."""

    FALLBACK = 0
    FAMILY = 1
    ALIAS = 2
    EXACT = 3

    def __str__(self) -> str:
        return self.name.lower()


def _to_match(value: Any) -> Match:
    if isinstance(value, Match):
        return value
    if isinstance(value, str):
        try:
            return Match[value.upper()]
        except KeyError:
            pass
    raise ValueError(f"match must be one of exact, alias, family, fallback; got {value!r}")


def _is_generator_class(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    from ..models.generator import Generator

    if not (isinstance(value, type) and issubclass(value, Generator)):
        raise TypeError(f"Candidate.generator must be a Generator subclass, got {value!r}")


@attrs.frozen
class Candidate:
    """One plugin's offer to serve a model, as returned by the ``resolve_generator`` hook.

    ``plugin`` is filled in by the registry (a plugin cannot speak for another); ``reason`` is a short
    human explanation shown by ``resolve --explain``.
    """

    generator: type[Generator] = attrs.field(validator=_is_generator_class)
    match: Match = attrs.field(converter=_to_match)
    priority: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    reason: str = ""
    plugin: str = ""

    def sort_key(self) -> tuple[int, int, str]:
        """Ranking key: best first when sorted ascending (match, then priority, then plugin name)."""
        return (-int(self.match), -self.priority, self.plugin)


def split_variant(model: str) -> tuple[str, str | None]:
    """Split an OpenRouter variant suffix: ``"openai/gpt-4o:nitro"`` -> ``("openai/gpt-4o", "nitro")``."""
    base, sep, variant = model.partition(":")
    return (base, variant) if sep else (model, None)


def _lower_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k.lower(): (v.lower() if isinstance(v, str) else v) for k, v in mapping.items()}


#: ``*`` or ``?`` at the start or right after an unescaped ``/``, ``-``, ``_`` or ``:``: a glob's wildcard, not a
#: regular expression's repetition (``-*`` as "any number of dashes" is never what a model family means).
_GLOB = re.compile(r"(?:^|(?<=(?<!\\)[/\-_:]))[*?]")


def _glob_as_regex(pattern: str) -> str:
    out = []
    for char in pattern:
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char) if char == "." else char)
    return "".join(out)


def _compile_family(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    """A family pattern: a regular expression matched against the whole id (case-insensitive).

    Raises ValueError for a pattern that looks like a glob (``"acme/writer-*"``), suggesting the regular
    expression, and for a pattern that does not compile."""
    if isinstance(pattern, re.Pattern):
        return pattern if pattern.flags & re.IGNORECASE else re.compile(pattern.pattern, pattern.flags | re.IGNORECASE)
    if not isinstance(pattern, str):
        raise TypeError(f"a family pattern must be a str regular expression, got {type(pattern).__name__}")
    if _GLOB.search(pattern):
        raise ValueError(
            f"family pattern {pattern!r} looks like a glob; family patterns are regular expressions matched "
            f'against the whole model id (case-insensitive): write r"{_glob_as_regex(pattern)}"'
        )
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"family pattern {pattern!r} is not a valid regular expression: {exc}") from None


def _compile(
    patterns: Sequence[tuple[str | re.Pattern[str], type[Generator]]],
) -> tuple[tuple[re.Pattern[str], type[Generator]], ...]:
    return tuple((_compile_family(p), g) for p, g in patterns)


@attrs.frozen
class ModelTable:
    """A plugin's table of models, turned into candidates by `match`.

    - ``exact``: model id -> generator; an exact id matches as ``Match.EXACT``.
    - ``aliases``: another id OpenRouter accepts for the same model -> the exact id it stands for;
      matches as ``Match.ALIAS``. A variant suffix (``:free``, ``:nitro``, ``:floor``, ``:online``...)
      on an exact id or alias also matches as ``Match.ALIAS``.
    - ``families``: (regular expression, generator) pairs tried in order against the id without its
      variant suffix (full match, case-insensitive); the first hit matches as ``Match.FAMILY``. A
      pattern is a regular expression, not a glob: ``r"acme/writer-.*"``, never ``"acme/writer-*"``
      (refused with a ValueError that shows the regular expression to write).
    - ``priority``: given to every candidate of this table; among candidates with the same match,
      the higher priority wins (then the plugin name, ascending).
    """

    exact: Mapping[str, type[Generator]] = attrs.field(factory=dict, converter=_lower_keys)
    aliases: Mapping[str, str] = attrs.field(factory=dict, converter=_lower_keys)
    families: tuple[tuple[re.Pattern[str], type[Generator]], ...] = attrs.field(factory=tuple, converter=_compile)
    priority: int = 0

    def __attrs_post_init__(self) -> None:
        for alias, target in self.aliases.items():
            if target not in self.exact:
                raise ValueError(f"alias {alias!r} points to {target!r}, which is not an exact id of this table")

    def match(self, model: str) -> Candidate | None:
        """The best candidate this table has for ``model``, or None."""
        key = model.lower()
        if key in self.exact:
            return Candidate(self.exact[key], Match.EXACT, self.priority, reason=f"exact id {key}")
        base, variant = split_variant(key)
        shown = f"variant :{variant} of " if variant else ""
        if variant and base in self.exact:
            return Candidate(self.exact[base], Match.ALIAS, self.priority, reason=f"{shown}{base}")
        if base in self.aliases:
            target = self.aliases[base]
            return Candidate(self.exact[target], Match.ALIAS, self.priority, reason=f"{shown}alias of {target}")
        for pattern, generator in self.families:
            if pattern.fullmatch(base):
                return Candidate(generator, Match.FAMILY, self.priority, reason=f"{shown}family /{pattern.pattern}/")
        return None

    def claimed(self) -> list[str]:
        """The exact ids of this table, sorted."""
        return sorted(self.exact)


@attrs.frozen
class Resolution:
    """The answer to "which generator serves this model" (`Registry.resolve`), with every candidate.

    ``model``: the id as resolved (stripped, variant suffix kept); ``generator``: the `Generator`
    instance that serves it; ``winner``: the winning `Candidate`; ``candidates``: every candidate
    that can serve, best first (the winner first, the core's ``fallback`` last); ``tie_break``: how
    the winner beat a candidate with the same match, or None. ``plugin`` and ``match`` are the
    winner's (``resolution.plugin`` is the entry-point name of the plugin whose generator won).
    """

    model: str
    generator: Generator
    winner: Candidate
    candidates: tuple[Candidate, ...]
    tie_break: str | None = None

    @property
    def plugin(self) -> str:
        return self.winner.plugin

    @property
    def match(self) -> Match:
        return self.winner.match

    def to_dict(self) -> dict[str, Any]:
        """The `resolve --json` object."""
        return {
            "model": self.model,
            **self.generator.info(),
            "plugin": self.plugin,
            "match": str(self.match),
            "priority": self.winner.priority,
            "reason": self.winner.reason,
            "tie_break": self.tie_break,
            "candidates": [
                {
                    "plugin": c.plugin,
                    "generator": c.generator.__name__,
                    "match": str(c.match),
                    "priority": c.priority,
                    "reason": c.reason,
                }
                for c in self.candidates
            ],
        }

    def explain(self) -> str:
        """Several lines of plain text: the choice, every candidate, and how a tie was broken."""
        lines = [
            f"{self.model} -> {type(self.generator).__name__} "
            f"(plugin {self.plugin}, match {self.match}: {self.winner.reason})",
            self.generator.facts().explain(),
            "candidates, best first:",
        ]
        for i, c in enumerate(self.candidates, 1):
            lines.append(
                f"  {i}. {str(c.match):8} priority {c.priority:<3} {c.plugin:24} {c.generator.__name__:28} {c.reason}"
            )
        lines.append(f"tie-break: {self.tie_break or 'none needed'}")
        return "\n".join(lines)
