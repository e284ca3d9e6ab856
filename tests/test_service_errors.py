"""Typed errors and retries through the whole generation path (service -> transport -> local server):
what the caller catches, how many requests went out, and what the message says."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from openrouter_registry import (
    InsufficientCreditsError,
    ModelNotAvailableError,
    ModerationError,
    ProviderError,
    RateLimitError,
)
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS
from test_service import make_service as service
from test_service import server  # noqa: F401  (the fixture: a local server answering city_country)

MODEL = "openai/gpt-4o"


def error(status: int, message: str, **metadata: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"message": message, "code": status}, "user_id": "user_2abc"}
    if metadata:
        body["error"]["metadata"] = metadata
    return body


async def test_rate_limit_after_every_attempt(server: FakeOpenRouter, caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(*[Scripted(status=429, json=error(429, "Rate limit exceeded: free-models-per-min"),
                              headers={"Retry-After": "0"})] * 3)
    with caplog.at_level(logging.DEBUG):
        async with service(server) as s:
            with pytest.raises(RateLimitError) as caught:
                await s.generate("Extract: Paris.", schema=CITY, model=MODEL)
    text = str(caught.value)
    assert text.startswith("OpenRouter API rate limit exceeded")
    for remedy in ("balance", "usage limits", "plan", "different model"):
        assert remedy in text
    assert f"model {MODEL}" in text and "after 3 attempts" in text
    assert caught.value.attempts == 3 and len(server.requests) == 3
    assert all(server.api_key not in r.getMessage() for r in caplog.records) and server.api_key not in text


async def test_retry_after_is_honoured_then_success(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(status=429, json=error(429, "slow down"), headers={"Retry-After": "1"}))
    started = time.monotonic()
    async with service(server) as s:
        g = await s.generate("Extract: Paris.", schema=CITY, model=MODEL)
    assert g.content == PARIS and g.attempts == 2
    assert server.requests[1].time - server.requests[0].time >= 0.95
    assert time.monotonic() - started < 10


async def test_5xx_after_retries_is_a_provider_error(server: FakeOpenRouter) -> None:
    server.enqueue(*[Scripted(status=502, json=error(502, "Upstream error", provider_name="Azure"),
                              headers={"Retry-After": "0"})] * 3)
    async with service(server) as s:
        with pytest.raises(ProviderError) as caught:
            await s.generate("Extract: Paris.", schema=CITY, model=MODEL)
    assert caught.value.attempts == 3 and caught.value.provider == "Azure" and caught.value.status == 502


async def test_402_and_403_are_not_retried(server: FakeOpenRouter) -> None:
    server.enqueue(
        Scripted(status=402, json=error(402, "Insufficient credits"), headers={"X-Generation-Id": "gen-402-x"}),
        Scripted(status=403, json=error(403, "Input was flagged", reasons=["violence"], flagged_input="kill")),
    )
    async with service(server) as s:
        with pytest.raises(InsufficientCreditsError) as credits:
            await s.generate("Extract: Paris.", schema=CITY, model=MODEL)
        with pytest.raises(ModerationError) as moderation:
            await s.generate("Extract: Paris.", schema=CITY, model=MODEL)
    assert credits.value.attempts == 1 and credits.value.generation_id == "gen-402-x"
    assert "gen-402-x" in str(credits.value) and f"model {MODEL}" in str(credits.value)
    assert moderation.value.reasons == ["violence"] and moderation.value.flagged_input == "kill"
    assert len(server.requests) == 2


async def test_unknown_model_404_is_not_a_mode_fallback(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(status=404, json=error(404, "Model acme/nope does not exist")))
    async with service(server) as s:
        with pytest.raises(ModelNotAvailableError, match="does not exist") as caught:
            await s.generate("Extract: Paris.", schema=CITY, model="acme/nope")
    assert caught.value.model == "acme/nope" and len(server.requests) == 1
    assert MODE_MEMORY.get("acme/nope") is None


async def test_no_endpoints_404_falls_back_and_counts_every_attempt(server: FakeOpenRouter) -> None:
    server.refuse_modes["acme/strictless"] = {"json_schema"}
    async with service(server) as s:
        g = await s.generate("Extract: Paris.", schema=CITY, model="acme/strictless")
    assert (g.mode, g.attempts, g.content) == ("json_object", 2, PARIS)
    assert MODE_MEMORY.get("acme/strictless") == "json_object"


async def test_attempts_of_earlier_modes_show_in_a_later_error(server: FakeOpenRouter) -> None:
    server.refuse_modes["acme/strictless"] = {"json_schema"}
    server.enqueue(
        Scripted(status=404, json=error(404, "No endpoints found that can handle the requested parameters.")),
        Scripted(status=402, json=error(402, "Insufficient credits")),
    )
    async with service(server) as s:
        with pytest.raises(InsufficientCreditsError) as caught:
            await s.generate("Extract: Paris.", schema=CITY, model="acme/strictless")
    assert caught.value.attempts == 2 and "after 2 attempts" in str(caught.value)


async def test_a_refusal_learned_under_one_routing_does_not_downgrade_another(server: FakeOpenRouter) -> None:
    server.refuse_modes["acme/strictless"] = {"json_schema"}
    only_x = {"provider": {"only": ["X"]}}
    async with service(server) as s:
        first = await s.generate("Extract: Paris.", schema=CITY, model="acme/strictless", extra_body=only_x)
        again = await s.generate("Extract: Paris.", schema=CITY, model="acme/strictless", extra_body=only_x)
        server.refuse_modes.clear()
        default = await s.generate("Extract: Paris.", schema=CITY, model="acme/strictless")
    assert (first.mode, first.attempts, again.mode, again.attempts) == ("json_object", 2, "json_object", 1)
    assert (default.mode, default.attempts) == ("json_schema", 1)
    assert MODE_MEMORY.get("acme/strictless") is None


def test_one_service_serves_several_asyncio_runs(server: FakeOpenRouter) -> None:
    """Scripts and notebooks call asyncio.run more than once; the pool follows the running loop."""
    import asyncio

    s = service(server)
    first = asyncio.run(s.generate("Extract: Paris.", schema=CITY, model=MODEL))
    second = asyncio.run(s.generate("Extract: Paris.", schema=CITY, model=MODEL))
    assert first.content == second.content == PARIS and len(server.requests) == 2
