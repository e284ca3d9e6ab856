"""benchmarks/bench_concurrency.py runs end to end in its quickest form: every client subprocess
talks to the load server, every request succeeds, and the table has a row per client and setting
with ratios to raw aiohttp. No timing is asserted (figures come from running the benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.out_of_process  # each benchmark runs as a child process

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_concurrency.py"


def test_bench_concurrency_quick(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--clients", "ours,raw-aiohttp", "--settings", "0.02x4,0.02x8",
         "--requests", "12", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["client"], r["in_flight"]) for r in rows] == [
        ("ours", 4), ("raw-aiohttp", 4), ("raw-aiohttp", 8), ("ours", 8),  # order alternates per setting
    ]
    for row in rows:
        assert "failed" not in row, row
        assert (row["ok"], row["sent"], row["errors"]) == (12, 12, {})
        assert row["rps"] > 0 and row["cpu_ms"] > 0 and row["max_rss_kb"] > 0
    assert [r["rps_ratio"] for r in rows if r["client"] == "raw-aiohttp"] == [1.0, 1.0]
    assert set(result["memory_kb_per_in_flight"]) == {"ours", "raw-aiohttp"}
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [cell.strip() for cell in table[0].split("|")[1:-1]] == [
        "latency", "in flight", "client", "req/s", "vs aiohttp", "CPU ms/req", "CPU vs aiohttp", "peak RSS MB",
        "ok / sent", "errors",
    ]
    assert len(table) == 1 + len(rows) and all("12 / 12" in line for line in table[1:])
    assert "Memory per request in flight" in done.stdout


PARLANT_COST = ROOT / "benchmarks" / "bench_parlant_cost.py"


def test_bench_parlant_cost_quick(tmp_path: Path) -> None:
    """A real Parlant server, two turns a conversation, caching on and off (about 40 s): what each turn
    sent and what the local server billed, as the benchmark's table shows it."""
    out = tmp_path / "cost.json"
    done = subprocess.run(
        [sys.executable, str(PARLANT_COST), "--models", "anthropic/claude-3.5-sonnet", "--turns", "2",
         "--latency", "0.2", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    on, off = figures["anthropic/claude-3.5-sonnet auto"], figures["anthropic/claude-3.5-sonnet off"]
    (cold1, cold2), (warm1, warm2) = on["conversations"]
    # the first turn of a cold cache only writes, billed at 1.25x: it costs more than without caching
    assert cold1["cached"] == 0 and cold1["written"] > 0.5 * cold1["input_tokens"]
    assert cold1["usd_cached"] > cold1["usd_plain"]
    # the next turn reads what the first wrote (the static sections and the history up to its last event)
    assert cold2["cached"] > 0.75 * cold2["input_tokens"] and cold2["usd_cached"] < 0.35 * cold2["usd_plain"]
    # another session of the same agent reads the static prefixes from its first turn, and writes nothing new
    # beyond its own history
    assert warm1["cached"] > 0.8 * warm1["input_tokens"] and warm1["written"] < 0.1 * warm1["input_tokens"]
    assert warm2["usd_cached"] < 0.3 * warm2["usd_plain"]
    # caching off: nothing read or written, and caching sends no extra request
    assert all(row["cached"] == row["written"] == 0 for rows in off["conversations"] for row in rows)
    assert [r["requests"] for rows in on["conversations"] for r in rows] == \
        [r["requests"] for rows in off["conversations"] for r in rows]
    assert all(r["requests"] >= 5 for rows in on["conversations"] for r in rows)  # matching, journey, reply
    assert on["parlant_failures"] == off["parlant_failures"] == 0  # every answer was one Parlant could use
    assert on["startup"]["requests"] >= 20  # Parlant's start-up evaluations of 15 guidelines and a journey
    table = [line for line in done.stdout.splitlines() if line.startswith("| anthropic/claude-3.5-sonnet |")]
    assert len(table) == 1 and "met: requests <= off" in table[0]


BATCH = ROOT / "benchmarks" / "bench_batch.py"


def test_bench_batch_quick(tmp_path: Path) -> None:
    """benchmarks/bench_batch.py --quick (600 rows, about 20 s): every client writes every row once, and the
    kill-and-resume check finds no id missing or written twice (the semaphore baseline once crashed on a
    Decimal cost, unnoticed, because no test ran it)."""
    out = tmp_path / "batch.json"
    done = subprocess.run([sys.executable, str(BATCH), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures["runs"]) == {"raw-aiohttp", "gather", "ours"}
    for client, runs in figures["runs"].items():
        for run in runs:
            assert (run["status"], run["missing"], run["duplicates"], run["failed"]) == (0, 0, 0, 0), (client, run)
            assert run["rows_per_s"] > 0 and run["cpu_ms_per_row"] > 0
    resume = figures["resume"]
    assert resume["killed"] and 0 < resume["rows_before_kill"] < 600
    assert (resume["status_after"], resume["missing"], resume["duplicates"], resume["failed"]) == (0, 0, 0, 0)
