"""Batch runs: `openrouter-registry batch` against a raw-aiohttp ceiling, memory in rows, kill and resume.

    .venv/bin/python benchmarks/bench_batch.py [--rows 10000] [--concurrency 512] [--latency 0.2]
        [--rate-limit-every 400] [--repeat 3] [--quick] [--json out.json]

The server is `openrouter_registry.testing.loadserver.LoadServer` in its own process: each answer comes
after ``--latency`` seconds (simulated model time) and every ``--rate-limit-every``-th request is a 429
with ``Retry-After: 1``. The input is ``--rows`` JSONL lines ``{"id": i, "text": ...}``; the job is a
structured extraction through ``--template`` with a JSON Schema, one output line per row.

Runs, each in its own process (so CPU time and peak RSS are that process's own, from ``wait4``):

- ``raw-aiohttp``: the ceiling. ``aiohttp.ClientSession`` with ``--concurrency`` workers (connector
  limit the same), each taking the next input line, rendering the template, POSTing the same body our
  generator sends, sleeping ``Retry-After`` and resending on a 429, ``json.loads`` of the reply and of
  its content, and appending + flushing one output line. No validation, no cost sums, no resume.
- ``gather``: ``service.generate`` for each row under an ``asyncio.Semaphore(N)``, one output line per row:
  the same generation path without the batch engine (so ours vs gather is what the batch itself costs).
- ``ours``: the real command, ``openrouter-registry batch IN --out OUT --concurrency N --quiet``.

Per run it prints rows/s (rows over the wall time of the process, start-up included for both), CPU ms
per row, peak RSS, and ours/ceiling ratios (medians of ``--repeat`` runs). Memory flat in rows: ours'
peak RSS at 2,000 rows and at ``--rows`` rows. Kill and resume: ours is SIGKILLed once about half the
rows are written, then run again with ``--resume``; every id must be in the output exactly once.

Figures from a shared or busy machine are noisy; compare within one run, never across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from openrouter_registry.testing.schemas import CITY

ROOT = Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-4o-mini"
TEMPLATE = "Extract the city and the country from: {text}"
SCHEMA: dict[str, Any] = CITY
SMALL_ROWS = 2_000


# --- the ceiling (runs in a worker subprocess) -----------------------------------------------------


async def ceiling(source: Path, out: Path, concurrency: int, base_url: str, api_key: str) -> None:
    import aiohttp

    url = f"{base_url}/chat/completions"
    response_format = {"type": "json_schema", "json_schema": {"name": "city_country", "strict": True, "schema": SCHEMA}}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), headers={"Authorization": f"Bearer {api_key}"}
    ) as session:
        with open(source, encoding="utf-8") as lines, open(out, "w", encoding="utf-8") as sink:

            async def worker() -> None:
                for line in lines:  # one shared iterator: each worker takes the next line
                    row = json.loads(line)
                    body = {"model": MODEL, "messages": [{"role": "user", "content": TEMPLATE.format(**row)}],
                            "response_format": response_format}
                    while True:
                        async with session.post(url, json=body) as response:
                            data = await response.read()
                            if response.status == 429:
                                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                                continue
                            if response.status != 200:
                                raise RuntimeError(f"HTTP {response.status}")
                        break
                    reply = json.loads(data)
                    content = json.loads(reply["choices"][0]["message"]["content"])
                    sink.write(json.dumps({"id": row["id"], "ok": True, "content": content,
                                           "cost": reply["usage"]["cost"]}) + "\n")
                    sink.flush()

            await asyncio.gather(*(worker() for _ in range(concurrency)))


async def gather(source: Path, out: Path, concurrency: int, base_url: str, api_key: str) -> None:
    """`service.generate` under a semaphore, one output line per row: the same generation path as ours
    without the batch engine, so the two differ only by what the batch adds."""
    from openrouter_registry import OpenRouterService, Settings

    service = OpenRouterService(Settings.from_env(base_url=base_url, api_key=api_key, model=MODEL))
    gate = asyncio.Semaphore(concurrency)
    with open(source, encoding="utf-8") as lines, open(out, "w", encoding="utf-8") as sink:

        async def one(row: dict[str, Any]) -> None:
            async with gate:
                result = await service.generate(TEMPLATE.format(**row), schema=SCHEMA)
            sink.write(json.dumps({"id": row["id"], "ok": True, "content": result.content,
                                  "cost": None if result.cost is None else str(result.cost)}) + "\n")  # as batch writes it
            sink.flush()

        await asyncio.gather(*(one(json.loads(line)) for line in lines))
    await service.aclose()


# --- the driver ------------------------------------------------------------------------------------


def write_input(path: Path, rows: int) -> None:
    cities = [("Paris", "France"), ("Lyon", "France"), ("Osaka", "Japan"), ("Lima", "Peru")]
    with open(path, "w", encoding="utf-8") as file:
        for i in range(rows):
            city, country = cities[i % len(cities)]
            file.write(json.dumps({"id": i, "text": f"Report {i}: we landed in {city} ({country}) at dawn."}) + "\n")


def run_process(command: list[str], env: dict[str, str], kill_when: tuple[Path, int] | None = None) -> dict[str, Any]:
    """Run ``command``; wall seconds, CPU seconds and peak RSS (MiB) of that process, its exit status.
    With ``kill_when=(file, lines)``, SIGKILL it once ``file`` has that many lines."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = False
    if kill_when is not None:
        watched, lines = kill_when
        while process.poll() is None:
            if watched.exists() and watched.read_bytes().count(b"\n") >= lines:
                process.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr is not None else ""
    if process.returncode != 0 and not killed:
        raise SystemExit(f"{command[:4]} exited {process.returncode}: {error.strip()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "status": process.returncode, "killed": killed}


def ours_command(source: Path, out: Path, concurrency: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "openrouter_registry", "batch", str(source), "--out", str(out), "--model", MODEL,
            "--schema", json.dumps(SCHEMA), "--template", TEMPLATE, "--concurrency", str(concurrency), "--quiet", *extra]


def check_output(out: Path, rows: int) -> tuple[int, int, int]:
    """(ids missing, ids written more than once, rows not ok)."""
    counts: Counter[Any] = Counter()
    failed = 0
    with open(out, encoding="utf-8") as file:
        for line in file:
            row = json.loads(line)
            counts[row["id"]] += 1
            failed += not row["ok"]
    missing = sum(1 for i in range(rows) if i not in counts)
    return missing, sum(1 for c in counts.values() if c > 1), failed


def measure(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        return _measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from openrouter_registry.testing.loadserver import LoadServer

    big, small = work / "in.jsonl", work / "in-small.jsonl"
    write_input(big, args.rows)
    write_input(small, min(SMALL_ROWS, args.rows))
    results: dict[str, Any] = {"settings": {k: getattr(args, k) for k in ("rows", "concurrency", "latency", "rate_limit_every", "repeat")}}
    with LoadServer(latency=args.latency, rate_limit_every=args.rate_limit_every, retry_after=1) as server:
        env = {**os.environ, "OPENROUTER_API_KEY": server.api_key, "OPENROUTER_BASE_URL": server.base_url,
               "OPENROUTER_MAX_ATTEMPTS": "6", "OPENROUTER_MAX_CONNECTIONS": str(args.concurrency)}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "core"), env.get("PYTHONPATH", "")) if p)
        runs: dict[str, list[dict[str, Any]]] = {"raw-aiohttp": [], "gather": [], "ours": []}
        for attempt in range(args.repeat):
            for name in runs:
                out = work / f"out-{name}-{attempt}.jsonl"
                summary = work / "summary.json"
                if name == "ours":
                    command = ours_command(big, out, args.concurrency, "--summary-json", str(summary))
                else:
                    command = [sys.executable, __file__, f"--worker-{name}", str(big), str(out), str(args.concurrency),
                               server.base_url]
                run = run_process(command, env)
                run["missing"], run["duplicates"], run["failed"] = check_output(out, args.rows)
                run["rows_per_s"] = args.rows / run["wall_s"]
                run["cpu_ms_per_row"] = 1000 * run["cpu_s"] / args.rows
                if name == "ours":
                    facts = json.loads(summary.read_text())
                    run["requests"], run["concurrency"] = facts["requests"], facts["concurrency"]
                runs[name].append(run)
                out.unlink()
        results["runs"] = runs

        small_out = work / "out-small.jsonl"
        results["rss_small"] = run_process(ours_command(small, small_out, args.concurrency), env)["rss_mib"]

        resumed = work / "out-resume.jsonl"
        first = run_process(ours_command(big, resumed, args.concurrency), env, kill_when=(resumed, args.rows // 2))
        before = resumed.read_bytes().count(b"\n")
        second = run_process(ours_command(big, resumed, args.concurrency, "--resume"), env)
        missing, duplicates, failed = check_output(resumed, args.rows)
        results["resume"] = {"killed": first["killed"], "rows_before_kill": before, "status_after": second["status"],
                             "missing": missing, "duplicates": duplicates, "failed": failed}
    return results


def report(results: dict[str, Any]) -> None:
    s = results["settings"]
    print(f"bench_batch: {s['rows']} rows, concurrency {s['concurrency']}, latency {s['latency']}s, "
          f"a 429 every {s['rate_limit_every']} requests; medians of {s['repeat']} runs\n")
    print(f"{'client':<12} {'rows/s':>9} {'CPU ms/row':>11} {'peak RSS MiB':>13} {'ok rows':>8} {'vs ceiling':>11}")
    med = {name: {k: statistics.median(r[k] for r in runs) for k in ("rows_per_s", "cpu_ms_per_row", "rss_mib")}
           for name, runs in results["runs"].items()}
    base = med["raw-aiohttp"]["rows_per_s"]
    for name, runs in results["runs"].items():
        m = med[name]
        ok = min(s["rows"] - r["missing"] - r["failed"] for r in runs)
        print(f"{name:<12} {m['rows_per_s']:>9.0f} {m['cpu_ms_per_row']:>11.3f} {m['rss_mib']:>13.1f} {ok:>8} "
              f"{m['rows_per_s'] / base:>10.2f}x")
    last = results["runs"]["ours"][-1]
    c = last["concurrency"]
    print(f"\nours, last run: {last['requests']} requests for {s['rows']} rows; concurrency start {c['start']}, "
          f"min {c['min']}, final {c['final']}, {c['decreases']} decreases on 429s")
    print(f"memory in rows (ours, peak RSS): {min(SMALL_ROWS, s['rows'])} rows {results['rss_small']:.1f} MiB, "
          f"{s['rows']} rows {med['ours']['rss_mib']:.1f} MiB")
    r = results["resume"]
    verdict = "OK" if r["killed"] and not (r["missing"] or r["duplicates"] or r["failed"]) else "FAILED"
    print(f"kill and resume: SIGKILL after {r['rows_before_kill']} rows written, resume exit {r['status_after']}, "
          f"{r['missing']} ids missing, {r['duplicates']} written twice, {r['failed']} not ok: {verdict}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--worker-"):
        worker = {"--worker-raw-aiohttp": ceiling, "--worker-gather": gather}[sys.argv[1]]
        source, out, concurrency, base_url = sys.argv[2:6]
        asyncio.run(worker(Path(source), Path(out), int(concurrency), base_url, os.environ["OPENROUTER_API_KEY"]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rate-limit-every", dest="rate_limit_every", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="600 rows, concurrency 64, one run: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.concurrency, args.repeat = 600, 64, 1
    results = measure(args)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    resume = results["resume"]
    if not resume["killed"] or resume["missing"] or resume["duplicates"] or resume["failed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
