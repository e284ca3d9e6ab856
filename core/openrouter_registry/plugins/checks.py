"""Checks of a plugin before it is registered, and the names the registry gives and suggests.

- `hookimpl_problems`: every ``@hookimpl`` of a plugin names a real hook and only that hook's
  arguments; a misspelling gets "did you mean ...".
- `default_name`: the readable name of a plugin registered at run time without ``name=``.
- `did_you_mean`: the closest names (difflib), as a sentence ending.
- `result_problem`: what is wrong with a hook's return value, by the hook's contract.
- `generator_problems`: what is wrong with a `Generator` subclass's class attributes
  (``structured_modes``, ``context_window``, ``max_output_tokens``); `plugin_generators` finds the
  generator classes a plugin holds (module attributes, and the generators of its `ModelTable` objects).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

__all__ = [
    "hookimpl_problems", "default_name", "did_you_mean", "result_problem", "hook_arguments",
    "generator_problems", "plugin_generators",
]

_IMPLICIT = ("self", "cls", "obj")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``) for the closest of ``choices``, else ``""``."""
    import difflib  # only on error paths: not worth its import time at load

    close = difflib.get_close_matches(word, sorted(set(choices)), n=2, cutoff=0.8)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def hook_arguments(pm: pluggy.PluginManager) -> dict[str, tuple[str, ...]]:
    """Every hook declared on ``pm`` -> its argument names."""
    found: dict[str, tuple[str, ...]] = {}
    for name, caller in vars(pm.hook).items():
        spec = getattr(caller, "spec", None)
        if isinstance(caller, pluggy.HookCaller) and spec is not None:
            found[name] = tuple(spec.argnames)
    return found


def _required_arguments(function: Any) -> list[str]:
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []
    names = [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if names and names[0] in _IMPLICIT and not inspect.ismethod(function):
        names = names[1:]  # a function defined in a class body, registered through the class itself
    return names


def hookimpl_problems(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """What would make ``plugin`` invalid: unknown hook names, unknown argument names, hook wrappers.

    Each problem is one short sentence, with "did you mean ..." when a close name exists.
    """
    hooks = hook_arguments(pm)
    problems: list[str] = []
    for attribute in dir(plugin):
        try:
            opts = pm.parse_hookimpl_opts(plugin, attribute)
        except Exception:  # an attribute that raises on access is not a hookimpl
            continue
        if opts is None:
            continue
        hook = opts.get("specname") or attribute
        if hook not in hooks:
            problems.append(f"{hook!r} is not an openrouter_registry hook{did_you_mean(hook, hooks)}")
            continue
        if opts.get("hookwrapper") or opts.get("wrapper"):
            problems.append(f"{hook!r}: hook wrappers are not supported")
        allowed = hooks[hook]
        for argument in _required_arguments(getattr(plugin, attribute)):
            if argument not in allowed:
                problems.append(
                    f"{hook}() has an argument {argument!r} that the hook does not pass "
                    f"(it passes {', '.join(allowed) or 'nothing'}){did_you_mean(argument, allowed)}"
                )
    return problems


def default_name(plugin: object) -> str:
    """A readable name for ``plugin``: a module's name, a class's ``module.Class``, an instance's
    ``module.Class``, or an object's own ``__name__``."""
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    if isinstance(plugin, type):
        return f"{plugin.__module__}.{plugin.__qualname__}"
    own = getattr(plugin, "__name__", None)
    if isinstance(own, str) and own:
        return own
    cls = type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


def result_problem(hook: str, result: Any) -> str | None:
    """Why ``result`` breaks ``hook``'s contract, or None when it is acceptable."""
    if result is None:
        return None
    if hook == "resolve_generator":
        from .matching import Candidate

        if not isinstance(result, Candidate):
            return f"resolve_generator returned {type(result).__name__}, not a Candidate or None"
    elif hook == "build_headers":
        if not isinstance(result, Mapping):
            return f"build_headers returned {type(result).__name__}, not a mapping or None"
    elif hook == "claimed_models":
        if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
            return f"claimed_models returned {type(result).__name__}, not a list of model ids or None"
    return None


def _positive_or_none(cls: type, attribute: str) -> str | None:
    value = getattr(cls, attribute, None)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return None
    return f"{cls.__qualname__}.{attribute} must be a positive integer or None, got {value!r}"


def generator_problems(cls: type) -> list[str]:
    """What is wrong with the class attributes of the generator class ``cls``, one sentence each
    naming the class and the attribute: ``structured_modes`` must be a non-empty tuple of known modes
    (each once), ``context_window`` and ``max_output_tokens`` positive integers or None."""
    from ..models.generator import KNOWN_MODES

    problems = [p for p in (_positive_or_none(cls, "context_window"), _positive_or_none(cls, "max_output_tokens")) if p]
    modes = getattr(cls, "structured_modes", None)
    known = ", ".join(repr(m) for m in KNOWN_MODES)
    where = f"{cls.__qualname__}.structured_modes"
    if not isinstance(modes, tuple):
        hint = f" (write ({modes!r},) for one mode)" if isinstance(modes, str) else ""
        problems.append(f"{where} must be a tuple of modes, best first ({known}), got {modes!r}{hint}")
    elif not modes:
        problems.append(f"{where} is empty: give at least one mode, best first ({known})")
    else:
        for mode in modes:
            if mode not in KNOWN_MODES:
                hint = did_you_mean(mode, KNOWN_MODES) if isinstance(mode, str) else ""
                problems.append(f"{where} holds {mode!r}, which is not a mode ({known}){hint}")
        if len(set(modes)) != len(modes):
            problems.append(f"{where} names a mode twice: {modes!r}")
    return problems


def plugin_generators(plugin: object) -> list[type]:
    """The `Generator` subclasses ``plugin`` holds: its attributes that are generator classes, and the
    generators of its attributes that are `ModelTable` objects (exact ids and families)."""
    from ..models.generator import Generator
    from .matching import ModelTable

    try:
        values = list(vars(plugin).values())
    except TypeError:  # an object without __dict__
        values = []
    found: dict[type, None] = {}
    for value in values:
        if isinstance(value, type) and issubclass(value, Generator) and value is not Generator:
            found[value] = None
        elif isinstance(value, ModelTable):
            for generator in (*value.exact.values(), *(g for _p, g in value.families)):
                found[generator] = None
    return list(found)
