"""Shared test set-up: tests import helpers from each other by module name, and Parlant (imported by
the adapter's tests) writes its files under a temporary PARLANT_HOME, never into the checkout.

The model catalog and the learned modes are cached on disk: every test gets its own empty cache dir
(``OPENROUTER_CACHE_DIR``, and the platformdirs default for settings built from an empty environment,
also in CLI subprocesses through ``XDG_CACHE_HOME``), so no test reads or writes the user's real cache.
A test whose service would fetch the catalog from anywhere but a local server fails: tests never touch
the network.

Tests write only inside their temp dirs: a test that leaves a new file in the checkout fails, naming it,
and the run fails when ``git status --porcelain`` differs at its end from its start (see checkout_guard).

Hypothesis: with ``CI=true`` (or ``HYPOTHESIS_PROFILE=ci``) the ``ci`` profile runs every property
test on examples derived from a fixed seed (``derandomize``), with no example database, so a CI run is
repeatable; local runs (the ``dev`` profile) draw new examples each time and keep failing ones in
``.hypothesis/`` (git ignores it) to replay them first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hypothesis
import platformdirs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PARLANT_HOME", tempfile.mkdtemp(prefix="parlant-home-"))

from checkout_guard import CheckoutGuard, git_status, tracked_dirs  # noqa: E402

CHECKOUT = Path(__file__).resolve().parents[1]

hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.register_profile("dev")
_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _CI else "dev"))

_guard: CheckoutGuard | None = None
_status_at_start: list[str] | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _guard, _status_at_start
    try:
        _guard, _status_at_start = CheckoutGuard(tracked_dirs(CHECKOUT)), git_status(CHECKOUT)
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist): nothing to compare
        _guard = _status_at_start = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _status_at_start is None:
        return
    changed = sorted(set(git_status(CHECKOUT)) - set(_status_at_start))
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "the tests changed the checkout (tests write only under tmp_path):\n  " + "\n  ".join(changed)
        if reporter is not None:
            reporter.write_line(text, red=True)
        else:
            print(text, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def checkout_unchanged() -> Iterator[None]:
    """Fails the test that leaves a new file or directory in the checkout (its tool caches aside)."""
    yield
    if _guard is not None:
        new = _guard.new_entries()
        if new:
            names = ", ".join(str(p.relative_to(CHECKOUT)) for p in new)
            pytest.fail(f"this test wrote into the checkout: {names}; write under tmp_path instead", pytrace=False)


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


@pytest.fixture
def server() -> Iterator[Any]:
    """A local `FakeOpenRouter` on 127.0.0.1 for one test (a test module may define its own)."""
    from openrouter_registry.testing import FakeOpenRouter

    with FakeOpenRouter() as fake:
        yield fake
