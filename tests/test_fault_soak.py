"""The fault soak in CI: 1,000 calls at 64 in flight through generate, stream and embed against
`FaultServer`; every call ends in time with `ok` or an error from the Errors table of docs/guides/errors.md.

The full-size run (10,000 calls, every fault kind) is ``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import openrouter_registry
from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.testing.faultserver import DEFAULT_MIX, KINDS, FaultServer
from openrouter_registry.testing.soak import SoakReport, call_bound, soak
from openrouter_registry.http.transport import Transport

ROOT = Path(__file__).resolve().parents[1]

#: Kinds whose bound comes from the transport's deadlines and caps; each also gets a focused test below.
BOUNDED_BY_TRANSPORT: Mapping[str, str] = {
    "drip": "OPENROUTER_TIMEOUT is a whole-attempt deadline (a byte a second must time out)",
    "keepalive": "OPENROUTER_STREAM_IDLE_TIMEOUT / OPENROUTER_STREAM_TIMEOUT and the whole-attempt deadline "
                 "(keep-alive comments or whitespace for ever must end)",
    "oversize": "OPENROUTER_MAX_RESPONSE_BYTES (a 4 MB answer over a 1 MB cap is an InvalidResponseError)",
}
#: Seconds added to what the settings allow a call. Generous: on a loaded 2-core CI machine with the
#: httpx/httpcore pool (whose request assignment scans every connection), 64 calls in flight took up to
#: 8 s each although each attempt is bounded at 1 s of server silence; a hang still shows as one.
SLACK = 45.0


def documented_errors() -> set[str]:
    """The error class names of the README's Errors table (the contract the soak checks)."""
    readme = (ROOT / "docs" / "guides" / "errors.md").read_text(encoding="utf-8")
    section = readme.split("## Errors", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert {"RateLimitError", "ProviderError", "InvalidResponseError"} <= names, "the Errors table of docs/guides/errors.md moved"
    return {n for n in names if isinstance(getattr(openrouter_registry, n, None), type)}


def service(server: FaultServer, **overrides: Any) -> OpenRouterService:
    wanted: dict[str, Any] = {
        "timeout": 1.0, "connect_timeout": 1.0, "max_attempts": 2, "retry_after_max": 0.02,
        "stream_idle_timeout": 0.5, "stream_timeout": 2.0, "max_response_bytes": 1024 * 1024, **overrides,
    }
    known = {field.name for field in Settings.__attrs_attrs__}
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key,
                                 **{k: v for k, v in wanted.items() if k in known})
    transport = Transport(settings, base_delay=0.005, max_delay=0.02)
    return OpenRouterService(settings, registry=Registry(environ={}), transport=transport)


def check(report: SoakReport, requests: int) -> None:
    allowed = documented_errors() | {"ok"}
    assert sum(report.outcomes.values()) == requests
    assert report.bad == 0, report.outcomes
    assert set(report.outcomes) <= allowed, set(report.outcomes) - allowed


async def test_a_thousand_calls_through_every_fault_end_typed_and_in_time() -> None:
    mix = dict(DEFAULT_MIX)
    with FaultServer(mix, seed=11, drip_interval=0.3, keepalive_interval=0.1, oversize_bytes=4 * 1024 * 1024,
                     hang_limit=30, process=True) as server:
        async with service(server) as s:
            bound = call_bound(s.settings, max_delay=0.02, slack=SLACK)
            report = await soak(s, requests=1000, concurrency=64, bound=bound)
        served = server.stats()
    check(report, 1000)
    # the faults really were served, and they reached the caller as their typed errors
    assert set(served) == set(KINDS)
    assert report.outcomes["ok"] > 400
    for error in ("RateLimitError", "ProviderError", "ConnectionError"):
        assert report.outcomes[error] > 0, report.outcomes
    assert all(report.by_call[call]["ok"] for call in report.by_call)


@pytest.mark.parametrize(
    "kind",
    list(BOUNDED_BY_TRANSPORT),
)
async def test_faults_bounded_by_the_transport(kind: str) -> None:
    with FaultServer({"ok": 1.0, kind: 3.0}, seed=5, drip_interval=0.3, keepalive_interval=0.1,
                     oversize_bytes=4 * 1024 * 1024, hang_limit=120, process=True) as server:
        async with service(server) as s:
            report = await soak(s, requests=12, concurrency=12, bound=call_bound(s.settings, max_delay=0.02, slack=10))
        assert server.stats().get(kind, 0) > 0
    check(report, 12)
