"""Every module of the core and the three plugins passes `mypy --strict` (the package ships py.typed,
so its annotations are part of its contract). Parlant is installed for the tests, so the adapter is
checked against Parlant's real types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "core/openrouter_registry",
    "plugins/openrouter_gpt/openrouter_gpt",
    "plugins/openrouter_claude/openrouter_claude",
    "plugins/openrouter_llama/openrouter_llama",
]


@pytest.mark.out_of_process
def test_mypy_strict() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").exists(), f"{package} does not ship py.typed"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *PACKAGES],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
