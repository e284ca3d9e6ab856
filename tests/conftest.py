"""Shared test set-up: tests import helpers from each other by module name, and Parlant (imported by
the adapter's tests) writes its files under a temporary PARLANT_HOME, never into the checkout.

The model catalog and the learned modes are cached on disk: every test gets its own empty cache dir
(``OPENROUTER_CACHE_DIR``, and the platformdirs default for settings built from an empty environment,
also in CLI subprocesses through ``XDG_CACHE_HOME``), so no test reads or writes the user's real cache.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PARLANT_HOME", tempfile.mkdtemp(prefix="parlant-home-"))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache dir for this test; the catalogs and learned modes held in memory are forgotten after it."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("OPENROUTER_CACHE_DIR", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(path / "xdg"))
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *args, **kwargs: str(path / "default"))
    yield path
    from openrouter_registry import catalog

    catalog.reset()
