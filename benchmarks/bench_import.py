"""Cold-start benchmark: a new interpreter per run, interleaved, medians and ratios to `import httpx`.

    python benchmarks/bench_import.py [--runs 30]

Rows (each a fresh `python -c ...` process):
- python -c pass                     interpreter start-up alone
- import httpx                       the baseline (what any HTTP client pays)
- import openrouter_registry         our package import
- import + discover + resolve        import, load the installed plugins, resolve openai/gpt-4o
- import openai / import litellm     when installed, for comparison
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

CASES: list[tuple[str, str]] = [
    ("python -c pass", "pass"),
    ("import httpx", "import httpx"),
    ("import openrouter_registry", "import openrouter_registry"),
    (
        "import + discover 3 plugins + resolve openai/gpt-4o",
        "from openrouter_registry import get_registry\n"
        "r = get_registry()\n"
        "assert r.resolve('openai/gpt-4o').plugin == 'openrouter_gpt'\n"
        "assert sum(p.status == 'loaded' for p in r.plugins()) == 4",
    ),
]
OPTIONAL = [("import openai", "openai"), ("import litellm", "litellm")]


def run_once(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER", "PYTHON"))}
    cases = CASES + [(label, f"import {mod}") for label, mod in OPTIONAL if importlib.util.find_spec(mod)]
    for _label, code in cases:  # warm the OS file cache once
        run_once(code, env)
    samples: dict[str, list[float]] = {label: [] for label, _ in cases}
    for _ in range(args.runs):  # interleave the cases so noise hits all of them alike
        for label, code in cases:
            samples[label].append(run_once(code, env))
    base = statistics.median(samples["import httpx"])
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, interleaved; times are medians of whole processes")
    print(f"| {'case':55} | {'median ms':>9} | {'p10 ms':>7} | {'p90 ms':>7} | {'x httpx':>7} |")
    print(f"|{'-' * 57}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for label, _ in cases:
        values = sorted(samples[label])
        median = statistics.median(values)
        p10, p90 = values[len(values) // 10], values[(len(values) * 9) // 10]
        print(f"| {label:55} | {median * 1e3:9.1f} | {p10 * 1e3:7.1f} | {p90 * 1e3:7.1f} | {median / base:7.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
