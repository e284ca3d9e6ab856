"""Scaling out: the `batch` command against `BatchUDF` under multiprocessing and under Ray Data.

    .venv/bin/python benchmarks/bench_scale.py [--rows 8000] [--in-flight 128,512] [--latency 0.2]
        [--workers 2] [--repeat 2] [--quick]

The server is `openrouter_registry.testing.loadserver.LoadServer` in its own process (``--latency``
seconds per answer, no 429s). The job is bench_batch's structured extraction, ``--rows`` rows. Each
setting keeps the same number of rows in flight for the whole job:

- ``cli``: ``openrouter-registry batch IN --out OUT --concurrency N``: one process, N in flight.
- ``multiprocessing``: ``multiprocessing.Pool(workers).imap_unordered(BatchUDF(concurrency=N/workers), chunks)``.
- ``ray``: ``ray.data.from_items(rows).map_batches(BatchUDF, concurrency=workers, ...)`` with an actor per
  worker, each ``N/workers`` in flight; skipped when Ray is not installed (the ``scale`` extra).

rows/s is rows over the wall time of the job itself: the CLI from process start (its start-up is part of
every job), the pool and Ray from the first batch handed out (their start-up, reported separately, is
paid once per cluster or pool). The ratio column is against the CLI in the same run; medians of
``--repeat`` runs. Figures from a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import MODEL, SCHEMA, TEMPLATE, check_output, ours_command, run_process, write_input  # noqa: E402


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def chunked(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def run_cli(source: Path, out: Path, in_flight: int, env: dict[str, str], rows: int) -> dict[str, Any]:
    run = run_process(ours_command(source, out, in_flight), env)
    missing, _, failed = check_output(out, rows)
    out.unlink()
    return {"rows_per_s": rows / run["wall_s"], "startup_s": 0.0, "missing": missing, "failed": failed}


def run_pool(rows: list[dict[str, Any]], in_flight: int, workers: int, batch_size: int) -> dict[str, Any]:
    from openrouter_registry import BatchUDF

    udf = BatchUDF(schema=SCHEMA, template=TEMPLATE, model=MODEL, concurrency=max(1, in_flight // workers))
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_noop, range(workers))  # the processes exist and have imported the library
        ready = time.perf_counter()
        out = [row for part in pool.imap_unordered(udf, chunked(rows, batch_size)) for row in part]
        done = time.perf_counter()
    ok = sum(1 for row in out if row["ok"])
    return {"rows_per_s": len(rows) / (done - ready), "startup_s": ready - started,
            "missing": len(rows) - len({row["id"] for row in out}), "failed": len(out) - ok}


def _noop(_: int) -> None:
    import openrouter_registry.batch.engines  # noqa: F401  (what a worker imports anyway)


def run_ray(rows: list[dict[str, Any]], in_flight: int, workers: int, batch_size: int, env: dict[str, str]) -> dict[str, Any] | None:
    try:
        import ray
    except ImportError:
        return None
    from openrouter_registry import BatchUDF

    started = time.perf_counter()
    keys = ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_MAX_CONNECTIONS", "OPENROUTER_CATALOG", "PYTHONPATH")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: env[k] for k in keys if k in env}})
    try:
        data = ray.data.from_items(rows)
        ray.data.from_items(rows[:workers]).map_batches(_identity).take_all()  # the cluster is up
        ready = time.perf_counter()
        out = data.map_batches(
            BatchUDF, fn_constructor_kwargs={"schema": SCHEMA, "template": TEMPLATE, "model": MODEL,
                                             "concurrency": max(1, in_flight // workers)},
            batch_size=batch_size, concurrency=workers, num_cpus=1, batch_format="numpy",
        ).take_all()
        done = time.perf_counter()
    finally:
        ray.shutdown()
    ok = sum(1 for row in out if row["ok"])
    return {"rows_per_s": len(rows) / (done - ready), "startup_s": ready - started,
            "missing": len(rows) - len({row["id"] for row in out}), "failed": len(out) - ok}


def _identity(batch: Any) -> Any:
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--in-flight", default="128,512")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="400 rows, 64 in flight, one run")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.in_flight, args.repeat = 400, "64", 1
    from openrouter_registry.testing.loadserver import LoadServer

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    source = work / "in.jsonl"
    write_input(source, args.rows)
    rows = rows_of(source)
    table: list[tuple[str, int, dict[str, Any]]] = []
    with LoadServer(latency=args.latency) as server:
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "OPENROUTER_API_KEY": server.api_key, "OPENROUTER_BASE_URL": server.base_url,
               "OPENROUTER_CATALOG": "off"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "core"), env.get("PYTHONPATH", "")) if p)
        os.environ.update({k: env[k] for k in ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_CATALOG")})
        for in_flight in (int(n) for n in args.in_flight.split(",")):
            env["OPENROUTER_MAX_CONNECTIONS"] = str(in_flight)
            os.environ["OPENROUTER_MAX_CONNECTIONS"] = str(max(1, in_flight // args.workers))
            batch_size = max(64, in_flight // args.workers * 4)
            runs: dict[str, list[dict[str, Any]]] = {"cli": [], "multiprocessing": [], "ray": []}
            for _ in range(args.repeat):
                runs["cli"].append(run_cli(source, work / "out.jsonl", in_flight, env, args.rows))
                runs["multiprocessing"].append(run_pool(rows, in_flight, args.workers, batch_size))
                ray_run = run_ray(rows, in_flight, args.workers, batch_size, env)
                if ray_run is not None:
                    runs["ray"].append(ray_run)
            for name, results in runs.items():
                if results:
                    table.append((name, in_flight, {
                        "rows_per_s": statistics.median(r["rows_per_s"] for r in results),
                        "startup_s": statistics.median(r["startup_s"] for r in results),
                        "missing": sum(r["missing"] for r in results), "failed": sum(r["failed"] for r in results),
                    }))
    print(f"bench_scale: {args.rows} rows, {args.latency * 1000:.0f} ms per answer, {args.workers} workers, "
          f"medians of {args.repeat} runs")
    print("| in flight | runner          | rows/s | vs cli | start-up s | missing | failed |")
    print("|-----------|-----------------|--------|--------|------------|---------|--------|")
    for name, in_flight, row in table:
        cli = next(r for n, f, r in table if n == "cli" and f == in_flight)
        print(f"| {in_flight:>9} | {name:<15} | {row['rows_per_s']:>6.0f} | {row['rows_per_s'] / cli['rows_per_s']:>5.2f}x "
              f"| {row['startup_s']:>10.1f} | {row['missing']:>7} | {row['failed']:>6} |")
    if not any(n == "ray" for n, _, _ in table):
        print("ray: not installed (pip install 'openrouter-registry[scale]'), skipped")


if __name__ == "__main__":
    main()
