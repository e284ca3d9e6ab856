"""How each model family words a JSON answer, as the local test server imitates it.

Real models rarely return bare JSON when asked for it in the prompt: Claude wraps it in prose and a
fenced block (or continues a ``{`` prefill), Llama adds a preamble and sometimes a trailing comma.
The test server reproduces these habits so clients can test their reply parsing against them.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["family_of", "provider_of", "style_json", "compact", "indented"]

_PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic", "meta-llama": "Meta"}


def family_of(model: str) -> str:
    """The vendor part of a model id: ``"anthropic"`` for ``"anthropic/claude-3.5-sonnet:beta"``."""
    return model.split("/", 1)[0] if "/" in model else ""


def provider_of(model: str) -> str:
    """The ``provider`` the server reports for a model (DeepInfra for every family it does not know)."""
    return _PROVIDERS.get(family_of(model), "DeepInfra")


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def indented(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def style_json(value: Any, model: str, *, response_format_sent: bool, prefill: bool) -> str:
    """The reply text a model of ``model``'s family gives for the JSON ``value``.

    - ``openai/*``: compact JSON.
    - ``anthropic/*``: prose around a fenced ```json block; with a ``{`` prefill, only the
      continuation (the indented JSON without its first ``{``).
    - ``meta-llama/*``: "Here is the JSON:" and the indented JSON with a trailing comma before the
      final ``}`` (objects with at least one key).
    - anything else: compact JSON when ``response_format`` was sent, else a fenced ```json block.
    """
    family = family_of(model)
    if family == "openai":
        return compact(value)
    if family == "anthropic":
        text = indented(value)
        if prefill and text.startswith("{"):
            return text[1:]
        return f"Here is the extracted information:\n\n```json\n{text}\n```\n\nLet me know if you need anything else."
    if family == "meta-llama":
        text = indented(value)
        if isinstance(value, dict) and value:
            text = text[: -len("\n}")] + ",\n}"
        return "Here is the JSON:\n\n" + text
    if response_format_sent:
        return compact(value)
    return f"```json\n{indented(value)}\n```"
