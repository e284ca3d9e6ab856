"""Fault soak: 10,000 requests at 64 in flight through `generate`, `stream` and `embed` against a server
that mostly answers with faults; every call must end, in time, with a documented outcome.

    .venv/bin/python benchmarks/bench_faults.py [--requests 10000] [--concurrency 64] [--seed 7]
        [--kinds ok,status_429,...] [--timeout 2]

The server is `openrouter_registry.testing.faultserver.FaultServer` in its own process, answering each
request with a kind drawn from its seeded mix (default: a third normal answers, the rest 429 with
Retry-After, 500, 502, 503, 524, 529, resets, truncated bodies, HTML error pages, 200-with-error
bodies, choice-level errors, drips of a byte a second, oversized bodies, mid-stream errors and
keep-alive-only answers). The client is one `OpenRouterService` with small bounds so the run ends in
minutes: OPENROUTER_TIMEOUT=2 (``--timeout``), OPENROUTER_CONNECT_TIMEOUT=2, OPENROUTER_MAX_ATTEMPTS=3,
OPENROUTER_RETRY_AFTER_MAX=0.05, backoff 10-50 ms, and, where those settings exist,
OPENROUTER_STREAM_IDLE_TIMEOUT=1, OPENROUTER_STREAM_TIMEOUT=4, OPENROUTER_MAX_RESPONSE_BYTES=1 MB
(the server's oversized answers are 4 MB).

It prints the outcomes by kind (``ok``; each typed error; ``untyped:<Exception>``, which must be 0;
``hung``, a call that outlived the generous bound the settings imply, which must be 0; ``wrong``, an
answer returned without error that is not the server's answer, e.g. a cut-off stream that ended
quietly, which must be 0), per call, then the kinds the server served, wall time and peak RSS. The exit
status is 1 when any of untyped / hung / wrong is not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import attrs

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.testing.faultserver import DEFAULT_MIX, KINDS, FaultServer
from openrouter_registry.testing.soak import CALLS, SoakReport, soak
from openrouter_registry.http.transport import Transport

BACKOFF = (0.01, 0.05)  # base and maximum delay between attempts, seconds


def settings_for(base_url: str, api_key: str, *, timeout: float, **more: Any) -> Settings:
    """Small bounds; the transport's settings only when this checkout has them."""
    wanted: dict[str, Any] = {
        "timeout": timeout,
        "connect_timeout": 2.0,
        "max_attempts": 3,
        "retry_after_max": 0.05,
        "stream_idle_timeout": 1.0,
        "stream_timeout": 2.0 * timeout,
        "max_response_bytes": 1024 * 1024,
        **more,
    }
    known = attrs.fields_dict(Settings)
    return Settings.from_env({}, base_url=base_url, api_key=api_key, **{k: v for k, v in wanted.items() if k in known})


def service_for(settings: Settings) -> OpenRouterService:
    transport = Transport(settings, base_delay=BACKOFF[0], max_delay=BACKOFF[1])
    return OpenRouterService(settings, registry=Registry(environ={}), transport=transport)


def table(report: SoakReport, served: dict[str, int]) -> str:
    calls = [c for c in CALLS if c in report.by_call]
    kinds = sorted(report.outcomes, key=lambda k: (k != "ok", k.startswith("untyped:") or k in ("hung", "wrong"), k))
    lines = ["| outcome | " + " | ".join(calls) + " | all |", "|---" * (len(calls) + 2) + "|"]
    for kind in kinds:
        row = [str(report.by_call[c][kind]) for c in calls]
        lines.append(f"| {kind} | " + " | ".join(row) + f" | {report.outcomes[kind]} |")
    lines.append("")
    lines.append("server answers by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(served.items())))
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    kinds = args.kinds.split(",") if args.kinds else list(DEFAULT_MIX)
    mix = {kind: DEFAULT_MIX[kind] for kind in kinds}
    with FaultServer(mix, seed=args.seed, drip_interval=1.0, oversize_bytes=4 * 1024 * 1024, hang_limit=600,
                     process=True) as server:
        settings = settings_for(server.base_url, server.api_key, timeout=args.timeout)
        step = max(1, args.requests // 10)

        def progress(done: int) -> None:
            if done % step == 0:
                print(f"  {done}/{args.requests}", file=sys.stderr, flush=True)

        async with service_for(settings) as service:
            report = await soak(service, requests=args.requests, concurrency=args.concurrency,
                                max_delay=BACKOFF[1], progress=progress)
        served = server.stats()
    print(f"fault soak: {args.requests} requests, {args.concurrency} in flight, seed {args.seed}, "
          f"OPENROUTER_TIMEOUT={args.timeout:g}, bound per call {report.bound:.1f}s")
    print(table(report, served))
    untyped = sum(n for k, n in report.outcomes.items() if k.startswith("untyped:"))
    print(f"untyped {untyped} (must be 0), hung {report.outcomes['hung']} (must be 0), "
          f"wrong {report.outcomes['wrong']} (must be 0)")
    print(f"slowest call {report.slowest:.1f}s (bound {report.bound:.1f}s), wall {report.wall:.1f}s, "
          f"peak RSS {report.peak_rss_mb:.0f} MB")
    return 1 if report.bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=2.0, help="OPENROUTER_TIMEOUT for the run")
    parser.add_argument("--kinds", default="", help=f"comma-separated subset of: {', '.join(KINDS)}")
    args = parser.parse_args()
    logging.getLogger("openrouter_registry").setLevel(logging.ERROR)  # one WARNING per retry otherwise
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
