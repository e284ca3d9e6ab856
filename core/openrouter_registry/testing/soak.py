"""`soak`: many calls through `generate`, `stream` and `embed` against a (fault) server, each outcome counted.

    report = await soak(service, requests=1000, concurrency=64)
    report.outcomes        # Counter: "ok", "RateLimitError", "ProviderError", ..., "untyped:KeyError", "hung", "wrong"
    report.bad             # untyped + hung + wrong: 0 when every call ended in time with a documented outcome

Used by ``benchmarks/bench_faults.py`` and ``tests/test_fault_soak.py`` against `FaultServer`. The calls
rotate over ``generate`` (text), ``generate`` with a JSON schema, ``stream`` and ``embed``; each is
wrapped in an outer ``asyncio.timeout`` of `call_bound` (what the settings allow a call, generously),
so a call that outlives it is counted ``hung`` instead of blocking the run. An answer that came back
without an error but is not what the server's normal answer holds (e.g. a stream cut short that ended
quietly) is counted ``wrong``.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..errors import OpenRouterError
from ..service import OpenRouterService
from ..settings import Settings

__all__ = ["SoakReport", "soak", "call_bound", "CALLS", "EXPECTED_CONTENT"]

#: What `FaultServer`'s normal chat answer holds.
EXPECTED_CONTENT: Mapping[str, str] = {"city": "Paris", "country": "France"}
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
CALLS: tuple[str, ...] = ("generate", "generate_schema", "stream", "embed")
MODEL = "openai/gpt-4o-mini"


def call_bound(settings: Settings, *, max_delay: float = 8.0, slack: float = 5.0) -> float:
    """Seconds a call may take at most under ``settings``: every attempt at its whole deadline (the
    longer of ``timeout`` and ``stream_timeout`` when that setting exists) plus the connect timeout,
    the longest wait between attempts, and ``slack``. Generous on purpose: only a call that truly
    never ends should outlive it."""
    attempt = max(settings.timeout, float(getattr(settings, "stream_timeout", None) or 0.0)) + settings.connect_timeout
    wait = max(max_delay, settings.retry_after_max)
    attempts = settings.max_attempts
    return attempts * attempt + (attempts - 1) * wait + slack


@attrs.define
class SoakReport:
    """Outcomes by kind, by call, wall time and peak resident memory of the process (MB)."""

    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    by_call: dict[str, collections.Counter[str]] = attrs.field(factory=dict)
    wall: float = 0.0
    peak_rss_mb: float = 0.0
    bound: float = 0.0
    slowest: float = 0.0  #: seconds taken by the slowest call that ended before the bound

    @property
    def bad(self) -> int:
        """Calls that ended with an untyped exception, never ended, or returned a wrong answer."""
        return sum(n for kind, n in self.outcomes.items() if kind.startswith("untyped:") or kind in ("hung", "wrong"))

    def add(self, call: str, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self.by_call.setdefault(call, collections.Counter())[outcome] += 1


async def _one(service: OpenRouterService, call: str) -> bool:
    """Make one call; True when its answer is the server's normal answer."""
    if call == "generate":
        result = await service.generate("Where is the Eiffel tower?", model=MODEL, max_reasks=0)
        return bool(result.text) and _as_json(result.text) == EXPECTED_CONTENT
    if call == "generate_schema":
        structured = await service.generate("Where is the Eiffel tower?", model=MODEL, schema=dict(SCHEMA), max_reasks=0)
        return bool(structured.content == EXPECTED_CONTENT)
    if call == "stream":
        stream = service.stream("Where is the Eiffel tower?", model=MODEL)
        text = await stream.collect()
        return _as_json(text) == EXPECTED_CONTENT and stream.finish_reason == "stop"
    embedded = await service.embed(["a", "b"], model="openai/text-embedding-3-small")
    return len(embedded.vectors) == 2 and all(len(v) == 8 for v in embedded.vectors)


def _as_json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # not on this platform
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


async def soak(
    service: OpenRouterService,
    *,
    requests: int,
    concurrency: int = 64,
    calls: tuple[str, ...] = CALLS,
    bound: float | None = None,
    max_delay: float = 8.0,
    progress: Callable[[int], None] | None = None,
) -> SoakReport:
    """Run ``requests`` calls (rotating over ``calls``) with at most ``concurrency`` in flight."""
    report = SoakReport(bound=bound if bound is not None else call_bound(service.settings, max_delay=max_delay))
    queue = iter(range(requests))
    done = 0

    async def worker() -> None:
        nonlocal done
        for index in queue:
            call = calls[index % len(calls)]
            started = time.perf_counter()
            try:
                async with asyncio.timeout(report.bound):
                    outcome = "ok" if await _one(service, call) else "wrong"
            except builtins.TimeoutError as error:
                # asyncio.timeout raises a bare TimeoutError; ours is an OpenRouterError too
                outcome = type(error).__name__ if isinstance(error, OpenRouterError) else "hung"
            except OpenRouterError as error:
                outcome = type(error).__name__
            except Exception as error:  # the point of the soak: count what should never happen
                outcome = f"untyped:{type(error).__name__}"
            if outcome != "hung":
                report.slowest = max(report.slowest, time.perf_counter() - started)
            report.add(call, outcome)
            done += 1
            if progress is not None:
                progress(done)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    report.wall = time.perf_counter() - started
    report.peak_rss_mb = _peak_rss_mb()
    return report
