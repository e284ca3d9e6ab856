"""The plugin switches ``OPENROUTER_REGISTRY_PLUGINS`` and ``OPENROUTER_REGISTRY_DISABLE``: which
installed plugins they select, and a warning for every name that selects nothing.

A name in either variable may be a plugin name (``openrouter_gpt``), a distribution name
(``openrouter-gpt``: all the plugins that distribution installs; ``-``, ``_`` and ``.`` compare
equal, case does not matter) or a glob over plugin names (``acme_*``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from .checks import did_you_mean

__all__ = ["Selection", "parse_names", "select"]


def parse_names(value: str | None) -> list[str] | None:
    """The comma-separated names of a variable; None when it is unset."""
    if value is None:
        return None
    return [n.strip() for n in value.split(",") if n.strip()]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@attrs.frozen
class Selection:
    """The plugins some names select, and the names that selected nothing (with a warning each)."""

    plugins: frozenset[str]
    #: plugin name -> the name in the variable that selected it (for `plugins`' "blocked by" line)
    by: Mapping[str, str]
    warnings: tuple[str, ...]


def _containing(name: str, choices: list[str]) -> str:
    """``"; did you mean 'openrouter_gemini'?"`` for a short name (``gemini``) that is a word of
    installed names, when no name is close enough for `did_you_mean`."""
    word = _canonical(name).strip("-")
    if not word:
        return ""
    hits = sorted({c for c in choices if word in _canonical(c).split("-") or _canonical(c).endswith("-" + word)})
    return "; did you mean " + " or ".join(repr(c) for c in hits[:2]) + "?" if hits else ""


def select(variable: str, names: list[str], installed: Mapping[str, str | None]) -> Selection:
    """Which of ``installed`` (plugin name -> distribution name) ``names`` select."""
    import fnmatch

    chosen: dict[str, str] = {}
    warnings: list[str] = []
    for name in names:
        hits = [
            plugin
            for plugin, dist in installed.items()
            if fnmatch.fnmatchcase(plugin, name)
            or _canonical(plugin) == _canonical(name)
            or (dist is not None and _canonical(dist) == _canonical(name))
        ]
        for plugin in hits:
            chosen.setdefault(plugin, name)
        if not hits:
            plugins = {_canonical(p) for p in installed}
            choices = [*installed, *(d for d in installed.values() if d and _canonical(d) not in plugins)]
            hint = did_you_mean(name, choices) or _containing(name, choices)
            known = ", ".join(sorted(installed)) or "none"
            warnings.append(
                f"{variable} names {name!r}, which matches no installed plugin{hint} (installed plugins: {known})"
            )
    return Selection(frozenset(chosen), chosen, tuple(warnings))
