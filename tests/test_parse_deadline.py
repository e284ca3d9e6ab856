"""Hardening: a plugin parser that hangs has a deadline. Past it the reply goes to the next parser (at
last the core's), the plugin shows ``degraded`` and its parser is skipped for a while; other models'
replies keep being parsed meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.plugin import hookimpl
from openrouter_registry.plugins import registry as registry_module
from openrouter_registry.testing import FakeOpenRouter, Scripted

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "note": {"type": "string"}}, "required": ["city"]}
LONG = {"city": "Paris", "note": "x" * 5000}  # over OFF_LOOP_CHARS: parsed on a worker thread


class HangingParser:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls, self.release = seconds, 0, threading.Event()

    @hookimpl(tryfirst=True)
    def parse_structured(self, model: str, text: str) -> Any:
        if not model.startswith("acme/hang"):
            return None
        self.calls += 1
        self.release.wait(self.seconds)  # "hangs" (until the test ends)
        return None


@pytest.fixture
def deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(registry_module, "PARSE_DEADLINE", 0.3)
    from openrouter_registry.engine import calls

    monkeypatch.setattr(calls, "PARSE_DEADLINE", 0.3)
    return 0.3


def make(fake: FakeOpenRouter, parser: HangingParser) -> tuple[OpenRouterService, Registry]:
    registry = Registry(environ={})
    registry.register(parser, name="hanging")
    settings = Settings.from_env({}, base_url=fake.base_url, api_key=fake.api_key, catalog=False)
    return OpenRouterService(settings, registry=registry), registry


async def test_a_hung_parser_is_abandoned_the_core_parses_and_the_plugin_is_degraded(deadline: float) -> None:
    parser = HangingParser(30)
    with FakeOpenRouter() as fake:
        fake.enqueue(*[Scripted.chat(LONG, model="acme/hang-1")] * 2, *[Scripted.chat(LONG, model="acme/other-1")] * 4)
        service, registry = make(fake, parser)
        try:
            async with service:
                started = time.monotonic()
                hung, *others = await asyncio.gather(
                    service.generate("a", model="acme/hang-1", schema=SCHEMA),
                    *[service.generate("b", model="acme/other-1", schema=SCHEMA) for _ in range(4)],
                )
                took = time.monotonic() - started
                assert hung.content == LONG and all(o.content == LONG for o in others)
                assert hung.attempts == 1 and took < deadline + 5
                info = {p.name: p for p in registry.plugins()}["hanging"]
                assert info.status == "degraded" and "over the 0.3s deadline" in (info.error or "")
                # skipped now: the next reply of that model is parsed at once, without a new hang
                started = time.monotonic()
                again = await service.generate("c", model="acme/hang-1", schema=SCHEMA)
                assert again.content == LONG and time.monotonic() - started < deadline
                assert parser.calls == 1
        finally:
            parser.release.set()


async def test_a_slow_inline_parse_is_accounted_and_then_skipped(deadline: float) -> None:
    parser = HangingParser(0.5)  # a short reply: parsed inline, so it holds the loop once
    with FakeOpenRouter() as fake:
        fake.enqueue(*[Scripted.chat({"city": "Paris"}, model="acme/hang-2")] * 2)
        service, registry = make(fake, parser)
        async with service:
            assert (await service.generate("a", model="acme/hang-2", schema=SCHEMA)).content == {"city": "Paris"}
            assert {p.name: p.status for p in registry.plugins()}["hanging"] == "degraded"
            started = time.monotonic()
            assert (await service.generate("b", model="acme/hang-2", schema=SCHEMA)).content == {"city": "Paris"}
            assert time.monotonic() - started < 0.4 and parser.calls == 1
