"""How the generation path uses the reply parsers: strict JSON (NaN is re-asked), the closing repair
only when the model said it had finished, and large replies parsed off the event loop."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from openrouter_registry import StructuredOutputError, TruncatedOutputError
from openrouter_registry.replies.offload import OFF_LOOP_CHARS
from openrouter_registry.service import OpenRouterService
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS
from test_service import chat_body, chat_requests, make_service, server  # noqa: F401  (the fixture)

UNCLOSED = '{"city": "Paris", "country": "France"'


async def test_missing_closing_brace_with_stop_is_closed_locally(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=chat_body(UNCLOSED, finish_reason="stop")))
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    assert (g.content, g.attempts, g.text) == (PARIS, 1, UNCLOSED)
    assert len(chat_requests(server)) == 1


async def test_missing_closing_brace_with_length_is_never_closed(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=chat_body(UNCLOSED, finish_reason="length")))
    async with make_service(server) as service:
        with pytest.raises(TruncatedOutputError):
            await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    assert len(chat_requests(server)) == 1


@pytest.mark.parametrize("finish_reason", ["stop", "content_filter"])
async def test_closed_value_that_does_not_validate_is_reasked(server: FakeOpenRouter, finish_reason: str) -> None:
    server.enqueue(Scripted(json=chat_body('{"city": "Paris"', finish_reason=finish_reason)))
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    assert (g.content, g.attempts) == (PARIS, 2)  # the second answer is the server's valid one


@pytest.mark.parametrize("reply", ['{"city": NaN, "country": "France"}', '{"city": "Paris", "country": 1e999}', "[Infinity]"])
async def test_non_json_numbers_are_reasked_never_returned(server: FakeOpenRouter, reply: str) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"city": {}, "country": {}}, "required": ["city", "country"]}
    server.enqueue(Scripted(json=chat_body(reply)), Scripted(json=chat_body(reply)))
    async with make_service(server, max_reasks=1) as service:
        with pytest.raises(StructuredOutputError) as info:
            await service.generate("Extract: Paris.", schema=schema, model="openai/gpt-4o")
    assert (info.value.attempts, info.value.text) == (2, reply)
    assert info.value.errors == ["the reply holds no JSON value"]


@pytest.mark.parametrize("size", [10, OFF_LOOP_CHARS + 1])
async def test_large_replies_are_parsed_off_the_event_loop(
    server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    threads: list[str] = []
    check = OpenRouterService._check_reply

    def spy(self: OpenRouterService, *args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return check(self, *args)

    monkeypatch.setattr(OpenRouterService, "_check_reply", spy)
    reply = json.dumps(PARIS) + " " * size
    server.enqueue(Scripted(json=chat_body(reply)))
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    assert g.content == PARIS
    if len(reply) <= OFF_LOOP_CHARS:
        assert threads == [threading.current_thread().name]  # small: inline, on the loop's thread
    else:
        assert len(threads) == 1 and threads[0].startswith("openrouter-parse")
