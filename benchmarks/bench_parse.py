"""Reply-parsing benchmark: parse time per MB of reply for the worst shapes found, per parser, and the
longest event-loop stall while the generation path parses such a reply.

    .venv/bin/python benchmarks/bench_parse.py [--mb 0.1,1] [--runs 3] [--shapes a,b]

For each shape and size (a reply of about ``--mb`` MB built to be slow: the shapes of
``openrouter_registry.testing.hostile_replies`` (stray closers after 499 openers, deep brackets, fence
marks, Python literals, repairable objects, escaped quotes...), the largest block ``json_repair`` is given,
prose before JSON, and clean JSON), each parser
is timed ``--runs`` times and the median is printed in seconds per MB of reply:

- ``core``: `parse_json_reply` (the generic parser, ``trylast``: what any other model gets);
- ``claude``: `parse_embedded_json`; ``llama``: `parse_python_literal`; ``gpt``: `parse_clean_json`;
- ``chain``: the whole ``parse_structured`` hook chain for ``anthropic/claude-3.5-sonnet`` (Claude's
  parser, then the core's), as the generation path runs it.

Baseline, measured in the same run: ``json.loads`` of ``--mb`` MB of clean JSON (the C decoder), per
MB; the ``x json`` column is the chain's time over it. ``loop stall`` is the longest gap seen by a 1 ms
ticker on the event loop while ``offload.off_loop`` runs the chain on the reply (what
``OpenRouterService.generate`` does): the event loop keeps running while a big reply is parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from openrouter_registry import Registry
from openrouter_registry.replies.offload import off_loop
from openrouter_registry.testing.hostile_replies import HOSTILE_REPLIES
from openrouter_registry.replies.structured import (
    MAX_REPAIR_CHARS,
    parse_clean_json,
    parse_embedded_json,
    parse_json_reply,
    parse_python_literal,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}

SHAPES: dict[str, Callable[[int], str]] = {
    **HOSTILE_REPLIES,
    "one-big-repair": lambda n: "{'a': [" + "1, " * (min(n, MAX_REPAIR_CHARS - 16) // 3) + "]}"
    + " word" * max(0, (n - MAX_REPAIR_CHARS) // 5),
    "prose-then-json": lambda n: "word " * (n // 5) + json.dumps({"city": "Paris", "country": "France"}),
    "clean-json": lambda n: json.dumps({"city": "Paris", "country": "France", "items": list(range(n // 8))}),
}

Parser = Callable[[str, Mapping[str, Any] | None], Any]


def _chain() -> Parser:
    registry = Registry()
    return lambda text, schema: registry.parse_structured("anthropic/claude-3.5-sonnet", text, schema)


def _median_seconds(parser: Parser, text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        parser(text, SCHEMA)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _loop_stall(parser: Parser, text: str) -> float:
    """The longest gap between 1 ms ticks of the event loop while the reply is parsed off the loop."""
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await off_loop(len(text), parser, text, SCHEMA)
    done = True
    await task
    return longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", default="0.1,1", help="comma-separated reply sizes in MB (default 0.1,1)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per cell, median printed (default 3)")
    parser.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    args = parser.parse_args()
    sizes = [int(float(mb) * 1_000_000) for mb in args.mb.split(",")]
    chain = _chain()
    parsers: dict[str, Parser] = {
        "core": parse_json_reply,
        "claude": parse_embedded_json,
        "llama": parse_python_literal,
        "gpt": parse_clean_json,
        "chain": chain,
    }
    for warm in parsers.values():  # imports (json_repair, jsonschema) are not parse time
        warm("{'city': 'x', 'country': 'y',}", SCHEMA)

    clean = json.dumps({"items": [{"city": "Paris", "n": i} for i in range(max(sizes) // 25)]})
    baseline = statistics.median(_time_loads(clean) for _ in range(max(3, args.runs))) / (len(clean) / 1e6)
    print(f"baseline json.loads, clean JSON: {baseline * 1e3:.1f} ms/MB ({len(clean) / 1e6:.2f} MB)\n")

    names = [n for n in args.shapes.split(",") if n] or list(SHAPES)
    header = f"{'shape':26} {'MB':>5} " + " ".join(f"{name + ' s/MB':>12}" for name in parsers)
    print(header + f" {'x json':>8} {'loop stall ms':>14}")
    print("-" * (len(header) + 24))
    for name, size in [(name, size) for size in sizes for name in names]:
        text = SHAPES[name](size)
        mb = len(text) / 1e6
        per_mb = {label: _median_seconds(p, text, args.runs) / mb for label, p in parsers.items()}
        stall = asyncio.run(_loop_stall(chain, text))
        cells = " ".join(f"{per_mb[label]:12.3f}" for label in parsers)
        print(f"{name:26} {mb:5.2f} {cells} {per_mb['chain'] / baseline:8.0f} {stall * 1e3:14.1f}", flush=True)
    print("\ns/MB: median parse time per MB of reply; x json: the chain's time over json.loads of clean JSON;")
    print("loop stall: longest event-loop gap while the chain parses the reply through offload.off_loop.")


def _time_loads(text: str) -> float:
    started = time.perf_counter()
    json.loads(text)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
