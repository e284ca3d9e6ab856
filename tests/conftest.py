"""Shared test set-up: tests import helpers from each other by module name, and Parlant (imported by
the adapter's tests) writes its files under a temporary PARLANT_HOME, never into the checkout.

The model catalog and the learned modes are cached on disk: every test gets its own empty cache dir
(``OPENROUTER_CACHE_DIR``, and the platformdirs default for settings built from an empty environment,
also in CLI subprocesses through ``XDG_CACHE_HOME``), so no test reads or writes the user's real cache.
A test whose service would fetch the catalog from anywhere but a local server fails: tests never touch
the network.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    from openrouter_registry.models import catalog

    fetch = catalog._fetch

    async def local_only(settings: Any) -> Any:
        if urlsplit(settings.base_url).hostname not in ("127.0.0.1", "localhost"):
            pytest.fail(f"a test fetched the model catalog from {settings.base_url}: use a local server or catalog=False")
        return await fetch(settings)

    monkeypatch.setattr(catalog, "_fetch", local_only)
    yield path

    catalog.reset()
    from openrouter_registry.models.modes import MODE_MEMORY

    MODE_MEMORY.clear()  # also the modes-file paths it worked out under this test's cache dir

from openrouter_registry.settings import TRANSPORTS, Settings  # noqa: E402

#: Test modules that run once per HTTP stack (`OPENROUTER_TRANSPORT`): every behaviour of the
#: transport must be the same on each.
PER_TRANSPORT = {"test_transport", "test_transport_limits", "test_stream_embed", "test_cassettes", "test_service",
                 "test_service_errors"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in PER_TRANSPORT:
        metafunc.parametrize("http_stack", TRANSPORTS, indirect=True)


@pytest.fixture(autouse=True)
def http_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """In `PER_TRANSPORT` modules: the stack under test, the default of every `Settings.from_env` there
    (an explicit ``transport=`` or ``OPENROUTER_TRANSPORT`` still wins)."""
    name: str | None = getattr(request, "param", None)
    if name is not None:
        original = Settings.from_env.__func__  # type: ignore[attr-defined]

        def from_env(cls: type[Settings], environ: Any = None, **overrides: Any) -> Settings:
            if overrides.get("transport") is None and not (environ or os.environ).get("OPENROUTER_TRANSPORT"):
                overrides["transport"] = name
            return original(cls, environ, **overrides)  # type: ignore[no-any-return]

        monkeypatch.setattr(Settings, "from_env", classmethod(from_env))
    return name
