"""Behaviours of engine/calls.py that a sampled mutation check found unguarded (issue 24): the re-ask
budget counted one by one, a generator told that its body is for a stream, and streamed tool calls
whose id or name come in a later fragment than their first one.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry, Settings, StructuredOutputError, ToolCallStarted
from openrouter_registry.plugin import Generator, ModelTable, hookimpl
from openrouter_registry.testing import FakeOpenRouter, Scripted

MODEL = "openai/gpt-4o"
# Mutants judged equivalent (nothing a user sees changes):
# - engine/calls.py:392 constant '0' -> '(1)' (`plain[0] is not settings` -> `plain[1] ...`): plain[1] is the headers dict, never the settings, so the plain headers are rebuilt on every call instead of reused; without a plugin's build_headers they depend on the frozen Settings alone, so every request carries the same headers.

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}


def make_service(server: FakeOpenRouter, registry: Registry | None = None, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, **overrides)
    return OpenRouterService(settings, registry=registry or Registry(environ={}))


def add(a: int, b: int = 0) -> int:
    """Add two integers."""
    return a + b


def _tool_reply(arguments: str, names: Sequence[str] = ("add",)) -> Scripted:
    calls = [{"id": f"call_{i}", "index": i, "type": "function", "function": {"name": name, "arguments": arguments}}
             for i, name in enumerate(names)]
    return Scripted(json={
        "id": "gen-t", "provider": "OpenAI", "model": MODEL, "object": "chat.completion", "created": 1757000000,
        "choices": [{"finish_reason": "tool_calls", "native_finish_reason": "tool_calls", "index": 0, "message": {
            "role": "assistant", "content": None,
            "tool_calls": calls}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })


def _tool_chunk(calls: list[dict[str, Any]], finish: str | None = None) -> str:
    data = {"id": "gen-s", "model": "acme/x-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": calls}, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n"


# --- the re-ask budget (engine/calls.py:731 and :807) --------------------------------------------------


async def test_max_reasks_two_allows_two_re_asks_of_an_invalid_reply(server: FakeOpenRouter) -> None:
    """Each invalid reply uses one re-ask: with ``max_reasks=2`` a third reply that validates is the result."""
    server.enqueue(Scripted.chat({"town": "Paris"}, model=MODEL), Scripted.chat({"town": "Paris"}, model=MODEL),
                   Scripted.chat({"city": "Paris"}, model=MODEL))
    async with make_service(server) as service:
        result = await service.generate("Extract: Paris.", schema=CITY, model=MODEL, max_reasks=2)
    assert result.content == {"city": "Paris"} and result.attempts == 3 and len(server.requests) == 3


async def test_max_reasks_two_allows_two_re_asks_of_invalid_tool_arguments(server: FakeOpenRouter) -> None:
    """Each tool call with invalid arguments uses one re-ask: with ``max_reasks=2`` the third call is the result."""
    server.enqueue(_tool_reply('{"a": "two"}'), _tool_reply('{"a": "three"}'), _tool_reply('{"a": 2, "b": 3}'))
    async with make_service(server) as service:
        result = await service.generate("What is 2 + 3?", tools=[add], model=MODEL, max_reasks=2)
    assert result.attempts == 3 and len(server.requests) == 3
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("add", {"a": 2, "b": 3})]
    server.enqueue(_tool_reply('{"a": "two"}'), _tool_reply('{"a": "three"}'), _tool_reply('{"a": "four"}'))
    async with make_service(server) as service:
        with pytest.raises(StructuredOutputError, match="tool call arguments do not match") as caught:
            await service.generate("What is 2 + 3?", tools=[add], model=MODEL, max_reasks=2)
    assert caught.value.attempts == 3


async def test_the_re_ask_log_line_names_the_first_three_schema_errors(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The INFO line of a re-ask quotes the first three validation errors of the reply, not more."""
    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcd"}, "required": list("abcd"),
              "additionalProperties": False}
    server.enqueue(Scripted.chat({"x": 1}, model=MODEL), Scripted.chat({"x": 1}, model=MODEL))
    with caplog.at_level(logging.INFO, logger="openrouter_registry"):
        async with make_service(server) as service:
            with pytest.raises(StructuredOutputError) as caught:
                await service.generate("Extract.", schema=schema, model=MODEL, max_reasks=1)
    errors = caught.value.errors
    assert len(errors) >= 4
    lines = [r.getMessage() for r in caplog.records if "asking again" in r.getMessage()]
    assert lines == [f"reply from {MODEL} did not validate ({'; '.join(errors[:3])}); asking again"]


async def test_the_tool_re_ask_log_line_names_the_first_three_errors(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The INFO line of a tool call re-ask quotes the first three calls' errors, not the fourth."""
    server.enqueue(_tool_reply("{}", ["sub1", "sub2", "sub3", "sub4"]), _tool_reply('{"a": 1}'))
    with caplog.at_level(logging.INFO, logger="openrouter_registry"):
        async with make_service(server) as service:
            result = await service.generate("What is 2 + 3?", tools=[add], model=MODEL, max_reasks=1)
    assert result.attempts == 2
    errors = "; ".join(f"sub{i}: no tool of this name was declared (add)" for i in (1, 2, 3))
    lines = [r.getMessage() for r in caplog.records if "asking again" in r.getMessage()]
    assert lines == [f"tool calls from {MODEL} did not validate ({errors}); asking again"]


# --- the streamed call's body (engine/calls.py:866) ----------------------------------------------------


async def test_a_generator_builds_the_body_of_a_stream_knowing_it_is_one(server: FakeOpenRouter) -> None:
    """`stream` calls the generator's ``build_body`` with ``stream=True``: a plugin can add stream-only fields."""

    class StreamsUsage(Generator):
        def build_body(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> dict[str, Any]:
            body = super().build_body(messages, **options)
            if options.get("stream"):
                body["stream_options"] = {"include_usage": True}
            return body

    table = ModelTable(exact={"acme/writer-1": StreamsUsage})
    registry = Registry(environ={})
    registry.register(types.SimpleNamespace(
        resolve_generator=hookimpl(lambda model, settings: table.match(model)),
        claimed_models=hookimpl(lambda: table.claimed()),
    ), name="acme")
    server.enqueue(Scripted.stream("Bonjour !", model="acme/writer-1"))
    async with make_service(server, registry) as service:
        stream = service.stream("Say hello.", model="acme/writer-1")
        await stream.collect()
    body = server.requests[-1].body
    assert stream.text == "Bonjour !" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_a_stream_counts_no_attempt_before_it_is_iterated(server: FakeOpenRouter) -> None:
    """``attempts`` is 0 until the stream answered (nothing is sent before the first step), then 1."""
    server.enqueue(Scripted.stream("Bonjour !", model=MODEL))
    async with make_service(server) as service:
        stream = service.stream("Say hello.", model=MODEL)
        assert stream.attempts == 0 and server.requests == []
        assert await stream.collect() == "Bonjour !"
    assert stream.attempts == 1 and len(server.requests) == 1


async def test_a_streams_span_is_not_the_current_span_in_the_consumers_loop(
    server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat span of a stream does not become the current span of the code in the ``async for``
    (it would parent the app's own spans, and its context could not be detached in another task)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    server.enqueue(Scripted.stream("Bonjour, tout le monde !", model=MODEL))
    inside = []
    async with make_service(server) as service:
        async for _ in service.stream("Say hello.", model=MODEL):
            inside.append(trace.get_current_span().get_span_context().is_valid)
    provider.shutdown()
    assert inside and not any(inside)
    (call,) = [s for s in spans.get_finished_spans() if s.name == f"chat {MODEL}"]  # the call was traced
    assert call.attributes is not None and call.attributes["gen_ai.request.stream"] is True


async def test_a_stream_of_no_data_event_counts_its_request(server: FakeOpenRouter) -> None:
    """A stream that answered with only ``[DONE]`` still took one request: ``attempts`` is 1 (it was 0)."""
    server.enqueue(Scripted(sse=[": OPENROUTER PROCESSING\n\n", "data: [DONE]\n\n"]))
    async with make_service(server) as service:
        stream = service.stream("Say hello.", model=MODEL)
        assert await stream.collect() == ""
    assert stream.attempts == 1 and len(server.requests) == 1


# --- streamed tool calls (engine/calls.py:1260 and :1262) ---------------------------------------------


async def test_a_streamed_tool_call_takes_an_id_that_comes_after_its_first_fragment(server: FakeOpenRouter) -> None:
    """A first fragment with the name but no id: the id of a later fragment is the call's id, the name stays."""
    server.enqueue(Scripted(sse=[
        _tool_chunk([{"index": 0, "type": "function", "function": {"name": "add", "arguments": '{"a": '}}]),
        _tool_chunk([{"index": 0, "id": "call_late", "function": {"arguments": "1}"}}]),
        _tool_chunk([], "tool_calls"),
        "data: [DONE]\n\n",
    ]))
    async with make_service(server) as service:
        stream = service.stream("add", model="acme/x-1")
        await stream.collect()
    assert [(c.id, c.name, c.arguments) for c in stream.tool_calls] == [("call_late", "add", {"a": 1})]


async def test_a_streamed_tool_call_takes_a_name_that_comes_after_its_first_fragment(server: FakeOpenRouter) -> None:
    """A first fragment with the id but no name: the later name is the call's, announced then with the id."""
    server.enqueue(Scripted(sse=[
        _tool_chunk([{"index": 0, "id": "call_1", "type": "function", "function": {"arguments": ""}}]),
        _tool_chunk([{"index": 0, "function": {"name": "add"}}]),
        _tool_chunk([{"index": 0, "function": {"arguments": '{"a": 1}'}}]),
        _tool_chunk([], "tool_calls"),
        "data: [DONE]\n\n",
    ]))
    async with make_service(server) as service:
        stream = service.stream("add", model="acme/x-1")
        events = [event async for event in stream.events()]
    assert [(e.index, e.id, e.name) for e in events if isinstance(e, ToolCallStarted)] == [(0, "call_1", "add")]
    assert [(c.id, c.name, c.arguments, c.arguments_text) for c in stream.tool_calls] == [("call_1", "add", {"a": 1}, '{"a": 1}')]
