"""Shared test set-up: tests import helpers from each other by module name, and Parlant (imported by
the adapter's tests) writes its files under a temporary PARLANT_HOME, never into the checkout."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PARLANT_HOME", tempfile.mkdtemp(prefix="parlant-home-"))

import pytest  # noqa: E402

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
