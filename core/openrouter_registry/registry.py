"""The registry: loads plugins (lazily, each in its own guard), resolves a model to a generator,
and runs the other hooks one plugin at a time so that a broken plugin is skipped, never fatal.

    registry = get_registry()
    resolution = registry.resolve("openai/gpt-4o")      # -> Resolution (generator, plugin, match, candidates)
    registry.register(my_plugin)                        # run-time registration

Environment switches, read when plugins are first loaded:
- ``OPENROUTER_REGISTRY_PLUGINS``: comma-separated plugin names to load (set but empty: load none).
- ``OPENROUTER_REGISTRY_DISABLE``: comma-separated plugin names never to import (pluggy's set_blocked).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import pluggy

from . import hookspecs
from .errors import HeaderError, PluginError
from .generator import Generator
from .headers import check_header, core_headers, merge_plugin_headers
from .matching import Candidate, Match
from .settings import Settings

__all__ = ["Registry", "Resolution", "PluginInfo", "get_registry", "ENTRY_POINT_GROUP", "CORE_PLUGIN"]

log = logging.getLogger("openrouter_registry")

ENTRY_POINT_GROUP = "openrouter_registry"
CORE_PLUGIN = "openrouter_registry"
PLUGINS_ENV = "OPENROUTER_REGISTRY_PLUGINS"
DISABLE_ENV = "OPENROUTER_REGISTRY_DISABLE"
_CACHE_SIZE = 1024

Status = Literal["loaded", "failed", "blocked"]


@attrs.frozen
class PluginInfo:
    """One plugin as `openrouter-registry plugins` shows it."""

    name: str
    distribution: str | None
    version: str | None
    status: Status
    error: str | None = None
    hooks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["hooks"], data["models"] = list(self.hooks), list(self.models)
        return data


@attrs.define
class _Record:
    name: str
    distribution: str | None = None
    version: str | None = None
    status: Status = "loaded"
    error: str | None = None
    plugin: object | None = None
    hooks: tuple[str, ...] = ()


@attrs.frozen
class Resolution:
    """The answer to "which generator serves this model", with every candidate that was considered."""

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


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _describe_tie(ranked: list[Candidate]) -> str | None:
    if len(ranked) < 2 or ranked[0].match != ranked[1].match:
        return None
    first, second = ranked[0], ranked[1]
    if first.priority != second.priority:
        return f"{first.plugin} and {second.plugin} both match {first.match}; priority {first.priority} > {second.priority}"
    return f"{first.plugin} and {second.plugin} both match {first.match} at priority {first.priority}; plugin name order"


class Registry:
    """Plugins, resolution and hook dispatch. Cheap to create; plugins load on first use.

    :param load_entrypoints: discover plugins installed under the ``openrouter_registry`` entry-point group.
    :param environ: where to read the env switches and default settings (default: ``os.environ``).
    """

    def __init__(self, *, load_entrypoints: bool = True, environ: Mapping[str, str] | None = None) -> None:
        self._load_entrypoints_flag = load_entrypoints
        self._environ = environ
        self._pm: pluggy.PluginManager | None = None
        self._records: dict[str, _Record] = {}
        self._cache: dict[tuple[str, Settings], Resolution] = {}
        self._lock = threading.RLock()

    # --- loading -----------------------------------------------------------------------------------

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The pluggy manager, with every allowed plugin loaded (on first access)."""
        with self._lock:
            if self._pm is None:
                pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
                pm.add_hookspecs(hookspecs)
                self._pm = pm
                from . import builtin

                from . import __version__

                self._register_checked(builtin, CORE_PLUGIN, distribution="openrouter-registry", version=__version__)
                if self._load_entrypoints_flag:
                    self._load_entrypoints(pm)
            return self._pm

    def _load_entrypoints(self, pm: pluggy.PluginManager) -> None:
        # pluggy's load_setuptools_entrypoints stops at the first plugin that fails to import and
        # rescans every distribution for each name; this loop guards each entry point on its own.
        from importlib.metadata import entry_points

        allowed = _names(self.environ.get(PLUGINS_ENV))
        for name in _names(self.environ.get(DISABLE_ENV)) or ():
            pm.set_blocked(name)
        seen: set[str] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen or ep.name in self._records:
                log.warning("plugin %r is installed twice; the second entry point (%s) is ignored", ep.name, ep.value)
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            record = _Record(ep.name, dist.name if dist else None, dist.version if dist else None)
            if pm.is_blocked(ep.name) or (allowed is not None and ep.name not in allowed):
                record.status = "blocked"
                record.error = f"blocked by {DISABLE_ENV}" if pm.is_blocked(ep.name) else f"not in {PLUGINS_ENV}"
                self._records[ep.name] = record
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:  # a plugin may raise anything at import, even SystemExit
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._records[ep.name] = record
                self._mark_failed(ep.name, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self._register_checked(plugin, ep.name, distribution=record.distribution, version=record.version)
        for name in sorted((allowed or set()) - seen):
            log.warning("%s names %r, but no such plugin is installed", PLUGINS_ENV, name)

    def _register_checked(
        self, plugin: object, name: str, *, distribution: str | None = None, version: str | None = None
    ) -> bool:
        pm = self._pm
        assert pm is not None
        record = self._records.setdefault(name, _Record(name, distribution, version))
        try:
            pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._mark_failed(name, f"invalid plugin: {exc}")
            return False
        problems = []
        for caller in pm.get_hookcallers(plugin) or ():
            if caller.spec is None:
                problems.append(f"{caller.name!r} is not an openrouter_registry hook")
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper):
                    problems.append(f"{caller.name!r}: hook wrappers are not supported")
        if problems:
            pm.unregister(plugin)
            self._mark_failed(name, "invalid plugin: " + "; ".join(problems))
            return False
        record.plugin, record.status, record.error = plugin, "loaded", None
        record.hooks = tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or ()))
        self._cache.clear()
        return True

    def _mark_failed(self, name: str, error: str) -> None:
        record = self._records.setdefault(name, _Record(name))
        log.error(
            "openrouter_registry plugin %r (%s %s) disabled: %s",
            name,
            record.distribution or "registered at run time",
            record.version or "",
            error,
        )
        record.status, record.error = "failed", error
        pm = self._pm
        if pm is not None and record.plugin is not None and pm.is_registered(record.plugin):
            pm.unregister(record.plugin)
        record.plugin = None
        self._cache.clear()

    # --- registration at run time -----------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (module, class or instance with ``@hookimpl`` functions) now.

        Returns its name (default: ``name``, else pluggy's canonical name). Raises `PluginError` when
        pluggy rejects it (unknown hook, wrong argument names) or when the name is taken.
        """
        pm = self.plugin_manager
        with self._lock:
            name = name or pm.get_canonical_name(plugin)
            if name in self._records and self._records[name].status != "failed":
                raise PluginError(name, "a plugin with this name is already registered")
            self._records.pop(name, None)
            if not self._register_checked(plugin, name):
                raise PluginError(name, self._records[name].error or "invalid plugin")
            return name

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (loaded or not)."""
        with self._lock:
            record = self._records.pop(name, None)
            if record and record.plugin is not None and self.plugin_manager.is_registered(record.plugin):
                self.plugin_manager.unregister(record.plugin)
            self._cache.clear()

    # --- introspection ----------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every plugin found (core first, then by name) with its status, hooks and claimed model ids."""
        self.plugin_manager
        infos = []
        for name in sorted(self._records, key=lambda n: (n != CORE_PLUGIN, n)):
            models: tuple[str, ...] = ()
            record = self._records.get(name)
            if record and record.status == "loaded":
                for _plugin, claimed in self._call_each("claimed_models", {}, only=name):
                    models = tuple(sorted(str(m) for m in claimed or ()))
            record = self._records.get(name)
            if record is None:
                continue
            infos.append(
                PluginInfo(
                    name=record.name,
                    distribution=record.distribution,
                    version=record.version,
                    status=record.status,
                    error=record.error,
                    hooks=record.hooks if record.status == "loaded" else (),
                    models=models,
                )
            )
        return infos

    # --- resolution -------------------------------------------------------------------------------

    def default_settings(self) -> Settings:
        return Settings.from_env(self.environ)

    def resolve(self, model: str | None = None, settings: Settings | None = None) -> Resolution:
        """The best generator for ``model`` (default: the settings' model), with every candidate.

        Candidates rank by match (exact > alias > family > fallback), then priority, then plugin name.
        Results are cached per (model, settings) until plugins change.
        """
        settings = settings or self.default_settings()
        model = (model or settings.model).strip()
        if not model:
            from .errors import ConfigurationError

            raise ConfigurationError("model id is empty: pass a model such as 'openai/gpt-4o'")
        key = (model, settings)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._lock:
            while True:
                candidates: list[Candidate] = []
                for plugin, result in self._call_each("resolve_generator", {"model": model, "settings": settings}):
                    if result is None:
                        continue
                    if not isinstance(result, Candidate):
                        self._mark_failed(plugin, f"resolve_generator returned {type(result).__name__}, not a Candidate")
                        continue
                    candidates.append(attrs.evolve(result, plugin=plugin))
                ranked = sorted(candidates, key=Candidate.sort_key)
                winner = ranked[0]  # the core always offers a fallback candidate
                try:
                    generator = winner.generator(model=model, settings=settings)
                except Exception as exc:
                    if winner.plugin == CORE_PLUGIN:
                        raise
                    self._mark_failed(winner.plugin, f"{winner.generator.__name__}() raised {type(exc).__name__}: {exc}")
                    continue
                resolution = Resolution(model, generator, winner, tuple(ranked), _describe_tie(ranked))
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = resolution
                return resolution

    def generator(self, model: str | None = None, settings: Settings | None = None) -> Generator:
        """Shortcut for ``resolve(model, settings).generator``."""
        return self.resolve(model, settings).generator

    # --- the other hooks --------------------------------------------------------------------------

    def build_headers(self, model: str, settings: Settings) -> dict[str, str]:
        """Core headers, then every plugin's ``build_headers`` on top (plugin-name order); no Authorization.

        A plugin that returns an unsendable header is logged with a `HeaderError`, marked failed and
        skipped; the request goes on with the other headers.
        """
        contributions: list[tuple[str, Mapping[str, str]]] = []
        results = self._call_each("build_headers", {"model": model, "settings": settings})
        for plugin, headers in sorted(results, key=lambda r: r[0]):
            if headers is None:
                continue
            try:
                if not isinstance(headers, Mapping):
                    raise HeaderError(plugin, f"build_headers returned {type(headers).__name__}, not a mapping")
                for name, value in headers.items():
                    check_header(plugin, name, value)
            except HeaderError as exc:
                self._mark_failed(plugin, str(exc))
                continue
            contributions.append((plugin, dict(headers)))
        return merge_plugin_headers(core_headers(settings), contributions)

    def parse_structured(self, model: str, text: str, schema: Mapping[str, Any] | None) -> Any | None:
        """Run the ``parse_structured`` chain: the first non-None result wins; None when nobody parsed it."""
        for _plugin, result in self._call_each(
            "parse_structured", {"model": model, "text": text, "schema": schema}, first_result=True
        ):
            return result
        return None

    def _call_each(
        self,
        hook_name: str,
        kwargs: Mapping[str, Any],
        *,
        only: str | None = None,
        first_result: bool = False,
    ) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook_name`` on its own, tryfirst first, then by plugin name.

        An implementation that raises marks its plugin failed and is skipped. With ``first_result``
        the call stops at the first non-None result.
        """
        pm = self.plugin_manager
        caller = getattr(pm.hook, hook_name)
        impls = sorted(
            caller.get_hookimpls(), key=lambda i: (0 if i.tryfirst else 2 if i.trylast else 1, i.plugin_name)
        )
        results: list[tuple[str, Any]] = []
        for impl in impls:
            if only is not None and impl.plugin_name != only:
                continue
            function: Callable[..., Any] = impl.function
            try:
                result = function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                self._mark_failed(impl.plugin_name, f"hook {hook_name} raised {type(exc).__name__}: {exc}")
                continue
            if first_result and result is None:
                continue
            results.append((impl.plugin_name, result))
            if first_result:
                break
        return results


_default: Registry | None = None
_default_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry (created on first call; plugins load on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
    return _default
