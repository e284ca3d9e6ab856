"""Throughput under concurrency: our generate path against raw HTTP clients and the openai SDK.

    .venv/bin/python benchmarks/bench_concurrency.py [--requests 5000] [--quick] [--clients a,b]
        [--settings 0.2x32,0.2x128,0.2x512,0.2x2048,0x64] [--deadline 120] [--json out.json]

The server is `openrouter_registry.testing.loadserver.LoadServer` in its own process: every answer
to ``POST /chat/completions`` is a real-shaped ``openai/gpt-4o-mini`` structured reply, sent after
the setting's latency (simulated model time; thousands of requests can wait at once). Each setting
is ``<latency seconds>x<requests in flight>``; the default is the one of issue 7: 32, 128, 512 and
2,048 in flight with 200 ms latency, plus 64 in flight with no latency.

Clients (each run alone in its own subprocess, so CPU time and peak RSS are its own):

- ``ours``:        ``OpenRouterService.generate(prompt, schema=SCHEMA, model=MODEL)``, with its default
                   transport (whatever ``OPENROUTER_TRANSPORT`` defaults to)
- ``ours-httpx``:  the same with ``OPENROUTER_TRANSPORT=httpx`` in the environment
- ``raw-aiohttp``: ``aiohttp.ClientSession`` (connector limit = in flight): ``post`` + ``json.loads``
- ``raw-httpx``:   ``httpx.AsyncClient`` (pool = in flight): ``post`` + ``json.loads``
- ``openai``:      ``openai.AsyncOpenAI(base_url=<local server>)``: ``chat.completions.create`` with
                   ``response_format`` json_schema, then ``json.loads`` of the content

The raw clients and the SDK send the same body ours sends (model, the user message, the strict
json_schema ``response_format``). ``in flight`` coroutines each send one request after another
until ``--requests`` have been sent (or ``--deadline`` seconds passed: then the rate is taken over
the requests that finished). Before timing, each client makes a few sequential warm-up requests
(imports, caches, one connection); connecting the rest of the pool is part of the timed run.

Per client and setting it prints requests/s, CPU ms per request (the process's CPU time over the
timed run / requests), peak RSS (``ru_maxrss`` of the client process), successes, and the ratios
to raw aiohttp measured in the same run. Then, per client, "memory per request in flight": the
least-squares slope of peak RSS over the in-flight levels that share a latency.

Figures from a shared or busy machine are noisy; compare clients within one run, never across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from openrouter_registry.testing.schemas import CITY

MODEL = "openai/gpt-4o-mini"
PROMPT = "In which city and country is the Eiffel Tower? Give the city and the country."
SCHEMA: dict[str, Any] = CITY
#: What every client sends (ours builds the same body itself).
BODY: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": PROMPT}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "city_country", "strict": True, "schema": SCHEMA}},
}
CLIENTS = ("ours", "ours-httpx", "raw-aiohttp", "raw-httpx", "openai")
BASELINE = "raw-aiohttp"
DEFAULT_SETTINGS = "0.2x32,0.2x128,0.2x512,0.2x2048,0x64"
QUICK_SETTINGS = "0.05x16,0x8"
QUICK_REQUESTS = 48
WARM_UP = 4


# --- the client side (runs in a worker subprocess) ------------------------------------------------

Call = Callable[[], Awaitable[None]]


class BadStatus(Exception):
    """A raw client got an HTTP status other than 200."""


async def client_ours(base_url: str, api_key: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]], str]:
    from openrouter_registry import OpenRouterService, Registry, Settings

    settings = Settings.from_env(base_url=base_url, api_key=api_key)
    service = OpenRouterService(settings, registry=Registry())

    async def call() -> None:
        await service.generate(PROMPT, schema=SCHEMA, model=MODEL)

    transport = getattr(settings, "transport", None) or "httpx (no transport setting yet)"
    return call, service.aclose, f"transport={transport}"


async def client_raw_aiohttp(base_url: str, api_key: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]], str]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=in_flight), headers={"Authorization": f"Bearer {api_key}"},
    )
    url = f"{base_url}/chat/completions"

    async def call() -> None:
        async with session.post(url, json=BODY) as response:
            data = await response.read()
            if response.status != 200:
                raise BadStatus(response.status)
        json.loads(data)

    return call, session.close, f"aiohttp {aiohttp.__version__}"


async def client_raw_httpx(base_url: str, api_key: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]], str]:
    import httpx

    client = httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=600.0,
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
    )

    async def call() -> None:
        response = await client.post("/chat/completions", json=BODY)
        if response.status_code != 200:
            raise BadStatus(response.status_code)
        json.loads(response.content)

    return call, client.aclose, f"httpx {httpx.__version__}"


async def client_openai(base_url: str, api_key: str, in_flight: int) -> tuple[Call, Callable[[], Awaitable[None]], str]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key)

    async def call() -> None:
        completion = await client.chat.completions.create(
            model=MODEL, messages=BODY["messages"], response_format=BODY["response_format"],
        )
        json.loads(completion.choices[0].message.content or "")

    return call, client.close, f"openai {openai.__version__}"


FACTORIES = {
    "ours": client_ours,
    "ours-httpx": client_ours,
    "raw-aiohttp": client_raw_aiohttp,
    "raw-httpx": client_raw_httpx,
    "openai": client_openai,
}


async def drive(client: str, base_url: str, api_key: str, in_flight: int, requests: int, deadline: float) -> dict[str, Any]:
    call, close, note = await FACTORIES[client](base_url, api_key, in_flight)
    try:
        for _ in range(WARM_UP):
            await call()
        gc.collect()
        sent = ok = 0
        errors: Counter[str] = Counter()
        stop_at = time.monotonic() + deadline

        async def worker() -> None:
            nonlocal sent, ok
            while sent < requests and time.monotonic() < stop_at:
                sent += 1
                try:
                    await call()
                    ok += 1
                except Exception as exc:  # counted, shown in the table
                    errors[type(exc).__name__] += 1

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await close()
    return {
        "client": client, "in_flight": in_flight, "requests": requests, "sent": sent, "ok": ok, "errors": dict(errors),
        "wall": wall, "cpu": cpu, "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "note": note,
    }


def raise_file_limit() -> None:
    """Thousands of sockets in flight: lift the soft open-files limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def worker_main(args: argparse.Namespace) -> None:
    raise_file_limit()
    api_key = os.environ["BENCH_API_KEY"]
    result = asyncio.run(drive(args.worker, args.base_url, api_key, args.in_flight, args.requests, args.deadline))
    print(json.dumps(result), flush=True)


# --- the parent: servers, subprocesses, the table --------------------------------------------------


def parse_settings(text: str) -> list[tuple[float, int]]:
    settings = []
    for item in text.split(","):
        latency, _, in_flight = item.strip().partition("x")
        try:
            settings.append((float(latency), int(in_flight)))
        except ValueError:
            raise SystemExit(f"--settings: {item!r} is not <latency seconds>x<in flight>, e.g. 0.2x512") from None
    return settings


def run_client(client: str, base_url: str, api_key: str, in_flight: int, requests: int, deadline: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env["BENCH_API_KEY"] = api_key
    if client == "ours-httpx":
        env["OPENROUTER_TRANSPORT"] = "httpx"
    elif client == "ours" and "OPENROUTER_TRANSPORT" in os.environ:
        env["OPENROUTER_TRANSPORT"] = os.environ["OPENROUTER_TRANSPORT"]  # a caller's choice passes through
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", client, "--base-url", base_url,
               "--in-flight", str(in_flight), "--requests", str(requests), "--deadline", str(deadline)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=deadline + 120)
    except subprocess.TimeoutExpired:
        return {"client": client, "in_flight": in_flight, "failed": "did not finish in time"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"client": client, "in_flight": in_flight, "failed": last}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(settings: list[tuple[float, int]], clients: Sequence[str], requests: int, deadline: float,
            progress: bool) -> list[dict[str, Any]]:
    from openrouter_registry.testing.loadserver import LoadServer

    rows: list[dict[str, Any]] = []
    for index, (latency, in_flight) in enumerate(settings):
        with LoadServer(latency=latency) as server:
            # alternate the order from setting to setting so no client always runs first
            order = list(clients) if index % 2 == 0 else list(reversed(clients))
            for client in order:
                if progress:
                    print(f"  {latency:g}s x {in_flight}: {client} ...", file=sys.stderr, flush=True)
                row = run_client(client, server.base_url, server.api_key, in_flight, requests, deadline)
                row["latency"] = latency
                rows.append(row)
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if "failed" in row:
            continue
        row["rps"] = row["ok"] / row["wall"] if row["wall"] > 0 else 0.0
        row["cpu_ms"] = row["cpu"] * 1000 / row["sent"] if row["sent"] else 0.0
    for row in rows:
        base = next((r for r in rows if r["client"] == BASELINE and r["latency"] == row["latency"]
                     and r["in_flight"] == row["in_flight"] and "rps" in r), None)
        if base is None or "rps" not in row:
            continue
        row["rps_ratio"] = row["rps"] / base["rps"] if base["rps"] else None
        row["cpu_ratio"] = row["cpu_ms"] / base["cpu_ms"] if base["cpu_ms"] else None


def memory_slopes(rows: list[dict[str, Any]], clients: Sequence[str]) -> dict[str, dict[float, float]]:
    """KB of peak RSS per extra request in flight, per client and latency (least squares)."""
    slopes: dict[str, dict[float, float]] = {}
    for client in clients:
        for latency in sorted({r["latency"] for r in rows}):
            points = [(r["in_flight"], r["max_rss_kb"]) for r in rows
                      if r["client"] == client and r["latency"] == latency and "max_rss_kb" in r]
            if len({x for x, _ in points}) >= 2:
                slope = statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope
                slopes.setdefault(client, {})[latency] = slope
    return slopes


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(rows: list[dict[str, Any]], slopes: dict[str, dict[float, float]]) -> str:
    header = ("latency", "in flight", "client", "req/s", "vs aiohttp", "CPU ms/req", "CPU vs aiohttp",
              "peak RSS MB", "ok / sent", "errors")
    lines = [header]
    for row in rows:
        where = (f"{row['latency'] * 1000:g} ms", str(row["in_flight"]), row["client"])
        if "failed" in row:
            lines.append((*where, "-", "-", "-", "-", "-", "-", f"failed: {row['failed']}"[:70]))
            continue
        notes = [f"{name} x{count}" for name, count in sorted(row["errors"].items())]
        if row["sent"] < row["requests"]:
            notes.append(f"stopped at the deadline ({row['sent']} of {row['requests']} sent)")
        errors = ", ".join(notes) or "-"
        lines.append((*where, f"{row['rps']:.0f}", fmt_ratio(row.get("rps_ratio")), f"{row['cpu_ms']:.2f}",
                      fmt_ratio(row.get("cpu_ratio")), f"{row['max_rss_kb'] / 1024:.0f}",
                      f"{row['ok']} / {row['sent']}", errors))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if slopes:
        out.append("")
        out.append("Memory per request in flight (slope of peak RSS over in-flight levels at one latency):")
        for client, by_latency in slopes.items():
            parts = ", ".join(f"{kb:.1f} KB at {latency * 1000:g} ms" for latency, kb in by_latency.items())
            out.append(f"  {client}: {parts}")
    notes = sorted({f"  {r['client']}: {r['note']}" for r in rows if r.get("note")})
    if notes:
        out.append("")
        out.append("Clients:")
        out.extend(notes)
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="requests per client and setting (5000)")
    parser.add_argument("--settings", default=None, help=f"latency x in flight, comma separated ({DEFAULT_SETTINGS})")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"any of {', '.join(CLIENTS)}")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per client run before it stops sending")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_SETTINGS}, {QUICK_REQUESTS} requests")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--in-flight", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients {sorted(unknown)}; choose from {', '.join(CLIENTS)}")
    settings = parse_settings(args.settings or (QUICK_SETTINGS if args.quick else DEFAULT_SETTINGS))
    requests = args.requests or (QUICK_REQUESTS if args.quick else 5000)
    print(f"bench_concurrency: {requests} requests per client and setting; settings "
          f"{', '.join(f'{l:g}s x {n}' for l, n in settings)}; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = measure(settings, clients, requests, args.deadline, progress=not args.quick)
    add_ratios(rows)
    slopes = memory_slopes(rows, clients)
    print(table(rows, slopes))
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "memory_kb_per_in_flight": slopes}, indent=2))


if __name__ == "__main__":
    main()
