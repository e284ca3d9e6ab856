"""The registry: loads plugins (lazily, each in its own guard), resolves a model to a generator,
and runs the other hooks one plugin at a time so that a failing hook is skipped, never fatal.

    registry = get_registry()
    resolution = registry.resolve("openai/gpt-4o")      # -> Resolution (generator, plugin, match, candidates)
    registry.register(my_plugin)                        # run-time registration

Environment switches, read when plugins are first loaded (see `pluginenv`):
- ``OPENROUTER_REGISTRY_PLUGINS``: comma-separated plugin names to load (set but empty: load none).
- ``OPENROUTER_REGISTRY_DISABLE``: comma-separated plugin names never to import.
Names may be plugin names, distribution names or globs; a name that selects nothing is warned about
with the closest installed names. The core plugin (``openrouter_registry``) is always loaded.

The isolation rule (documented in `hookspecs` and the README): a hook call that raises, or returns
what its contract forbids, is skipped for that call and logged once per plugin, hook and exception
type (full traceback at DEBUG, every time); the plugin shows ``degraded`` until that hook succeeds
again. A plugin is disabled (``failed``) only when it fails to load or validate, or when one of its
hooks failed `DISABLE_AFTER` calls in a row *and* then fails a probe call with harmless input (one
of the plugin's own model ids, text ``{}``): a hook that fails only on some data is never disabled.

Plugin hooks are called without holding the registry's lock; the lock guards only short updates of
the plugins' state, so concurrent asyncio tasks and threads may resolve and call hooks at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs
import pluggy

from . import hookspecs
from ..errors import HeaderError, PluginError
from ..models.generator import Generator
from ..http.headers import check_header, core_headers, merge_plugin_headers
from .matching import Candidate, Match, Resolution
from .checks import default_name, generator_problems, hookimpl_problems, plugin_generators, result_problem
from .switches import parse_names, select
from ..settings import DEFAULT_MODEL, Settings

if TYPE_CHECKING:
    from ..http.events import CallEvent

__all__ = [
    "Registry",
    "Resolution",
    "PluginInfo",
    "get_registry",
    "ENTRY_POINT_GROUP",
    "CORE_PLUGIN",
    "DISABLE_AFTER",
    "PROBE_MODEL",
    "PARSE_DEADLINE",
    "HUNG_PARSER_PAUSE",
]

log = logging.getLogger("openrouter_registry")

ENTRY_POINT_GROUP = "openrouter_registry"
CORE_PLUGIN = "openrouter_registry"
CORE_DISTRIBUTION = "openrouter-registry"
PLUGINS_ENV = "OPENROUTER_REGISTRY_PLUGINS"
DISABLE_ENV = "OPENROUTER_REGISTRY_DISABLE"
#: A hook that failed this many calls in a row (no success in between) is probed with harmless input.
DISABLE_AFTER = 5
#: The model id of probe calls when a plugin claims no model ids of its own.
PROBE_MODEL = "openrouter-registry/probe"
#: Seconds one ``parse_structured`` call of a plugin may take (the core's parses a 1 MB reply in tens of
#: milliseconds); past it the reply goes to the next parser and the plugin shows ``degraded``.
PARSE_DEADLINE = 2.0
#: Seconds a parser that passed `PARSE_DEADLINE` is skipped for, for every model.
HUNG_PARSER_PAUSE = 60.0
_CACHE_SIZE = 1024
#: Model-id prefix -> (plugin name, distribution) of the families this project ships plugins for.
KNOWN_FAMILIES: dict[str, tuple[str, str]] = {
    "openai/": ("openrouter_gpt", "openrouter-gpt"),
    "anthropic/": ("openrouter_claude", "openrouter-claude"),
    "meta-llama/": ("openrouter_llama", "openrouter-llama"),
}
_warned_families: set[str] = set()
_MESSAGE_LIMIT = 300

Status = Literal["loaded", "degraded", "failed", "blocked"]
HeaderKind = Literal["none", "static", "per-model"]


@attrs.frozen
class PluginInfo:
    """One plugin as `openrouter-registry plugins` shows it.

    ``status``: ``loaded``; ``degraded`` (loaded, but the last call of one of its hooks failed and was
    skipped); ``failed`` (disabled: failed to load or validate, or a hook keeps failing even on
    harmless input); ``blocked`` (not loaded because of an env switch). ``error``: why it failed or is
    blocked, else the last hook failure. ``failures``: calls that failed since it was loaded, summed
    over all its hooks and generator methods (and each dropped header); never reset while it stays loaded.
    ``headers``: what its ``build_headers`` returned when checked at load: ``none``, ``static`` (the
    same headers for every model: ``header_names``) or ``per-model`` (checked at each request).
    """

    name: str
    distribution: str | None
    version: str | None
    status: Status
    error: str | None = None
    hooks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    failures: int = 0
    headers: HeaderKind | None = None
    header_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        for key in ("hooks", "models", "header_names"):
            data[key] = list(data[key])
        return data


@attrs.define
class _Record:
    """The registry's mutable state about one plugin (changed only under the registry's lock)."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: Status = "loaded"
    error: str | None = None
    plugin: object | None = None
    hooks: tuple[str, ...] = ()
    failures: int = 0
    #: hook -> calls that failed in a row; a success removes the hook
    streaks: dict[str, int] = attrs.field(factory=dict)
    #: (hook, exception type or header problem) already logged at ERROR
    logged: set[tuple[str, str]] = attrs.field(factory=set)
    bad_headers: bool = False
    headers: HeaderKind | None = None
    header_names: tuple[str, ...] = ()

    def origin(self) -> str:
        if self.distribution is None:
            return "registered at run time"
        return f"{self.distribution} {self.version}" if self.version else self.distribution

    def describe(self) -> str:
        return f"plugin {self.name!r} ({self.origin()})"

    def shown_status(self) -> Status:
        if self.status == "loaded" and (self.bad_headers or any(self.streaks.values())):
            return "degraded"
        return self.status


def _short(exc: BaseException) -> str:
    """``Type: message`` on one line, cut to a readable length (hostile data can make huge messages)."""
    try:
        text = " ".join(str(exc).split())
    except Exception:  # a broken __str__ must not break the report of the failure
        text = "<unprintable>"
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _raising_method(exc: BaseException, generator: object) -> str | None:
    """The innermost method of ``generator`` in ``exc``'s traceback (``shape_messages`` when it raised
    inside ``build_body``), or None."""
    name = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_locals.get("self") is generator:
            name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name


def _for_model(kwargs: Mapping[str, Any]) -> str:
    model = kwargs.get("model")
    if not isinstance(model, str):
        return ""
    return f" for model {model[:200]!r}" + ("..." if len(model) > 200 else "")


class _Failed:
    """The marker `Registry._call_one` returns for a call that failed (None is a valid answer)."""


_FAILED = _Failed()

def _describe_tie(ranked: list[Candidate]) -> str | None:
    if len(ranked) < 2 or ranked[0].match != ranked[1].match:
        return None
    first, second = ranked[0], ranked[1]
    if first.priority != second.priority:
        return f"{first.plugin} and {second.plugin} both match {first.match}; priority {first.priority} > {second.priority}"
    return f"{first.plugin} and {second.plugin} both match {first.match} at priority {first.priority}; plugin name order"


def _core_fallback() -> Candidate:
    from .builtin import OpenRouterGeneric

    return Candidate(OpenRouterGeneric, Match.FALLBACK, reason="any OpenRouter model", plugin=CORE_PLUGIN)


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
        self._impls: dict[str, tuple[int, list[pluggy.HookImpl]]] = {}
        self._class_problems: dict[type[Generator], tuple[str, ...]] = {}
        self._epoch = 0  # bumped whenever the set of registered plugins changes
        self._implemented: dict[str, tuple[int, bool]] = {}  # hook -> (epoch, does a plugin implement it)
        self._hung: dict[str, float] = {}  # plugin -> when its parse_structured last passed PARSE_DEADLINE
        self._overran: set[str] = set()  # plugins whose parse_structured ever passed PARSE_DEADLINE
        self._load_lock = threading.RLock()  # held while plugins load (once)
        self._lock = threading.RLock()  # held only for short updates of the state above

    # --- loading -----------------------------------------------------------------------------------

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The pluggy manager, with every allowed plugin loaded (on first access)."""
        pm = self._pm
        if pm is not None:
            return pm
        with self._load_lock:
            if self._pm is None:
                pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
                pm.add_hookspecs(hookspecs)
                from .. import __version__  # the root package is loaded before any of its modules
                from . import builtin

                self._register_checked(pm, builtin, CORE_PLUGIN, distribution=CORE_DISTRIBUTION, version=__version__)
                if self._load_entrypoints_flag:
                    self._load_entrypoints(pm)
                self._pm = pm  # published only when every plugin is loaded
                for record in list(self._records.values()):
                    if record.status == "loaded":
                        self._check_headers(record)
            return self._pm

    def _load_entrypoints(self, pm: pluggy.PluginManager) -> None:
        # pluggy's load_setuptools_entrypoints stops at the first plugin that fails to import and
        # rescans every distribution for each name; this loop guards each entry point on its own.
        from importlib.metadata import entry_points

        found = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._records:
                log.warning("plugin %r is installed twice; the second entry point (%s) is ignored", ep.name, ep.value)
                continue
            dist = ep.dist  # each .name / .version parses the metadata file again: read them once
            record = _Record(ep.name, dist.name if dist else None, dist.version if dist else None)
            self._records[ep.name] = record
            found.append((ep, record))
        installed = {record.name: record.distribution for _ep, record in found}
        installed[CORE_PLUGIN] = CORE_DISTRIBUTION
        blocked, allowed = self._switches(installed)
        for ep, record in found:
            excluded = allowed is not None and ep.name not in allowed
            reason = blocked.get(ep.name) or (f"not in {PLUGINS_ENV}" if excluded else None)
            if reason:
                pm.set_blocked(ep.name)
                record.status, record.error = "blocked", reason
                continue
            try:
                plugin = ep.load()
            except BaseException as exc:  # a plugin may raise anything at import, even SystemExit
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._disable(record, f"import failed: {_short(exc)}", exc)
                continue
            self._register_checked(pm, plugin, ep.name, distribution=record.distribution, version=record.version)

    def _switches(self, installed: Mapping[str, str | None]) -> tuple[dict[str, str], frozenset[str] | None]:
        """(plugin -> why blocked by DISABLE, the plugins PLUGINS allows or None), warning about
        names that select nothing and about an attempt to disable the core."""
        blocked: dict[str, str] = {}
        disable = parse_names(self.environ.get(DISABLE_ENV))
        if disable:
            chosen = select(DISABLE_ENV, disable, installed)
            for warning in chosen.warnings:
                log.warning("%s", warning)
            for plugin, name in chosen.by.items():
                if plugin == CORE_PLUGIN:
                    if name in (CORE_PLUGIN, CORE_DISTRIBUTION):
                        log.warning(
                            "%s names the core plugin %r, which cannot be disabled (it serves every model no "
                            "family plugin claims); ignored",
                            DISABLE_ENV,
                            CORE_PLUGIN,
                        )
                    continue
                blocked[plugin] = f"blocked by {DISABLE_ENV}" + (f" ({name!r})" if name != plugin else "")
        only = parse_names(self.environ.get(PLUGINS_ENV))
        if only is None:
            return blocked, None
        chosen = select(PLUGINS_ENV, only, installed)
        for warning in chosen.warnings:
            log.warning("%s", warning)
        return blocked, chosen.plugins

    def _register_checked(
        self,
        pm: pluggy.PluginManager,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        report: bool = True,
    ) -> bool:
        """Validate and register ``plugin``; on failure mark it ``failed`` (logged when ``report``)."""
        record = self._records.setdefault(name, _Record(name, distribution, version))
        problems: list[str] = []
        try:
            pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            problems = hookimpl_problems(pm, plugin) or [" ".join(str(exc).split())]
        else:  # pluggy accepts unknown hook names and wrappers: this registry does not
            callers = pm.get_hookcallers(plugin) or []
            if any(c.spec is None or any(i.plugin is plugin and (i.hookwrapper or i.wrapper) for i in c.get_hookimpls())
                   for c in callers):
                pm.unregister(plugin)
                problems = hookimpl_problems(pm, plugin) or ["unknown hook or hook wrapper"]
            else:  # the generator classes it holds must state valid facts
                problems = [p for cls in plugin_generators(plugin) for p in generator_problems(cls)]
                if problems:
                    pm.unregister(plugin)
        if problems:
            self._disable(record, "invalid plugin: " + "; ".join(problems), report=report)
            return False
        with self._lock:
            record.plugin, record.status, record.error = plugin, "loaded", None
            record.failures, record.streaks, record.logged, record.bad_headers = 0, {}, set(), False
            record.hooks = tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or ()))
            self._changed()
        return True

    def _changed(self) -> None:
        """The set of registered plugins changed: forget cached resolutions and hook orders."""
        with self._lock:
            self._epoch += 1
            self._cache.clear()
            self._impls.clear()

    def _disable(self, record: _Record, reason: str, exc: BaseException | None = None, *, report: bool = True) -> None:
        with self._lock:
            if report:
                log.error("%s disabled: %s", record.describe(), reason)
                if exc is not None and log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: traceback of the failure", record.describe(), exc_info=exc)
            record.status, record.error = "failed", reason
            pm = self._pm
            if record.plugin is not None and pm is not None and pm.is_registered(record.plugin):
                pm.unregister(record.plugin)
            record.plugin = None
            record.streaks.clear()
            self._changed()

    # --- registration at run time -----------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (module, class or instance with ``@hookimpl`` functions) now.

        Returns its name: ``name``, else a readable default (a module's name, ``module.Class`` for a
        class or an instance; ``#2``, ``#3``... appended when that name is taken). Raises `PluginError`
        when the plugin is invalid (unknown hook, wrong argument names: with "did you mean ...") or
        when an explicit ``name`` is taken; nothing else is logged for it.
        """
        pm = self.plugin_manager
        with self._lock:
            if name is None:
                base = default_name(plugin)
                name, n = base, 1
                while self._taken(name):
                    n += 1
                    name = f"{base}#{n}"
            elif self._taken(name):
                raise PluginError(name, "a plugin with this name is already registered")
            self._records.pop(name, None)
            if not self._register_checked(pm, plugin, name, report=False):
                raise PluginError(name, self._records[name].error or "invalid plugin")
            record = self._records[name]
        self._check_headers(record)
        return name

    def _taken(self, name: str) -> bool:
        return name in self._records and self._records[name].status != "failed"

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (loaded or not). The core plugin cannot be removed."""
        if name == CORE_PLUGIN:
            raise PluginError(
                name, "the core plugin cannot be unregistered: it serves every model no other plugin claims"
            )
        pm = self.plugin_manager
        with self._lock:
            record = self._records.pop(name, None)
            self._overran.discard(name)
            self._hung.pop(name, None)
            if record and record.plugin is not None and pm.is_registered(record.plugin):
                pm.unregister(record.plugin)
            if record:
                record.plugin = None  # a probe or failure of the old object still running no longer acts on it
            self._changed()

    # --- introspection ----------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every plugin found (core first, then by name) with its status, hooks and claimed model ids."""
        self.plugin_manager
        infos = []
        for name in sorted(list(self._records), key=lambda n: (n != CORE_PLUGIN, n)):
            record = self._records.get(name)
            if record is None:
                continue
            models = self._claimed(record) if record.status == "loaded" else ()
            status = record.shown_status()
            infos.append(
                PluginInfo(
                    name=record.name,
                    distribution=record.distribution,
                    version=record.version,
                    status=status,
                    error=record.error,
                    hooks=record.hooks if status in ("loaded", "degraded") else (),
                    models=models,
                    failures=record.failures,
                    headers=record.headers,
                    header_names=record.header_names,
                )
            )
        return infos

    def _claimed(self, record: _Record) -> tuple[str, ...]:
        for _plugin, claimed in self._call_each("claimed_models", {}, only=record.name):
            return tuple(sorted(str(m) for m in claimed or ()))
        return ()

    def _check_headers(self, record: _Record) -> None:
        """Call a new plugin's ``build_headers`` for a probe model, the default model and its own model
        ids, so that an unsendable header is reported at load; note whether its headers depend on the model."""
        if "build_headers" not in record.hooks or record.status != "loaded":
            return
        try:
            settings = self.default_settings()
        except Exception:  # malformed env settings are reported where they are used, not here
            settings = Settings.from_env({})
        seen = []
        # resolved only for a hook that asks for the resolution: resolving calls every plugin's resolve_generator
        wants = any("resolution" in i.argnames for i in self._hook_order("build_headers") if i.plugin_name == record.name)
        for model in dict.fromkeys([PROBE_MODEL, DEFAULT_MODEL, *self._claimed(record)[:5]]):
            kwargs: dict[str, Any] = {"model": model, "settings": settings}
            if wants:
                kwargs["resolution"] = self.resolve(model, settings)
            for _plugin, headers in self._call_each("build_headers", kwargs, only=record.name):
                seen.append(self._valid_headers(record.name, headers or {}, model))
        with self._lock:
            if not seen:
                record.headers = None  # it raised: reported with the failure
            elif all(h == seen[0] for h in seen):
                record.headers = "static" if seen[0] else "none"
                record.header_names = tuple(seen[0])
            else:
                record.headers = "per-model"

    # --- resolution -------------------------------------------------------------------------------

    def default_settings(self) -> Settings:
        return Settings.from_env(self.environ)

    def __reduce__(self) -> Any:
        raise TypeError(
            "a Registry cannot be pickled (it holds loaded plugins and locks): call get_registry() in the worker; "
            "every process discovers its installed plugins itself"
        )

    def resolve(self, model: str | None = None, settings: Settings | None = None) -> Resolution:
        """The best generator for ``model`` (default: the settings' model), with every candidate.

        Candidates rank by match (exact > alias > family > fallback), then priority (higher wins),
        then plugin name (ascending). The core's fallback candidate is always among them. Results are
        cached per (model, settings) until plugins change.
        """
        settings = settings or self.default_settings()
        model = (model or settings.model).strip()
        if not model:
            from ..errors import ConfigurationError

            raise ConfigurationError("model id is empty: pass a model such as 'openai/gpt-4o'")
        key = (model, settings)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.plugin_manager
        epoch = self._epoch
        kwargs = {"model": model, "settings": settings}
        candidates = [
            attrs.evolve(result, plugin=plugin)
            for plugin, result in self._call_each("resolve_generator", kwargs)
            if result is not None
        ]
        if not any(c.plugin == CORE_PLUGIN and c.match is Match.FALLBACK for c in candidates):
            candidates.append(_core_fallback())
        ranked = [c for c in sorted(candidates, key=Candidate.sort_key) if self._valid_generator(c, kwargs)]
        resolution = self._serve(model, settings, ranked)
        if resolution.plugin == CORE_PLUGIN:
            self._warn_missing_family(model)
        with self._lock:
            if self._epoch == epoch:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = resolution
        return resolution

    def _valid_generator(self, candidate: Candidate, kwargs: Mapping[str, Any]) -> bool:
        """False (and a failure of the plugin's ``resolve_generator``) for a candidate whose generator
        class states invalid facts; checked once per class."""
        cls = candidate.generator
        problems = self._class_problems.get(cls)
        if problems is None:
            problems = tuple(generator_problems(cls))
            self._class_problems[cls] = problems
        if not problems or candidate.plugin == CORE_PLUGIN:
            return True
        self._hook_failed(candidate.plugin, None, "resolve_generator", kwargs, PluginError(candidate.plugin, "; ".join(problems)))
        return False

    def _serve(self, model: str, settings: Settings, ranked: list[Candidate]) -> Resolution:
        """The resolution by the first of ``ranked`` whose generator class can be created; a constructor
        that raises is a failure of its plugin's ``resolve_generator`` and the next candidate serves."""
        kwargs = {"model": model, "settings": settings}
        while True:
            winner = ranked[0]
            try:
                generator = winner.generator(model=model, settings=settings)
                break
            except Exception as exc:
                if winner.plugin == CORE_PLUGIN:
                    raise
                wrapped = PluginError(winner.plugin, f"{winner.generator.__name__}() raised {_short(exc)}")
                self._hook_failed(winner.plugin, None, "resolve_generator", kwargs, wrapped, cause=exc)
                ranked = ranked[1:]  # the core's fallback is always left
        return Resolution(model, generator, winner, tuple(ranked), _describe_tie(ranked))

    # --- containment of generator methods ---------------------------------------------------------

    def fall_through(self, resolution: Resolution, method: str, exc: Exception) -> Resolution:
        """A method of ``resolution``'s generator raised ``exc`` before the request was sent: account
        it as a failure of the generator's plugin (one ERROR line naming the plugin, the generator and
        the method; the traceback at DEBUG) and return the resolution by the next candidate with
        another generator class (at last the core's fallback). The core's own generator is never
        skipped: its failure is raised as is."""
        if resolution.plugin == CORE_PLUGIN:
            raise exc
        failed = type(resolution.generator)
        self.generator_failed(resolution, method, exc, "the next candidate serves this call")
        rest = [c for c in resolution.candidates if c.generator is not failed]
        if not rest:
            rest = [_core_fallback()]
        return self._serve(resolution.model, resolution.generator.settings, rest)

    def generator_failed(self, resolution: Resolution, method: str, exc: Exception, outcome: str) -> None:
        """Account a failure of a method of ``resolution``'s generator (see `fall_through`); ``outcome``
        says what the call does instead. The plugin shows ``degraded`` until `generator_succeeded`."""
        generator = type(resolution.generator)
        where = _raising_method(exc, resolution.generator) or method
        label = f"{generator.__name__}.{method}" + (f" (in {where})" if where != method else "")
        kwargs = {"model": resolution.model}
        self._hook_failed(resolution.plugin, None, f"{generator.__name__}.{method}", kwargs, exc, label=label, outcome=outcome)

    def generator_succeeded(self, resolution: Resolution, *methods: str) -> None:
        """These methods of ``resolution``'s generator worked: its plugin is no longer degraded by them."""
        record = self._records.get(resolution.plugin)
        if record is not None and record.streaks:
            name = type(resolution.generator).__name__
            with self._lock:
                for method in methods:
                    record.streaks.pop(f"{name}.{method}", None)

    def _warn_missing_family(self, model: str) -> None:
        """One warning per process and family when the generic generator serves a model whose family has
        a known plugin that is not installed here (a cluster worker built with only the core, say). A
        plugin that is installed but switched off is the user's choice: no warning."""
        for prefix, (plugin, distribution) in KNOWN_FAMILIES.items():
            if model.lower().startswith(prefix):
                if plugin not in self._records and plugin not in _warned_families:
                    _warned_families.add(plugin)
                    log.warning(
                        "%s is served by the generic generator: install %s (in every worker of a cluster) "
                        "for its family's facts, modes and reply parser", model, distribution,
                    )
                return

    def generator(self, model: str | None = None, settings: Settings | None = None) -> Generator:
        """Shortcut for ``resolve(model, settings).generator``."""
        return self.resolve(model, settings).generator

    # --- the other hooks --------------------------------------------------------------------------

    def build_headers(self, model: str, settings: Settings, resolution: Resolution | None = None) -> dict[str, str]:
        """Core headers, then every plugin's ``build_headers`` on top (plugin-name order); no Authorization.

        ``resolution`` is the generator serving the call (resolved here when None); each plugin's
        ``build_headers`` may read it, e.g. ``resolution.plugin``, to add a header only to its own calls.

        A header that cannot be sent (CR/LF, non-ASCII, a reserved name such as ``Authorization``) is
        dropped with an error line naming the plugin (once per plugin and problem); the plugin's
        other headers and the request go on.
        """
        contributions: list[tuple[str, Mapping[str, str]]] = []
        if resolution is None:
            resolution = self.resolve(model, settings)
        results = self._call_each("build_headers", {"model": model, "settings": settings, "resolution": resolution})
        for plugin, headers in sorted(results, key=lambda r: r[0]):
            if headers:
                contributions.append((plugin, self._valid_headers(plugin, headers, model)))
        return merge_plugin_headers(core_headers(settings), contributions)

    def _valid_headers(self, plugin: str, headers: Mapping[str, str], model: str) -> dict[str, str]:
        valid: dict[str, str] = {}
        problems: list[HeaderError] = []
        for name, value in headers.items():
            try:
                if isinstance(name, str) and name.strip().lower() == "authorization":
                    raise HeaderError(
                        plugin,
                        "build_headers returned 'Authorization'; the core always sends the configured key "
                        "(OPENROUTER_API_KEY) as Authorization, so the plugin's value was dropped, not sent",
                    )
                check_header(plugin, name, value)
            except HeaderError as exc:
                problems.append(exc)
                continue
            valid[name] = value
        record = self._records.get(plugin)
        if record is not None and (problems or record.bad_headers):
            with self._lock:
                record.bad_headers = bool(problems)
                for problem in problems:
                    detail = str(problem).removeprefix(f"plugin {plugin!r}: ")
                    record.failures += 1
                    where = _for_model({"model": model})
                    record.error = f"hook build_headers returned an unsendable header{where}: {detail}"
                    if ("build_headers", detail) not in record.logged:
                        record.logged.add(("build_headers", detail))
                        log.error("%s: %s; header dropped, not sent", record.describe(), record.error)
        return valid

    def parse_structured(self, model: str, text: str, schema: Mapping[str, Any] | None) -> Any | None:
        """Run the ``parse_structured`` chain: the first non-None result wins; None when nobody parsed it
        (`parse_structured_by` without the parser's name)."""
        return self.parse_structured_by(model, text, schema)[1]

    def parse_structured_by(
        self,
        model: str,
        text: str,
        schema: Mapping[str, Any] | None,
        *,
        skip: frozenset[str] = frozenset(),
        running: list[tuple[str, float]] | None = None,
    ) -> tuple[str | None, Any | None]:
        """The ``parse_structured`` chain, with the name of the plugin whose parser produced the value
        (``(None, None)`` when nobody parsed it).

        A parser that raises is skipped for this reply; the next one (at last the core's) goes on. So is
        one in ``skip`` (the caller abandoned it for this reply) and one that passed `PARSE_DEADLINE`
        less than `HUNG_PARSER_PAUSE` seconds ago. ``running`` receives (plugin, start time) before each
        parser is called and the core's name once the chain is over, so the watchdog, or a caller that
        gives up waiting, knows which one hung (`replies.offload.off_loop_within`); a parser that returns
        but took longer than `PARSE_DEADLINE` is accounted as overrun (`parse_overran`) all the same."""
        if self._hung:
            skip = skip | self._hung_parsers()
        if running is None:
            running = []
        try:
            for plugin, result in self._call_each(
                "parse_structured", {"model": model, "text": text, "schema": schema}, first_result=True,
                skip=skip, running=running,
            ):
                return plugin, result
            return None, None
        finally:
            self._check_overrun(running, model)
            running.append((CORE_PLUGIN, time.monotonic()))  # the chain is over: no plugin parser runs now

    def _hung_parsers(self) -> frozenset[str]:
        now = time.monotonic()
        return frozenset(name for name, when in list(self._hung.items()) if now - when < HUNG_PARSER_PAUSE)

    def _check_overrun(self, running: list[tuple[str, float]], model: str) -> None:
        now = time.monotonic()
        for index, (name, started) in enumerate(running):
            ended = running[index + 1][1] if index + 1 < len(running) else now
            if ended - started > PARSE_DEADLINE and name not in self._hung_parsers():
                self.parse_overran(name, model, ended - started)

    def parse_overran(self, plugin: str, model: str, seconds: float) -> None:
        """Account for a ``parse_structured`` call of ``plugin`` that passed `PARSE_DEADLINE`: the plugin
        shows ``degraded`` (logged once, as for any failed hook call) and its parser is skipped for
        `HUNG_PARSER_PAUSE` seconds, for every model (a hung parser would otherwise take a worker thread
        per reply); after that, for the process's life, `parses_off_loop`. Accounted once per pause (the
        watchdog's interrupt and the end of the chain both report it). The core's parser is never skipped."""
        with self._lock:
            if plugin == CORE_PLUGIN or plugin in self._hung_parsers():
                return
            self._hung[plugin] = time.monotonic()
            self._overran.add(plugin)
        problem = (
            f"parse_structured took {seconds:.1f}s, over the {PARSE_DEADLINE:g}s deadline; abandoned for that reply, "
            f"skipped for {HUNG_PARSER_PAUSE:g}s, then run on a worker thread"
        )
        self._hook_failed(plugin, None, "parse_structured", {"model": model}, PluginError(plugin, problem), probe=False)

    @property
    def parses_off_loop(self) -> bool:
        """True when the parser of a registered plugin passed `PARSE_DEADLINE` in this process: every
        structured reply is then parsed on a worker thread, short ones too, so a parser blocked in C (which
        the watchdog cannot interrupt) can hold up the event loop at most once per plugin and process.
        Asked before every parse: an attribute read while no parser ever overran."""
        overran = self._overran
        return bool(overran) and any(name in self._records for name in list(overran))

    @property
    def observed(self) -> bool:
        """True when a loaded plugin implements ``on_event`` (cached until the plugins change: asked
        before every call)."""
        return self._implements("on_event")

    @property
    def builds_headers(self) -> bool:
        """True when a loaded plugin implements ``build_headers`` (cached as `observed`). Without one,
        `build_headers` depends on the settings alone."""
        return self._implements("build_headers")

    def _implements(self, hook: str) -> bool:
        """Whether a loaded plugin implements ``hook``, cached until the plugins change (`_epoch`)."""
        cached = self._implemented.get(hook)
        if cached is not None and cached[0] == self._epoch:
            return cached[1]
        value = bool(self._hook_order(hook))
        self._implemented[hook] = (self._epoch, value)
        return value

    def notify(self, event: CallEvent) -> None:
        """Hand ``event`` to every plugin's ``on_event``; a hookimpl that raises is isolated (logged, skipped)."""
        self._call_each("on_event", {"event": event})

    # --- calling hooks in isolation ---------------------------------------------------------------

    def _hook_order(self, hook_name: str) -> list[pluggy.HookImpl]:
        epoch = self._epoch
        cached = self._impls.get(hook_name)
        if cached is not None and cached[0] == epoch:
            return cached[1]
        caller = getattr(self.plugin_manager.hook, hook_name)
        impls = sorted(
            caller.get_hookimpls(), key=lambda i: (0 if i.tryfirst else 2 if i.trylast else 1, i.plugin_name)
        )
        with self._lock:
            if self._epoch == epoch:
                self._impls[hook_name] = (epoch, impls)
        return impls

    def _call_each(
        self,
        hook_name: str,
        kwargs: Mapping[str, Any],
        *,
        only: str | None = None,
        first_result: bool = False,
        skip: frozenset[str] = frozenset(),
        running: list[tuple[str, float]] | None = None,
    ) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook_name`` on its own, tryfirst first, then by plugin name.

        A call that fails (raises, or breaks the hook's contract) is skipped; see the module
        docstring for the rule. With ``first_result`` the call stops at the first non-None result.
        """
        results: list[tuple[str, Any]] = []
        for impl in self._hook_order(hook_name):
            if only is not None and impl.plugin_name != only:
                continue
            if skip and impl.plugin_name in skip and impl.plugin_name != CORE_PLUGIN:
                continue
            if running is not None:
                running.append((impl.plugin_name, time.monotonic()))
            result = self._call_one(impl, hook_name, kwargs)
            if result is _FAILED or (first_result and result is None):
                continue
            results.append((impl.plugin_name, result))
            if first_result:
                break
        return results

    def _call_one(self, impl: pluggy.HookImpl, hook_name: str, kwargs: Mapping[str, Any]) -> Any:
        function: Callable[..., Any] = impl.function
        try:
            result = function(*[kwargs[arg] for arg in impl.argnames])  # positionally, as pluggy calls them
        except Exception as exc:
            self._hook_failed(impl.plugin_name, impl, hook_name, kwargs, exc)
            return _FAILED
        problem = None if result is None else result_problem(hook_name, result)
        if problem is not None:
            self._hook_failed(impl.plugin_name, impl, hook_name, kwargs, PluginError(impl.plugin_name, problem))
            return _FAILED
        record = self._records.get(impl.plugin_name)
        if record is not None and record.streaks:
            with self._lock:
                record.streaks.pop(hook_name, None)
        return result

    def _hook_failed(
        self,
        name: str,
        impl: pluggy.HookImpl | None,
        hook_name: str,
        kwargs: Mapping[str, Any],
        exc: Exception,
        *,
        cause: BaseException | None = None,
        label: str | None = None,
        outcome: str = "skipped for this call",
        probe: bool = True,
    ) -> None:
        """Account for one failed call; log it (once per plugin, hook and exception type at ERROR,
        with its traceback at DEBUG every time); probe the hook when it keeps failing."""
        with self._lock:
            record = self._records.get(name)
            if record is None or record.status != "loaded" or (impl is not None and record.plugin is not impl.plugin):
                return  # unregistered or replaced while the call ran
            record.failures += 1
            streak = record.streaks.get(hook_name, 0) + 1
            record.streaks[hook_name] = streak
            shown = exc if cause is None else cause
            kind = type(shown).__name__
            if label is not None:  # a generator method
                record.error = f"generator method {label} raised {_short(exc)}{_for_model(kwargs)}"
            elif isinstance(exc, PluginError):
                detail = str(exc).removeprefix(f"plugin {name!r}: ")
                broke = " broke its contract" if cause is None else ""
                record.error = f"hook {hook_name}{broke}{_for_model(kwargs)}: {detail}"
            else:
                record.error = f"hook {hook_name} raised {_short(exc)}{_for_model(kwargs)}"
            first = (hook_name, kind) not in record.logged
            record.logged.add((hook_name, kind))
        if first:
            log.error(
                "%s: %s; %s (further %s from %s of this plugin are logged at DEBUG)",
                record.describe(),
                record.error,
                outcome,
                kind,
                hook_name,
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", record.describe(), record.error, exc_info=shown)
        # a generator method has no harmless input to probe; an overrun parse is accounted, not probed
        if probe and label is None and streak % DISABLE_AFTER == 0:
            self._probe(record, hook_name, kwargs, streak)

    def _probe(self, record: _Record, hook_name: str, kwargs: Mapping[str, Any], streak: int) -> None:
        """The hook failed `DISABLE_AFTER` calls in a row: call it once with harmless input. Failing
        that too, the plugin is clearly broken and is disabled; otherwise the failures came from the
        data and it stays."""
        plugin = record.plugin
        impls = [i for i in self._hook_order(hook_name) if i.plugin is plugin]
        if plugin is None or not impls:
            return
        claimed = self._claimed(record) if hook_name != "claimed_models" else ()
        probe = dict(kwargs)
        if "model" in probe:
            probe["model"] = claimed[0] if claimed else PROBE_MODEL
        if "text" in probe:
            probe["text"] = "{}"
        if "schema" in probe:
            probe["schema"] = None
        if "resolution" in probe:
            probe["resolution"] = self.resolve(probe["model"], probe["settings"])
        failure: BaseException | None = None
        try:
            for impl in impls:
                result = impl.function(**{arg: probe[arg] for arg in impl.argnames})
                problem = result_problem(hook_name, result)
                if problem is not None:
                    raise PluginError(record.name, problem)
                if isinstance(result, Candidate):
                    result.generator(model=probe["model"], settings=probe["settings"])
        except Exception as exc:
            failure = exc
        if failure is None:
            if (hook_name, "probe") not in record.logged:
                record.logged.add((hook_name, "probe"))
                log.warning(
                    "%s: hook %s failed %d calls in a row but works on harmless input (model %r): the failures "
                    "come from the data, the plugin stays loaded",
                    record.describe(),
                    hook_name,
                    streak,
                    probe.get("model"),
                )
            return
        if record.name == CORE_PLUGIN:  # never disabled: it serves every model; the failure is logged above
            return
        with self._lock:
            if record.plugin is not plugin or record.status != "loaded":
                return
            reason = (
                f"hook {hook_name} failed {streak} calls in a row and again on harmless input "
                f"(model {probe.get('model')!r}): {_short(failure)}"
            )
            self._disable(record, reason, failure)


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
