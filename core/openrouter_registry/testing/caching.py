"""Prompt caching as the local server bills it: Anthropic's explicit breakpoints and OpenAI's automatic
prefix cache, close enough to OpenRouter's providers that tests can assert savings and a benchmark can
measure them.

Anthropic (``anthropic/`` models, and any other model whose request carries ``cache_control``):

- the prompt is a list of blocks (each text content part; a string content is one block); a block with
  ``cache_control`` is a breakpoint; more than 4 breakpoints is a 400, as upstream;
- a breakpoint whose prefix is under the model's minimum (1,024 tokens; 2,048 Haiku 3.5; 4,096 newer
  Opus and Haiku) caches nothing;
- a read looks for the longest cached prefix that ends on a block boundary at a breakpoint or up to 20
  blocks before it (Anthropic's lookback), and refreshes its TTL; what the breakpoints close beyond the
  cached part is written;
- writes cost 1.25x the input price (2x with ``"ttl": "1h"``), reads 0.1x; entries live 5 minutes (1 h);
- only prefixes of requests that were already answered are readable (an entry is readable from the
  moment its reply was sent).

OpenAI (``openai/`` models): automatic, from 1,024 tokens, in 128-token steps of the longest prefix shared
with an earlier answered request of the same model; reads cost 0.5x; nothing is billed for writes.

For both, the prompt starts with its preamble: the ``tools`` and the ``response_format`` schema, which
upstream puts before the system message. They are billed as input, so they are part of the cacheable prefix
too (OpenAI: "the structured output schema serves as a prefix to the system message and can be cached";
Anthropic caches tools, then system, then messages); a request whose tools or schema changed reads nothing.

Tokens are counted as the server counts everything: four characters each.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

__all__ = ["PromptCache", "CacheBill", "LOOKBACK_BLOCKS", "anthropic_minimum"]

LOOKBACK_BLOCKS = 20
_MAX_BREAKPOINTS = 4
_OPENAI_MIN, _OPENAI_STEP = 1024, 128
_TTL = {"5m": 300.0, "1h": 3600.0}
_OPENAI_TTL = 600.0
_KEEP = 4096  # entries per model before the oldest go


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def anthropic_minimum(model: str) -> int:
    """The smallest prefix (tokens) a breakpoint caches on ``model``."""
    model = model.lower()
    if any(part in model for part in ("opus-4.5", "opus-4.6", "opus-4.7", "opus-4.8", "haiku-4.5")):
        return 4096
    if "haiku-3.5" in model or "3-5-haiku" in model or "3.5-haiku" in model:
        return 2048
    return 1024


@attrs.frozen
class CacheBill:
    """What caching did to one request: tokens read from and written to the cache, and the multipliers
    of the input price they are billed at. ``error`` is a 400 message when the request breaks a rule."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0
    read_price: float = 0.1
    write_price: float = 1.25
    error: str | None = None


def _blocks(messages: Sequence[Any]) -> list[tuple[str, str, Mapping[str, Any] | None]]:
    """(role, text, the block's cache_control) for every block, in prompt order."""
    blocks: list[tuple[str, str, Mapping[str, Any] | None]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role, content = str(message.get("role")), message.get("content")
        if isinstance(content, str):
            control = message.get("cache_control")
            blocks.append((role, content, control if isinstance(control, Mapping) else None))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    control = part.get("cache_control")
                    text = part.get("text")
                    blocks.append((role, text if isinstance(text, str) else "", control if isinstance(control, Mapping) else None))
    return blocks


class PromptCache:
    """The server's prompt cache, shared by its requests (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, float, int]] = {}  # key -> (readable from, expires, tokens)
        self._openai: dict[str, list[tuple[float, float, str]]] = {}  # model -> (readable from, expires, prompt)

    def bill(self, model: str, messages: Sequence[Any], answered_in: float = 0.0, preamble: str = "") -> CacheBill:
        """Read and write the cache for one request answered ``answered_in`` seconds from now.
        ``preamble`` is the text of its tools and schema, which come before its first message."""
        if model.startswith("openai/"):
            return self._automatic(model, messages, answered_in, preamble)
        blocks = _blocks(messages)
        if not any(control is not None for _, _, control in blocks):
            return CacheBill()
        return self._explicit(model, blocks, answered_in, preamble)

    def _explicit(
        self, model: str, blocks: list[tuple[str, str, Mapping[str, Any] | None]], answered_in: float, preamble: str
    ) -> CacheBill:
        breakpoints = [i for i, (_, _, control) in enumerate(blocks) if control is not None]
        if len(breakpoints) > _MAX_BREAKPOINTS:
            return CacheBill(error=f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(breakpoints)}.")
        minimum = anthropic_minimum(model)
        digests, sizes, running, total = [], [], hashlib.sha256(model.encode()), _tokens(len(preamble))
        running.update(f"{preamble}\x00".encode("utf-8", "surrogatepass"))
        for role, text, _ in blocks:
            running.update(f"{role}\x00{text}\x00".encode("utf-8", "surrogatepass"))
            digests.append(running.copy().hexdigest())
            total += _tokens(len(text))
            sizes.append(total)
        now = self.clock()
        with self._lock:
            cached = 0
            for point in breakpoints:
                for j in range(point, max(-1, point - LOOKBACK_BLOCKS - 1), -1):
                    entry = self._entries.get((model, digests[j]))
                    if entry is not None and entry[0] <= now < entry[1]:
                        cached = max(cached, sizes[j])
                        break
            written, write_price = 0, 1.25
            for point in breakpoints:
                control = blocks[point][2] or {}
                ttl = _TTL.get(str(control.get("ttl", "5m")), _TTL["5m"])
                if sizes[point] < minimum:
                    continue
                if ttl > _TTL["5m"]:
                    write_price = 2.0
                key = (model, digests[point])
                entry = self._entries.get(key)
                if entry is not None and entry[0] <= now < entry[1]:
                    self._entries[key] = (entry[0], now + ttl, entry[2])  # a hit refreshes the TTL
                    continue
                written = max(written, sizes[point] - cached)
                self._entries[key] = (now + answered_in, now + answered_in + ttl, sizes[point])
            if len(self._entries) > _KEEP:
                for stale in sorted(self._entries, key=lambda k: self._entries[k][1])[: len(self._entries) - _KEEP]:
                    del self._entries[stale]
        return CacheBill(cached_tokens=cached, cache_write_tokens=written, read_price=0.1, write_price=write_price)

    def _automatic(self, model: str, messages: Sequence[Any], answered_in: float, preamble: str) -> CacheBill:
        prompt = preamble + "".join(f"{role}\x00{text}" for role, text, _ in _blocks(messages))
        now = self.clock()
        with self._lock:
            earlier = [e for e in self._openai.get(model, []) if e[1] > now]
            shared = 0
            for ready, _, text in earlier:
                if ready <= now:
                    shared = max(shared, _common_prefix(prompt, text))
            tokens = _tokens(shared) if shared < len(prompt) else _tokens(shared) - 1  # the last token is never cached
            cached = tokens // _OPENAI_STEP * _OPENAI_STEP if tokens >= _OPENAI_MIN else 0
            earlier.append((now + answered_in, now + answered_in + _OPENAI_TTL, prompt))
            self._openai[model] = earlier[-_KEEP:]
        return CacheBill(cached_tokens=cached, cache_write_tokens=0, read_price=0.5, write_price=1.0)


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, found by halving (the C comparison does the work)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
