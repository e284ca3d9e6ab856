"""benchmarks/bench_concurrency.py runs end to end in its quickest form: every client subprocess
talks to the load server, every request succeeds, and the table has a row per client and setting
with ratios to raw aiohttp. No timing is asserted (figures come from running the benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
