"""Learned structured-output modes: which mode works for which model, remembered for the process.

When OpenRouter answers that a model (or every provider behind it) cannot do the requested mode,
the generation path falls back to the generator's next mode and records it here, so later calls go
straight to the working mode: one HTTP request per generation after the first.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from .errors import APIError, BadRequestError, ModelNotAvailableError
from .generator import Mode

__all__ = ["ModeMemory", "MODE_MEMORY", "is_mode_refusal", "route_of"]

log = logging.getLogger("openrouter_registry")

_REFUSAL = re.compile(r"json[ _-]?mode|response_format|json_schema|structured[ _-]?output", re.IGNORECASE)
_NO_ENDPOINTS = "no endpoints found that can handle the requested parameters"


def is_mode_refusal(error: APIError) -> bool:
    """True when ``error`` says the model or its providers cannot do the requested response_format:
    a 400 naming JSON mode / response_format / json_schema / structured outputs, or the 404
    "No endpoints found that can handle the requested parameters"."""
    if isinstance(error, ModelNotAvailableError):
        return _NO_ENDPOINTS in error.api_message.lower()
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


class ModeMemory:
    """Thread-safe map of model id -> the mode that works; one instance per process (`MODE_MEMORY`)."""

    def __init__(self) -> None:
        self._modes: dict[tuple[str, str], Mode] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def get(self, model: str, route: str = "") -> Mode | None:
        """The learned mode for ``model`` under ``route`` (see `route_of`), or None."""
        return self._modes.get((model, route))

    def fall_back(self, model: str, refused: Mode, next_mode: Mode, route: str = "") -> None:
        """Record that ``refused`` does not work for ``model`` (under ``route``) and ``next_mode`` is
        to be used; log once."""
        with self._lock:
            self._modes[(model, route)] = next_mode
            first = (model, route, refused) not in self._warned
            self._warned.add((model, route, refused))
        if first:
            via = f" with routing {route}" if route else ""
            log.warning(
                "Model '%s' does not support JSON mode (%s)%s; using %s from now on", model, refused, via, next_mode
            )

    def clear(self) -> None:
        with self._lock:
            self._modes.clear()
            self._warned.clear()


MODE_MEMORY = ModeMemory()
