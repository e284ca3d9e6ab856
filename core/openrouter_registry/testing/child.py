"""A local test server in a child process: started with this package importable, ready once it prints
``listening PORT``, and stopped without leaving a process behind. Shared by `loadserver` and `faultserver`."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["start_server_process", "stop_server_process"]


def start_server_process(
    module: str, args: Sequence[str], *, timeout: float, what: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Run ``python -m module *args`` and wait (at most ``timeout`` seconds) for its ``listening PORT``
    line; return the process and the port. ``env`` adds variables (e.g. a key kept off the command line,
    where ``ps`` would show it). Raises `RuntimeError` naming ``what`` when it does not start in time."""
    package_root = str(Path(__file__).resolve().parents[2])
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, full_env.get("PYTHONPATH", "")) if p)
    process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, env=full_env)
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().decode() if readable else ""
    if not line.startswith("listening "):
        stop_server_process(process)
        raise RuntimeError(f"the {what} did not start within {timeout:g}s")
    return process, int(line.split()[1])


def stop_server_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``process`` (kill it after ``timeout`` seconds) and close its pipe."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
