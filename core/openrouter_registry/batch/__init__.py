"""Adapter: batches, many generations through the engine as a stream of rows. The run (bounded
concurrency, AIMD on 429s, a budget in Decimal dollars, rows that are never exceptions) and the
files of the ``batch`` command (JSON Lines input, output, resume, the output lock).

    run    BatchRun, BatchRow, BatchSummary
    files  reading input, writing and resuming output, the lock

May import: the engine and every stage below it. Every module here is internal: import
`BatchRun`, `BatchRow` and `BatchSummary` from ``openrouter_registry``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import warn_moved

_MOVED = frozenset({"BatchRun", "BatchRow", "BatchSummary", "BatchError", "ConcurrencyReport"})


def __getattr__(name: str) -> Any:
    """``from openrouter_registry.batch import BatchRun`` (the module before 0.2): served for one
    release with a DeprecationWarning."""
    if name not in _MOVED:
        raise AttributeError(f"module 'openrouter_registry.batch' has no attribute {name!r}")
    warn_moved(f"'from openrouter_registry.batch import {name}'", f"use 'from openrouter_registry import {name}'")
    return getattr(importlib.import_module(".run", __name__), name)
