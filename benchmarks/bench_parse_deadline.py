"""What the parse deadline's watchdog costs a normal inline parse.

    .venv/bin/python benchmarks/bench_parse_deadline.py [--parses 2000] [--rounds 41]

A short structured reply (under ``OFF_LOOP_CHARS``: parsed inline, on the event loop) goes through the
``parse_structured`` chain of the installed plugins for ``openai/gpt-4o`` (the GPT plugin's parser,
then, when it declines, the core's) and schema validation, as the generation path runs it, in
``--rounds`` alternating blocks of ``--parses`` each:

- ``unwatched``: ``off_loop_within(None, ...)``: no deadline (the work is called as is);
- ``watched``:   ``off_loop_within(PARSE_DEADLINE, ..., running=..., spare=...)``, what
                 ``Engine._checked`` does: the watch is armed and disarmed around each parse, and the
                 watchdog thread looks at it every ``WATCH_POLL`` seconds while parses run.

Two replies: ``clean`` (JSON the GPT plugin's strict parser takes) and ``prose`` (JSON after prose:
the GPT parser declines, the core's finds it). The table gives the median ns per parse over the blocks
and the difference watched - unwatched, measured in the same run; the machine is shared and noisy, so
the difference, interleaved, is the figure. Last, ``watch alone``: the arming and disarming by itself,
``_watched`` around a function that does nothing against calling it (the fastest of 7 repeats of 200,000
calls each: the figure least touched by the machine's noise).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import time
import timeit
from typing import Any

from openrouter_registry import Registry
from openrouter_registry.plugins.registry import CORE_PLUGIN, PARSE_DEADLINE
from openrouter_registry.replies.offload import _watched, off_loop_within
from openrouter_registry.schemas.validation import validate

MODEL = "openai/gpt-4o"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}
REPLIES = {
    "clean": json.dumps({"city": "Paris", "country": "France"}),
    "prose": "Sure! Here is the answer: " + json.dumps({"city": "Paris", "country": "France"}) + " Hope it helps.",
}
SPARE = frozenset({CORE_PLUGIN})


def check(registry: Registry, text: str, running: list[tuple[str, float]] | None) -> Any:
    _, data = registry.parse_structured_by(MODEL, text, SCHEMA, running=running)
    assert data is not None and not validate(data, SCHEMA)
    return data


async def block(registry: Registry, text: str, parses: int, watched: bool) -> tuple[float, float]:
    """ns per parse over ``parses`` parses: wall time, and the process's CPU time (all threads, the
    watchdog's too: the steadier figure on a shared machine)."""
    started, cpu = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(parses):
        if watched:
            running: list[tuple[str, float]] = []
            await off_loop_within(
                PARSE_DEADLINE, len(text), functools.partial(check, registry, text, running),
                running=running, spare=SPARE,
            )
        else:
            await off_loop_within(None, len(text), functools.partial(check, registry, text, None))
    return (time.perf_counter_ns() - started) / parses, (time.process_time_ns() - cpu) / parses


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parses", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args()
    registry = Registry()
    plugins = [p.name for p in registry.plugins() if "parse_structured" in p.hooks]
    print(f"parse_structured chain for {MODEL}: {', '.join(plugins)}; {args.rounds} rounds of {args.parses} parses")
    print(f"{'reply':<8} {'clock':<5} {'unwatched ns':>13} {'watched ns':>11} {'difference':>11} {'ratio':>7}")
    for name, text in REPLIES.items():
        for watched in (False, True):  # warm-up
            await block(registry, text, args.parses // 10, watched)
        times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for round_ in range(args.rounds):
            for watched in ((False, True) if round_ % 2 == 0 else (True, False)):
                times[watched].append(await block(registry, text, args.parses, watched))
        for clock, index in (("wall", 0), ("cpu", 1)):
            bare = statistics.median(t[index] for t in times[False])
            watch = statistics.median(t[index] for t in times[True])
            print(f"{name:<8} {clock:<5} {bare:>13.0f} {watch:>11.0f} {watch - bare:>+11.0f} {watch / bare:>7.3f}")
    running: list[tuple[str, float]] = []
    noop = lambda: None  # noqa: E731
    bare = min(timeit.repeat(noop, number=200_000, repeat=7)) / 200_000 * 1e9
    watch = min(timeit.repeat(lambda: _watched(PARSE_DEADLINE, running, SPARE, noop), number=200_000, repeat=7))
    watch = watch / 200_000 * 1e9
    print(f"{'watch alone':<14} {bare:>13.0f} {watch:>11.0f} {watch - bare:>+11.0f}")


if __name__ == "__main__":
    asyncio.run(main())
