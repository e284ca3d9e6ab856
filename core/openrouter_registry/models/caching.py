"""Prompt caching: which models need breakpoints, and where the request gets them.

    policy = policy_for("anthropic/claude-3.5-sonnet")      # CachePolicy("explicit", max_breakpoints=4, min_tokens=1024)
    messages = place_breakpoints(messages, policy, ttl=None)  # the system message and the last user message marked

OpenRouter caches a prompt's prefix in one of these ways (OpenRouter's prompt-caching guide):

- **explicit** (Anthropic, Alibaba Qwen): only what a ``cache_control`` marker closes is cached, at most 4
  markers, each on a content part; a marker whose prefix is below the model's minimum is ignored upstream
  and is not sent here. Reads cost 0.1x the input price, writes 1.25x (2x for the 1 h TTL).
- **last only** (Gemini explicit caching): as explicit, but only the last marker counts, so one is sent.
- **automatic** (OpenAI, DeepSeek, Grok, Moonshot, Gemini 2.5+ implicit): the provider caches stable
  prefixes by itself; nothing is added, and the library keeps its own additions (the schema instruction,
  a prefill) byte-identical for the same schema so that prefixes stay stable.

A family plugin states its policy on its generator (``cache_policy = CachePolicy(...)``, or a
``cache_policy_for`` method for per-model minimums); models no plugin states get `policy_for`'s table.
Where the library places markers on a plain call: the end of the leading system message(s), and the end of
the last user message (what the next turn of the conversation starts with). A caller who marked anything
(a ``cache_control`` on a content part or on a message) keeps exactly their markers: a message-level
``cache_control`` is moved onto its last content part, where OpenRouter reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

__all__ = ["CachePolicy", "CacheKind", "NO_CACHE_POLICY", "AUTOMATIC", "policy_for", "place_breakpoints", "TTLS"]

CacheKind = Literal["explicit", "last_only", "automatic", "none"]
#: The TTLs OpenRouter accepts in a ``cache_control`` (Anthropic: 5 minutes, the default, or 1 hour).
TTLS = ("5m", "1h")


@attrs.frozen
class CachePolicy:
    """How a model family caches prompts. ``kind``: ``explicit`` (markers, up to ``max_breakpoints``),
    ``last_only`` (markers, only the last counts), ``automatic`` (the provider caches by itself) or
    ``none``. ``min_tokens``: the smallest prefix the provider caches. ``ttls``: the TTLs it accepts
    beyond its default (``("1h",)`` for Anthropic), empty when none."""

    kind: CacheKind
    max_breakpoints: int = 4
    min_tokens: int = 1024
    ttls: tuple[str, ...] = ()

    @property
    def marks(self) -> bool:
        """True when the request must carry markers for anything to be cached."""
        return self.kind in ("explicit", "last_only")


NO_CACHE_POLICY = CachePolicy("none", max_breakpoints=0, min_tokens=0)
AUTOMATIC = CachePolicy("automatic", max_breakpoints=0)

_ANTHROPIC_MIN = (
    # (id fragment, minimum prefix tokens): OpenRouter's table, most specific first
    ("opus-4.5", 4096), ("opus-4.6", 4096), ("opus-4.7", 4096), ("opus-4.8", 4096), ("haiku-4.5", 4096),
    ("haiku-3.5", 2048), ("3-5-haiku", 2048), ("3.5-haiku", 2048),
)
_GEMINI_MIN = (("2.5-pro", 4096), ("pro", 4096))
_AUTOMATIC_VENDORS = ("openai/", "deepseek/", "x-ai/", "moonshotai/", "z-ai/")


def policy_for(model: str) -> CachePolicy:
    """The caching policy of ``model`` by its vendor, for models no plugin states a policy for."""
    model = model.lower()
    if model.startswith("anthropic/"):
        minimum = next((tokens for part, tokens in _ANTHROPIC_MIN if part in model), 1024)
        return CachePolicy("explicit", max_breakpoints=4, min_tokens=minimum, ttls=("1h",))
    if model.startswith("qwen/"):
        return CachePolicy("explicit", max_breakpoints=4, min_tokens=1024)
    if model.startswith("google/gemini"):
        minimum = next((tokens for part, tokens in _GEMINI_MIN if part in model), 1024)
        return CachePolicy("last_only", max_breakpoints=1, min_tokens=minimum)
    if model.startswith(_AUTOMATIC_VENDORS):
        return AUTOMATIC
    return NO_CACHE_POLICY


def _chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return 0


def _caller_marked(messages: Sequence[Mapping[str, Any]]) -> bool:
    for message in messages:
        if "cache_control" in message:
            return True
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(p, Mapping) and "cache_control" in p for p in content):
            return True
    return False


def _mark(message: dict[str, Any], control: dict[str, Any]) -> bool:
    """Put ``control`` on the last text part of ``message`` (a string content becomes one text part)."""
    content = message.get("content")
    if isinstance(content, str):
        if not content:
            return False
        message["content"] = [{"type": "text", "text": content, "cache_control": control}]
        return True
    if isinstance(content, list):
        for index in range(len(content) - 1, -1, -1):
            part = content[index]
            if isinstance(part, Mapping) and part.get("type") == "text":
                content = list(content)
                content[index] = {**part, "cache_control": control}
                message["content"] = content
                return True
    return False


def _move_message_markers(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A caller's message-level ``cache_control`` moved onto the message's last text part."""
    moved = []
    for message in messages:
        if "cache_control" in message:
            message = dict(message)
            control = message.pop("cache_control")
            if isinstance(control, Mapping):
                _mark(message, dict(control))
        moved.append(message)
    return moved


def place_breakpoints(
    messages: list[dict[str, Any]], policy: CachePolicy, ttl: str | None = None, chars_per_token: int = 4
) -> list[dict[str, Any]]:
    """``messages`` with cache markers where ``policy`` needs them (a new list; the input is not changed).

    Nothing changes for a policy that needs no markers. A caller's own markers are kept as they are. Else
    the end of the leading system messages and the end of the last user message get a marker, each only
    when the prefix it closes reaches ``policy.min_tokens`` (counted at ``chars_per_token``), at most
    ``policy.max_breakpoints`` of them (the last ones win for ``last_only``)."""
    if not policy.marks or not messages:
        return messages
    if _caller_marked(messages):
        return _move_message_markers(messages)
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl is not None and ttl in policy.ttls:
        control["ttl"] = ttl
    targets: list[int] = []
    system_end = -1
    while system_end + 1 < len(messages) and messages[system_end + 1].get("role") in ("system", "developer"):
        system_end += 1
    if system_end >= 0:
        targets.append(system_end)
    last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None)
    if last_user is not None and last_user > system_end:
        targets.append(last_user)
    minimum_chars = policy.min_tokens * chars_per_token
    prefix, chars, kept = 0, 0, []
    for index in targets:
        while prefix <= index:
            chars += _chars(messages[prefix].get("content"))
            prefix += 1
        if chars >= minimum_chars:
            kept.append(index)
    kept = kept[-policy.max_breakpoints:] if policy.max_breakpoints else []
    if not kept:
        return messages
    marked = list(messages)
    for index in kept:
        message = dict(marked[index])
        if _mark(message, control):
            marked[index] = message
    return marked
