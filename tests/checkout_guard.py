"""The rule that tests write only inside their temp dirs, checked while the suite runs (conftest.py).

After each test, the directories of the checkout that git tracks are looked at (one ``stat`` each;
an entry list only when a directory's mtime moved): a new entry fails that test with its path. At
the end of the run, ``git status --porcelain`` must be what it was at the start (a changed tracked file
shows there, and so does a new entry that the per-test look missed because it came within the same
file-system timestamp tick as the previous change of its directory). The caches of the tools the suite runs, which git ignores, may appear: Python's
``__pycache__``, pytest's ``.pytest_cache``, Hypothesis's ``.hypothesis`` (the local profile's example
database) and mypy's ``.mypy_cache`` (``tests/test_typing.py``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TOOL_CACHES = frozenset({"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache"})


def tracked_dirs(root: Path) -> list[Path]:
    """The checkout's directories that hold a file git tracks (the root included)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    dirs = {root}
    for name in listed.decode("utf-8", "surrogateescape").split("\0"):
        parent = Path(name).parent
        while parent != Path("."):
            dirs.add(root / parent)
            parent = parent.parent
    return sorted(dirs)


class CheckoutGuard:
    """What the checkout's tracked directories hold; `new_entries` says what appeared since the last look."""

    def __init__(self, dirs: list[Path]) -> None:
        self._seen = {d: (self._mtime(d), self._entries(d)) for d in dirs}

    @staticmethod
    def _mtime(path: Path) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except FileNotFoundError:
            return -1

    @staticmethod
    def _entries(path: Path) -> frozenset[str]:
        try:
            return frozenset(os.listdir(path))
        except FileNotFoundError:
            return frozenset()

    def new_entries(self) -> list[Path]:
        found = []
        for directory, (mtime, entries) in self._seen.items():
            now = self._mtime(directory)
            if now == mtime:
                continue
            current = self._entries(directory)
            self._seen[directory] = (now, current)
            found += [directory / name for name in sorted(current - entries - TOOL_CACHES)]
        return found


def git_status(root: Path) -> list[str]:
    """``git status --porcelain`` of the checkout (changed tracked files and new untracked ones)."""
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root,
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()
