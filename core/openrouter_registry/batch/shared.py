"""A budget shared by the workers of one job, through a directory that all of them can see.

    ledger = JobLedger("/shared/job-42", worker="host-a-1234")
    run = BatchRun(service, rows, max_cost="5.00", ledger=ledger)   # the 5 USD hold for the whole job

Each worker owns one small file in the directory, ``<worker>.spent``, holding what it has committed:
the exact cost of its finished rows plus the budget bound of its rows in flight, as a decimal string.
A run adds what the job committed elsewhere (the other workers, and this worker's earlier runs)
to its own before it launches a row, so the job stops
near ``max_cost`` whatever the number of workers. There is nothing to deploy: the directory can be
local (several processes, multiprocessing or Ray on one machine) or a shared filesystem.

What it guarantees: a worker sees the others' commitments at most ``stale_after`` seconds late, so the
job can overshoot by at most the rows that other workers launched in that window, each at its bound
(one round of rows in flight). Files are written atomically (`models.catalog.write_atomic`: a
temporary file in the same directory, then a rename); a file that cannot be read counts as nothing
committed, with one warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["JobLedger", "MAX_LEDGER_BYTES"]

log = logging.getLogger("openrouter_registry")

#: A worker's file holds one decimal string; anything longer is not ours.
MAX_LEDGER_BYTES = 256
_SUFFIX = ".spent"
#: No job commits a billion USD: a larger value is not an amount this ledger wrote.
_MAX_EXPONENT = 9
_WORKER = re.compile(r"[A-Za-z0-9._-]{1,128}")


class JobLedger:
    """What the workers of one job committed, one file per worker in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], *, worker: str | None = None, stale_after: float = 0.05) -> None:
        path = Path(directory)
        if path.exists() and not path.is_dir():
            raise ConfigurationError(f"job_dir {str(path)!r} is not a directory: pass a directory every worker can see")
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"job_dir {str(path)!r} cannot be created: {exc.strerror}") from None
        worker = worker or f"{socket.gethostname()}-{os.getpid()}"
        if not _WORKER.fullmatch(worker):
            raise ConfigurationError(f"worker {worker!r} must be 1-128 letters, digits, '.', '_' or '-'")
        self.directory = path
        self.worker = worker
        self.stale_after = stale_after
        self._file = path / f"{worker}{_SUFFIX}"
        self._earlier = self._read(self._file)  # what this worker committed in earlier runs of the job
        self._others = Decimal(0)
        self._read_at = float("-inf")
        self._written_at = float("-inf")
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"JobLedger({str(self.directory)!r}, worker={self.worker!r})"

    # --- what a run calls ----------------------------------------------------------------------------

    def elsewhere(self) -> Decimal:
        """What the job committed outside the current run: this worker's earlier runs, and the other
        workers (read at most every ``stale_after`` seconds)."""
        return self._earlier + self.others()

    def others(self) -> Decimal:
        """What the other workers committed, read at most every ``stale_after`` seconds."""
        now = time.monotonic()
        if now - self._read_at >= self.stale_after:
            total = Decimal(0)
            try:
                names = os.listdir(self.directory)
            except OSError:
                names = []
            for name in names:
                if name.endswith(_SUFFIX) and name != self._file.name:
                    total += self._read(self.directory / name)
            self._others, self._read_at = total, now
        return self._others

    def publish(self, committed: Decimal) -> None:
        """Record this worker's commitment: its earlier runs plus ``committed`` by the current one. Written
        at most every ``stale_after / 2`` seconds (the latest value wins; `finish` always writes)."""
        now = time.monotonic()
        if now - self._written_at >= self.stale_after / 2:
            self._write(self._earlier + committed)
            self._written_at = now

    def finish(self, spent: Decimal) -> None:
        """The current run ended having spent ``spent``: it becomes part of this worker's earlier runs."""
        self._earlier += spent
        self._write(self._earlier)

    def total(self) -> Decimal:
        """What the whole job committed so far, read now (for reports and tests)."""
        self._read_at = float("-inf")
        return self.others() + self._read(self._file)

    # --- files ---------------------------------------------------------------------------------------

    def _read(self, path: Path) -> Decimal:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return Decimal(0)
        except OSError as exc:
            self._warn(path, f"cannot be opened ({exc.strerror})")
            return Decimal(0)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self._warn(path, "is not a regular file")
                return Decimal(0)
            raw = os.read(fd, MAX_LEDGER_BYTES + 1)
        finally:
            os.close(fd)
        try:
            text = json.loads(raw) if len(raw) <= MAX_LEDGER_BYTES else None
            value = Decimal(text) if isinstance(text, str) else None
        except (ValueError, InvalidOperation):  # not JSON, not UTF-8, not a number
            value = None
        if value is None or not value.is_finite() or value < 0 or value.adjusted() > _MAX_EXPONENT:
            self._warn(path, "does not hold an amount of USD")
            return Decimal(0)
        return value

    def _write(self, amount: Decimal) -> None:
        from ..models.catalog import write_atomic

        write_atomic(self._file, str(amount))  # a JSON string: the exact decimal digits

    def _warn(self, path: Path, problem: str) -> None:
        if path.name not in self._warned:
            self._warned.add(path.name)
            log.warning("job ledger %s %s: counted as nothing committed", path, problem)
