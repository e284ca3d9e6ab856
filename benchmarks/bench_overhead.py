"""Sequential overhead of the whole generate path against raw httpx ``post`` + ``json.loads``.

    .venv/bin/python benchmarks/bench_overhead.py [--requests 2000] [--rounds 10] [--profile]

One request at a time, on one event loop, against `openrouter_registry.testing.loadserver.LoadServer`
(no latency, in its own process): time per request of

- ``ours``:      ``OpenRouterService.generate(PROMPT, schema=SCHEMA, model=MODEL)``: resolve the
                 generator, build body and headers, send, decode, parse, validate, result; with the
                 default transport, and (``ours-httpx``, once ``OPENROUTER_TRANSPORT`` exists) on
                 plain httpx, the baseline's own stack: that row is the overhead of our path alone;
- ``raw-httpx``: ``httpx.AsyncClient.post(...)`` of the same body + ``json.loads`` of the reply.

Both are warmed up first, then measured in ``--rounds`` alternating blocks (``--requests`` / rounds
each); the table gives the median time per request over the blocks and the ratio ours / raw httpx
(issue 7's target: at most 1.1x), in wall time and in the client process's CPU time (the server
runs in another process, so CPU time is the steadier figure on a busy machine). The difference is what our path adds per request on top of
the HTTP client it uses. ``--profile`` runs ours once more under cProfile and prints the functions
with the most own time (after warm-up, so it shows the steady state, not first-call caches).

Figures from a shared or busy machine are noisy; the ratio, measured interleaved, is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_concurrency import BODY, MODEL, PROMPT, SCHEMA  # noqa: E402  (one request shape for both benchmarks)


async def measure(base_url: str, api_key: str, requests: int, rounds: int, profile: bool) -> None:
    import httpx

    from openrouter_registry import OpenRouterService, Registry, Settings

    settings = Settings.from_env({}, base_url=base_url, api_key=api_key)
    raw = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"})
    services = {"ours": OpenRouterService(settings, registry=Registry())}
    if hasattr(settings, "transport"):  # OPENROUTER_TRANSPORT exists: also ours on the baseline's own stack
        services["ours-httpx"] = OpenRouterService(settings.replace(transport="httpx"), registry=Registry())

    def generate(service: OpenRouterService) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            await service.generate(PROMPT, schema=SCHEMA, model=MODEL)

        return call

    async with raw:
        async def raw_httpx() -> None:
            response = await raw.post("/chat/completions", json=BODY)
            response.raise_for_status()
            json.loads(response.content)

        clients: dict[str, Callable[[], Awaitable[None]]] = {name: generate(s) for name, s in services.items()}
        clients["raw-httpx"] = raw_httpx
        for call in clients.values():  # warm-up: imports, caches, the connection
            for _ in range(50):
                await call()
        per_block = max(1, requests // rounds)
        times: dict[str, list[float]] = {name: [] for name in clients}
        cpu: dict[str, list[float]] = {name: [] for name in clients}
        for block in range(rounds):
            order = list(clients) if block % 2 == 0 else list(reversed(clients))
            for name in order:
                call = clients[name]
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(per_block):
                    await call()
                times[name].append((time.perf_counter() - start) / per_block)
                cpu[name].append((time.process_time() - start_cpu) / per_block)
        wall = {name: statistics.median(values) for name, values in times.items()}
        used = {name: statistics.median(values) for name, values in cpu.items()}
        print(f"bench_overhead: {per_block * rounds} sequential requests per client in {rounds} alternating blocks")
        print("| client     | µs per request | vs raw httpx | client CPU µs per request | vs raw httpx |")
        print("|------------|----------------|--------------|---------------------------|--------------|")
        for name in clients:
            print(f"| {name:<10} | {wall[name] * 1e6:>14.0f} | {wall[name] / wall['raw-httpx']:>11.2f}x "
                  f"| {used[name] * 1e6:>25.0f} | {used[name] / used['raw-httpx']:>11.2f}x |")
        for name in services:
            print(f"{name} adds {(wall[name] - wall['raw-httpx']) * 1e6:.0f} µs per request "
                  f"({(used[name] - used['raw-httpx']) * 1e6:.0f} µs of client CPU); medians of the blocks")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(per_block):
                await clients["ours"]()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
        for service in services.values():
            await service.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per client")
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks the requests are split into")
    parser.add_argument("--profile", action="store_true", help="also profile ours (cProfile, own time)")
    args = parser.parse_args()
    from openrouter_registry.testing.loadserver import LoadServer

    with LoadServer() as server:
        asyncio.run(measure(server.base_url, server.api_key, args.requests, args.rounds, args.profile))


if __name__ == "__main__":
    main()
