"""The plugin author's surface: everything a model-family plugin imports, and nothing else.

    from openrouter_registry.plugin import ModelTable, family_hooks, parse_embedded_json

    TABLE = ModelTable(exact={"acme/writer-1": AcmeWriter}, families=[(r"acme/writer-[a-z0-9.-]+", AcmeWriter)])
    resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_embedded_json, prefix="acme/")

What is here:

- hooks: `hookimpl` (mark your hook functions), `hookspec`, `PROJECT_NAME` (the entry-point group);
  each hookspec in `openrouter_registry.plugins.hookspecs` says who calls it, when, and what a
  result means;
- generators: `Generator` (subclass it per model family), `Facts`, `Mode`, `ALL_MODES`, `KNOWN_MODES`,
  `SCHEMA_MARKER`, `schema_instruction`, `schema_name`, `is_strict_compatible`;
- prompt caching: `CachePolicy` (set ``cache_policy`` on your generator), `policy_for` (the core's table);
- matching: `ModelTable`, `Match`, `Candidate`, and `Resolution` (what ``build_headers`` receives);
- a family in one call: `family_hooks`, `FamilyHooks`, `ReplyParser`;
- the strict reply parsers (they never raise; None means "not mine"): `parse_clean_json`,
  `parse_json_reply`, `parse_embedded_json`, `parse_python_literal`, `parse_unclosed`,
  `json_candidates`, `strip_control_tokens`, `strip_preamble`;
- `Settings`, which every hook receives;
- the test kit, for a plugin's own tests (it lives in `openrouter_registry.testing`): `FakeOpenRouter`
  (a local OpenRouter-compatible server on 127.0.0.1), `Scripted`, `RecordedRequest`, and
  `HOSTILE_REPLIES` (the worst reply shapes a parser must survive).

This module and ``openrouter_registry`` are the only stable imports; the modules they name are
internal. Every name is imported on first access, so a plugin that imports this module at load
time costs the registry nothing it would not load anyway.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "hookimpl": "plugins.hookspecs",
    "hookspec": "plugins.hookspecs",
    "PROJECT_NAME": "plugins.hookspecs",
    "Generator": "models.generator",
    "Facts": "models.generator",
    "Mode": "models.generator",
    "ALL_MODES": "models.generator",
    "KNOWN_MODES": "models.generator",
    "SCHEMA_MARKER": "models.generator",
    "schema_instruction": "models.generator",
    "schema_name": "models.generator",
    "is_strict_compatible": "models.generator",
    "CachePolicy": "models.caching",
    "policy_for": "models.caching",
    "ModelTable": "plugins.matching",
    "Match": "plugins.matching",
    "Candidate": "plugins.matching",
    "Resolution": "plugins.matching",
    "family_hooks": "plugins.family",
    "FamilyHooks": "plugins.family",
    "ReplyParser": "plugins.family",
    "parse_clean_json": "replies.structured",
    "parse_json_reply": "replies.structured",
    "parse_embedded_json": "replies.structured",
    "parse_python_literal": "replies.structured",
    "parse_unclosed": "replies.structured",
    "json_candidates": "replies.structured",
    "strip_control_tokens": "replies.structured",
    "strip_preamble": "replies.structured",
    "Settings": "settings",
    "CallEvent": "http.events",
    "FakeOpenRouter": "testing",
    "Scripted": "testing",
    "RecordedRequest": "testing",
    "HOSTILE_REPLIES": "testing.hostile_replies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openrouter_registry.plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", "openrouter_registry"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .models.caching import CachePolicy as CachePolicy, policy_for as policy_for
    from .models.generator import ALL_MODES as ALL_MODES, Facts as Facts, Generator as Generator, KNOWN_MODES as KNOWN_MODES, Mode as Mode, SCHEMA_MARKER as SCHEMA_MARKER, is_strict_compatible as is_strict_compatible, schema_instruction as schema_instruction, schema_name as schema_name
    from .plugins.family import FamilyHooks as FamilyHooks, ReplyParser as ReplyParser, family_hooks as family_hooks
    from .plugins.hookspecs import PROJECT_NAME as PROJECT_NAME, hookimpl as hookimpl, hookspec as hookspec
    from .plugins.matching import Candidate as Candidate, Match as Match, ModelTable as ModelTable, Resolution as Resolution
    from .replies.structured import json_candidates as json_candidates, parse_clean_json as parse_clean_json, parse_embedded_json as parse_embedded_json, parse_json_reply as parse_json_reply, parse_python_literal as parse_python_literal, parse_unclosed as parse_unclosed, strip_control_tokens as strip_control_tokens, strip_preamble as strip_preamble
    from .http.events import CallEvent as CallEvent
    from .settings import Settings as Settings
    from .testing import FakeOpenRouter as FakeOpenRouter, RecordedRequest as RecordedRequest, Scripted as Scripted
    from .testing.hostile_replies import HOSTILE_REPLIES as HOSTILE_REPLIES
