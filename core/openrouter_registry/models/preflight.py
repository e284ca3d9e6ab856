"""Pre-flight: offline token estimates, and the context-window check made before any paid request.

    estimate_tokens("some text")            # about four characters per token; no download, no network
    check_fits(body, model, context_window)  # raises ContextLengthError when the body clearly cannot fit

The check only blocks a request that clearly cannot fit: it counts at most one token per
`MAX_CHARS_PER_TOKEN` characters (twice the usual four), so an estimate that is off by a factor of
two still never stops a request that fits; the API's own 400 covers the rest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..schemas.fastjson import MAPPING
from ..errors import ContextLengthError
from ..schemas.memo import SchemaMemo

__all__ = ["estimate_tokens", "body_characters", "check_fits", "CHARS_PER_TOKEN", "MAX_CHARS_PER_TOKEN"]

#: The usual characters per token of BPE tokenizers on English text and code (the estimate's basis).
CHARS_PER_TOKEN = 4
#: The most characters one token is assumed to cover in the pre-flight check (its safety margin).
MAX_CHARS_PER_TOKEN = 8


def estimate_tokens(text: str) -> int:
    """An offline token estimate (about four characters per token): no download, no network, and more
    than 0 for any non-empty text (Parlant divides by it)."""
    return len(text) // CHARS_PER_TOKEN + 1 if text else 0


def _text_of(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p["text"]) for p in content if isinstance(p, MAPPING) and isinstance(p.get("text"), str))
    return 0


#: ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` without building an encoder per call
#: (``json.dumps`` with options makes a new `json.JSONEncoder` each time: a third of what it costs here).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json_characters(value: Any) -> int:
    return len(_COMPACT.encode(value))


#: A schema's length as compact JSON, computed once per schema object (see memo.py).
_SCHEMA_CHARACTERS: SchemaMemo[int] = SchemaMemo(_json_characters)


def body_characters(body: Mapping[str, Any]) -> int:
    """Characters of a chat request body that count as prompt: every message's text, the
    ``response_format``'s JSON Schema and the ``tools`` definitions (billed as input; the few characters
    around them are not counted)."""
    messages = body.get("messages")
    count = sum(_text_of(m.get("content")) for m in messages if isinstance(m, MAPPING)) if isinstance(messages, list) else 0
    response_format = body.get("response_format")
    if isinstance(response_format, MAPPING):
        inner = response_format.get("json_schema")
        if isinstance(inner, MAPPING) and "schema" in inner:
            count += _SCHEMA_CHARACTERS(inner["schema"])
    elif response_format is not None:
        count += _json_characters(response_format)
    tools = body.get("tools")
    if tools:  # the tool definitions are billed as prompt too
        count += _json_characters(tools)
    return count


def check_fits(body: Mapping[str, Any], model: str, window: int | None) -> None:
    """Raise `ContextLengthError` when ``body``'s prompt, counted at `MAX_CHARS_PER_TOKEN`, plus its
    ``max_tokens`` exceeds ``model``'s context ``window`` (from its plugin or the catalog). Unknown
    window (None): nothing to check."""
    if window is None:
        return
    at_least = math.ceil(body_characters(body) / MAX_CHARS_PER_TOKEN)
    max_tokens = body.get("max_tokens")
    reserved = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
    if at_least + reserved > window:
        raise ContextLengthError(
            model=model, context_window=window, estimated_tokens=at_least, max_tokens=reserved or None
        )
