"""Parlant prompts as content parts at their section boundaries, with cache breakpoints where a model
that caches explicitly (Anthropic, Qwen, Gemini) can reuse them across requests, turns and sessions.

    parts = prompt_parts(builder, built, policy)   # None: send ``built`` as one string

``built`` is what ``builder.build()`` returned (called once by the adapter, so Parlant's ``on_build``
runs once per prompt). The parts join to exactly ``built``. The interaction history is split after each
of its events: the next turn's history starts with the same bytes (only the closing ``]`` moves), so
the end of this turn's last event is a block boundary of the next request too, and the breakpoint
placed there is read back (Anthropic reads a cached prefix that ends on a block boundary up to 20
blocks before a breakpoint). Breakpoints go after the static sections (the
sections before the first per-turn one: Parlant puts its per-schema instructions and few-shot examples
first) and after the last history event, each only when the prefix it closes reaches the model's
minimum. This module imports no Parlant: it reads the builder's ``sections`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models.caching import CachePolicy

__all__ = ["prompt_parts", "DYNAMIC_SECTIONS"]

#: Built-in sections whose text changes from turn to turn (by their enum member's name).
DYNAMIC_SECTIONS = frozenset({
    "INTERACTION_HISTORY", "CONTEXT_VARIABLES", "STAGED_EVENTS", "OBSERVATIONS", "GUIDELINES",
    "GUIDELINE_DESCRIPTIONS", "JOURNEYS", "CAPABILITIES",
})


def _name(key: Any) -> str:
    return key if isinstance(key, str) else str(getattr(key, "name", key))


def _pieces(builder: Any) -> list[tuple[str, str, list[int]]] | None:
    """(section name, its text with the separator, the offsets in it where each history event ends)."""
    pieces = []
    for key, section in getattr(builder, "sections", {}).items():
        try:
            text = section.template.format(**section.props) + "\n\n"
        except Exception:
            return None
        ends: list[int] = []
        events = section.props.get("interaction_events") if isinstance(section.props, Mapping) else None
        if _name(key) == "INTERACTION_HISTORY" and isinstance(events, list) and events:
            at = text.find(str(events))
            if at >= 0:
                running = at + 1  # after "["
                for event in events:
                    running += len(repr(event))
                    ends.append(running)
                    running += 2  # ", "
        pieces.append((_name(key), text, ends))
    return pieces


def prompt_parts(builder: Any, built: str, policy: CachePolicy, chars_per_token: int = 4) -> list[dict[str, Any]] | None:
    """``built`` as text parts with ``cache_control`` breakpoints, or None when nothing would be cached
    (the policy needs no markers, no breakpoint reaches the minimum, or the sections do not rebuild
    ``built`` exactly)."""
    if not policy.marks:
        return None
    pieces = _pieces(builder)
    if not pieces:
        return None
    whole = "".join(text for _, text, _ in pieces)
    start = len(whole) - len(whole.lstrip())
    if whole.strip() != built:
        return None
    end = start + len(built)
    cuts: dict[int, bool] = {}  # offset into whole -> a breakpoint closes there
    offset, static_end = 0, None
    for name, text, ends in pieces:
        if static_end is None and name in DYNAMIC_SECTIONS:
            static_end = offset
        for index, at in enumerate(ends):  # every event its own block: last turn's end stays a boundary
            cuts[offset + at] = index == len(ends) - 1
        offset += len(text)
    if static_end is not None:
        cuts[static_end] = True
    minimum = policy.min_tokens * chars_per_token
    marked = sorted(at for at, closes in cuts.items() if closes and start < at <= end and at - start >= minimum)
    marked = marked[-policy.max_breakpoints:] if policy.max_breakpoints else []
    if not marked:
        return None
    boundaries = sorted({start, end, *(at for at in cuts if start < at < end)})
    parts: list[dict[str, Any]] = []
    for begin, stop in zip(boundaries, boundaries[1:]):
        part: dict[str, Any] = {"type": "text", "text": whole[begin:stop]}
        if stop in marked:
            part["cache_control"] = {"type": "ephemeral"}
        parts.append(part)
    if "".join(p["text"] for p in parts) != built:
        return None
    return parts
