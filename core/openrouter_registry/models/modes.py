"""Learned structured-output modes: which mode works for which model, remembered for the process
and, in the cache dir, for the processes that come after it.

When OpenRouter answers that a model (or every provider behind it) cannot do the requested mode,
the generation path falls back to the generator's next mode and records it here, so later calls go
straight to the working mode: one HTTP request per generation after the first.

Given the settings, a learned mode is also written to ``<OPENROUTER_CACHE_DIR>/modes-<base URL
hash>.json`` (per model and routing, with the time it was learned; atomically, merged with what other
processes wrote) and read back by a later process until it is ``OPENROUTER_CATALOG_TTL`` seconds old.
A corrupt or unwritable file is a warning, never an error; ``OPENROUTER_CATALOG=off`` keeps modes in
memory only.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from .catalog import CLOCK_SKEW, cache_file, read_json, write_atomic
from ..errors import APIError, BadRequestError, ModelNotAvailableError
from .generator import KNOWN_MODES, Mode
from ..settings import Settings

__all__ = ["ModeMemory", "MODE_MEMORY", "LearnedMode", "is_mode_refusal", "route_of"]

log = logging.getLogger("openrouter_registry")

_REFUSAL = re.compile(r"json[ _-]?mode|response_format|json_schema|structured[ _-]?output", re.IGNORECASE)
_NO_ENDPOINTS = "no endpoints found that can handle the requested parameters"
#: The 404 for a request with ``tools`` (the ``tools`` mode) that no provider of the model serves.
_NO_TOOL_ENDPOINTS = "no endpoints found that support tool use"


def is_mode_refusal(error: APIError, mode: str | None = None) -> bool:
    """True when ``error`` says the model or its providers cannot do the requested response_format:
    a 400 naming JSON mode / response_format / json_schema / structured outputs, or the 404s
    "No endpoints found that can handle the requested parameters" and "... that support tool use" (for the ``tools`` ``mode`` only)."""
    if isinstance(error, ModelNotAvailableError):
        message = error.api_message.lower()
        return _NO_ENDPOINTS in message or mode == "tools" and _NO_TOOL_ENDPOINTS in message
    if isinstance(error, BadRequestError) and error.status == 400:
        text = error.api_message + " " + json.dumps(error.metadata, default=str)
        return bool(_REFUSAL.search(text))
    return False


def route_of(extra_body: Mapping[str, Any] | None) -> str:
    """The routing options that decide which providers serve a request (``provider``, ``models``), as a
    key: a refusal learned with one routing says nothing about another. "" for the default routing."""
    if not extra_body:
        return ""
    routing = {k: extra_body[k] for k in ("provider", "models") if extra_body.get(k) is not None}
    return json.dumps(routing, sort_keys=True, separators=(",", ":"), default=str) if routing else ""


@attrs.frozen
class LearnedMode:
    """One line of the modes file: ``mode`` works for ``model`` under ``route``, learned at ``learned_at``
    (``time.time()``)."""

    model: str
    route: str
    mode: Mode = attrs.field(validator=attrs.validators.in_(KNOWN_MODES))
    learned_at: float


_converter = cattrs.Converter()
_FORMAT = 1
_Key = tuple[str, str]
#: The largest learned-modes file read (a few hundred bytes per model); a larger one is ignored with a warning.
MAX_MODES_BYTES = 4 * 1024 * 1024


def _read_modes(path: Path, ttl: float) -> dict[_Key, LearnedMode]:
    """The unexpired entries of the modes file at ``path``; anything unusable (a hostile or corrupt
    file included) is a warning and an empty answer, never an exception."""
    try:
        return _read_modes_file(path, ttl)
    except Exception as exc:  # a warning, never an error: the modes are learned again
        log.warning("Ignoring the learned-modes file %s (%s)", path, type(exc).__name__)
        return {}


def _read_modes_file(path: Path, ttl: float) -> dict[_Key, LearnedMode]:
    data = read_json(path, max_bytes=MAX_MODES_BYTES)
    if data is None:
        return {}
    entries = data.get("modes") if isinstance(data, Mapping) and data.get("format") == _FORMAT else None
    if not isinstance(entries, list):
        log.warning("Ignoring the learned-modes file %s: not one this version wrote", path)
        return {}
    found: dict[_Key, LearnedMode] = {}
    bad = 0
    now = time.time()
    for entry in entries:
        try:
            learned = _converter.structure(entry, LearnedMode)
        except (cattrs.BaseValidationError, ValueError, TypeError, RecursionError):
            bad += 1
            continue
        if not isinstance(learned.model, str) or not math.isfinite(learned.learned_at):
            bad += 1
            continue
        if -CLOCK_SKEW <= now - learned.learned_at < ttl:  # a time in the future is stale, not fresh for ever
            found[(learned.model, learned.route)] = learned
    if bad:
        log.warning("Ignored %d malformed entries in the learned-modes file %s", bad, path)
    return found


class ModeMemory:
    """Thread-safe map of model id -> the mode that works; one instance per process (`MODE_MEMORY`).

    Methods given ``settings`` also read and write the modes file of the settings' cache dir."""

    def __init__(self) -> None:
        self._modes: dict[tuple[str, str], Mode] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._files: dict[Path, dict[_Key, LearnedMode]] = {}
        self._unwritable: set[Path] = set()
        self._paths: dict[tuple[str, str | None], Path | None] = {}

    def get(self, model: str, route: str = "", settings: Settings | None = None) -> Mode | None:
        """The learned mode for ``model`` under ``route`` (see `route_of`), or None; with ``settings``,
        also what an earlier process learned (until ``catalog_ttl`` seconds old)."""
        mode = self._modes.get((model, route))
        if mode is not None or settings is None or not settings.catalog:
            return mode
        learned = self._file(settings).get((model, route))
        if learned is None or time.time() - learned.learned_at >= settings.catalog_ttl:
            return None
        return learned.mode

    def fall_back(
        self, model: str, refused: Mode, next_mode: Mode, route: str = "", settings: Settings | None = None
    ) -> None:
        """Record that ``refused`` does not work for ``model`` (under ``route``) and ``next_mode`` is
        to be used; log once. With ``settings``, also write it to the cache dir's modes file."""
        with self._lock:
            self._modes[(model, route)] = next_mode
            first = (model, route, refused) not in self._warned
            self._warned.add((model, route, refused))
        if first:
            via = f" with routing {route}" if route else ""
            log.warning(
                "Model '%s' does not support JSON mode (%s)%s; using %s from now on", model, refused, via, next_mode
            )
        if settings is not None and settings.catalog:
            self._persist(settings, LearnedMode(model, route, next_mode, time.time()))

    def _path(self, settings: Settings) -> Path | None:
        """The modes file for ``settings``, worked out once per (base URL, cache dir): `get` asks on
        every structured call, and platformdirs plus a SHA-256 cost more than the rest of the call's
        preparation."""
        key = (settings.base_url, settings.cache_dir)
        try:
            return self._paths[key]
        except KeyError:
            path = self._paths[key] = cache_file(settings, "modes")
            return path

    def _file(self, settings: Settings) -> dict[_Key, LearnedMode]:
        path = self._path(settings)
        if path is None:
            return {}
        with self._lock:
            held = self._files.get(path)
        if held is None:
            held = _read_modes(path, settings.catalog_ttl)
            with self._lock:
                held = self._files.setdefault(path, held)
        return held

    def _persist(self, settings: Settings, learned: LearnedMode) -> None:
        path = self._path(settings)
        if path is None:
            return
        with self._lock:  # merge with what other processes wrote since
            current = _read_modes(path, settings.catalog_ttl)
            current[(learned.model, learned.route)] = learned
            self._files[path] = current
            try:
                write_atomic(path, {"format": _FORMAT, "modes": [_converter.unstructure(m) for m in current.values()]})
            except OSError as exc:
                if path not in self._unwritable:
                    self._unwritable.add(path)
                    log.warning("Could not save learned modes to %s (%s); they stay in memory", path, exc)

    def clear(self) -> None:
        """Forget what this process learned and read (the files stay)."""
        with self._lock:
            self._modes.clear()
            self._warned.clear()
            self._files.clear()
            self._unwritable.clear()
            self._paths.clear()


MODE_MEMORY = ModeMemory()
