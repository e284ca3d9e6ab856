"""The tool loop's OpenTelemetry spans: one ``invoke_agent`` span per `run_tools`, with the chat span of
each round and an ``execute_tool`` span per tool call as its children (GenAI semantic conventions), the
tools' arguments and results only on the content opt-in, and nothing at all when nothing observes.
Read back from the SDK's in-memory exporter, against the local OpenRouter server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from openrouter_registry import AuthenticationError, OpenRouterService, Registry, Settings, ToolLoopError
from openrouter_registry.engine import observe
from openrouter_registry.testing import FakeOpenRouter, Scripted

from test_observe import KEY, Telemetry, telemetry  # noqa: F401  (the fixture: SDK providers for one test)
from test_toolloop import tool_reply

CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MODEL = "openai/gpt-4o-mini"

#: the span that was current inside each tool function, by the argument it got
CURRENT: dict[str, int] = {}


async def lookup(city: str) -> str:
    """Where a city is."""
    CURRENT[city] = trace.get_current_span().get_span_context().span_id
    return f"{city} is in France"


def distance(a: str, b: str) -> dict[str, Any]:
    """Kilometres between two cities (sync: runs on a worker thread)."""
    CURRENT[f"{a}-{b}"] = trace.get_current_span().get_span_context().span_id
    return {"km": 392, "from": a, "to": b}


def broken(city: str) -> str:
    """Always fails."""
    raise RuntimeError(f"the database is down for {city}")


async def slow(city: str) -> str:
    """Takes too long."""
    await asyncio.sleep(5)
    return city


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(api_key=KEY) as fake:
        yield fake


def service_for(server: FakeOpenRouter) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    return OpenRouterService(settings, registry=Registry(environ={}))


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.name.startswith(prefix)), key=lambda s: s.start_time or 0)


TWO_ROUNDS = (
    tool_reply(("call_1", "lookup", '{"city": "Paris"}'), ("call_2", "distance", '{"a": "Paris", "b": "Lyon"}')),
    tool_reply(("call_3", "lookup", '{"city": "Lyon"}')),
)


async def test_a_two_round_loop_is_one_agent_span_with_chat_and_tool_children(
    server: FakeOpenRouter, telemetry: Telemetry
) -> None:
    server.enqueue(*TWO_ROUNDS)
    CURRENT.clear()
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with service_for(server) as service:
        with tracer.start_as_current_span("POST /trip") as handler:
            result = await service.run_tools("Plan Paris to Lyon", tools=[lookup, distance], model=MODEL)
    assert result.rounds == 3 and result.content.startswith("The tools answered")
    spans = telemetry.finished()
    (agent,) = named(spans, "invoke_agent")
    chats, tools = named(spans, "chat "), named(spans, "execute_tool ")
    requests = named(spans, "openrouter.request ")
    assert len(spans) == 1 + 1 + 3 + 3 + 3  # the handler, the loop, 3 rounds, 3 tool calls, a request per round

    # the loop: one INTERNAL span under the caller's span, every round and tool call under it
    assert agent.kind is SpanKind.INTERNAL and parent_id(agent) == handler.get_span_context().span_id
    assert agent.status.status_code is StatusCode.UNSET
    assert [s.name for s in chats] == [f"chat {MODEL}"] * 3
    assert [s.name for s in tools] == ["execute_tool lookup", "execute_tool distance", "execute_tool lookup"]
    assert {parent_id(s) for s in chats + tools} == {agent.context.span_id}
    assert {parent_id(s) for s in requests} <= {s.context.span_id for s in chats}
    assert {s.context.trace_id for s in spans} == {handler.get_span_context().trace_id}  # one trace
    looped = attributes(agent)
    assert (looped["gen_ai.operation.name"], looped["gen_ai.provider.name"]) == ("invoke_agent", "openrouter")
    assert (looped["gen_ai.request.model"], looped["gen_ai.output.type"]) == (MODEL, "text")
    assert (looped["server.address"], looped["server.port"]) == ("127.0.0.1", server.port)
    assert (looped["openrouter.rounds"], looped["openrouter.attempts"]) == (3, 3)
    assert looped["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert looped["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert result.cost is not None and looped["openrouter.cost_usd"] == pytest.approx(float(result.cost))
    assert looped["gen_ai.response.finish_reasons"] == ("stop",)
    # each round's tools ran between that round's chat span and the next one
    assert chats[0].end_time <= min(t.start_time for t in tools[:2])  # type: ignore[operator,type-var]
    assert max(t.end_time for t in tools[:2]) <= chats[1].start_time  # type: ignore[operator,type-var]
    assert chats[1].end_time <= tools[2].start_time <= tools[2].end_time <= chats[2].start_time  # type: ignore[operator]

    # each tool call: the conventions' attributes, no content, no error
    expected = [("lookup", "call_1", "Where a city is."), ("distance", "call_2", "Kilometres between two cities (sync: "
                "runs on a worker thread)."), ("lookup", "call_3", "Where a city is.")]
    for span, (name, call_id, description) in zip(tools, expected):
        assert span.kind is SpanKind.INTERNAL and span.status.status_code is StatusCode.UNSET
        assert attributes(span) == {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function", "gen_ai.tool.description": description,
        }
    # the function ran under its own span (an async one in its task, a sync one on its worker thread)
    assert CURRENT == {"Paris": tools[0].context.span_id, "Paris-Lyon": tools[1].context.span_id,
                       "Lyon": tools[2].context.span_id}


async def test_two_loops_under_one_handler_keep_their_own_rounds(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with service_for(server) as service:
        with tracer.start_as_current_span("POST /cities") as handler:
            first, second = await asyncio.gather(  # the local server plans a lookup call, then answers
                service.run_tools("Where is Paris?", tools=[lookup], model=MODEL),
                service.run_tools("Where is Rome?", tools=[lookup], model=MODEL),
            )
    assert first.rounds == second.rounds == 2
    spans = telemetry.finished()
    agents = named(spans, "invoke_agent")
    assert len(agents) == 2 and {parent_id(a) for a in agents} == {handler.get_span_context().span_id}
    for agent in agents:
        children = [s.name for s in spans if parent_id(s) == agent.context.span_id]
        assert sorted(children) == [f"chat {MODEL}", f"chat {MODEL}", "execute_tool lookup"]


async def test_a_tool_that_fails_is_an_error_span_and_the_loop_goes_on(
    server: FakeOpenRouter, telemetry: Telemetry
) -> None:
    server.enqueue(tool_reply(("call_1", "broken", '{"city": "Paris"}'), ("call_2", "slow", '{"city": "Rome"}'),
                              ("call_3", "nope", "{}"), ("call_4", "lookup", '{"town": "Paris"}')))
    async with service_for(server) as service:
        result = await service.run_tools("Try them", tools=[broken, slow, lookup], model=MODEL, tool_timeout=0.2)
    assert result.rounds == 2
    spans = telemetry.finished()
    (agent,) = named(spans, "invoke_agent")
    assert agent.status.status_code is StatusCode.UNSET  # the model was told; the loop answered
    by_id = {attributes(s)["gen_ai.tool.call.id"]: s for s in named(spans, "execute_tool ")}
    assert [by_id[i].name for i in ("call_1", "call_2", "call_3", "call_4")] == [
        "execute_tool broken", "execute_tool slow", "execute_tool nope", "execute_tool lookup"]
    kinds = {i: attributes(s).get("error.type") for i, s in by_id.items()}
    assert kinds == {"call_1": "RuntimeError", "call_2": "TimeoutError", "call_3": "unknown_tool",
                     "call_4": "invalid_arguments"}
    assert all(s.status.status_code is StatusCode.ERROR for s in by_id.values())
    assert {parent_id(s) for s in by_id.values()} == {agent.context.span_id}
    # content off: the exception's message (it quotes the arguments) is in no span
    assert by_id["call_1"].status.description == "broken failed: RuntimeError"
    assert not by_id["call_1"].events
    assert "gen_ai.tool.description" not in attributes(by_id["call_3"])  # no such tool
    assert not [s for s in spans if "database is down" in s.to_json() or "Paris" in s.to_json()]
    # what the model was told is unchanged
    told = {m["tool_call_id"]: m["content"] for m in result.transcript if m["role"] == "tool"}
    assert told["call_1"] == "error: broken raised RuntimeError: the database is down for Paris"
    assert told["call_2"] == "error: slow did not finish within 0.2 seconds"


def told_by(span: Any) -> str:
    """Everything a span says in words: its name, attribute values, status and events."""
    parts = [span.name, *map(str, dict(span.attributes or {}).values()), str(span.status.description)]
    for event in span.events:
        parts += [event.name, *map(str, dict(event.attributes or {}).values())]
    return "\n".join(parts)


async def test_tool_arguments_and_results_only_on_the_content_opt_in(
    server: FakeOpenRouter, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with service_for(server) as service:
        server.enqueue(*TWO_ROUNDS)
        await service.run_tools("Plan Paris to Lyon", tools=[lookup, distance], model=MODEL)
        off = named(telemetry.finished(), "execute_tool ")
        telemetry.spans.clear()
        monkeypatch.setenv(CONTENT, "true")
        server.enqueue(*TWO_ROUNDS, tool_reply(("call_9", "broken", '{"city": "Nice"}')))
        result = await service.run_tools("Plan Paris to Lyon", tools=[lookup, distance, broken], model=MODEL)
        spans = telemetry.finished()
    content = {"gen_ai.tool.call.arguments", "gen_ai.tool.call.result"}
    assert len(off) == 3 and not [s for s in off if content & set(attributes(s))]
    # what a span says (not its ids and timestamps, whose digits can read "392" by chance)
    assert not [s for s in off if "Paris" in told_by(s) or "392" in told_by(s)]

    on = {attributes(s)["gen_ai.tool.call.id"]: s for s in named(spans, "execute_tool ")}
    told = {m["tool_call_id"]: m["content"] for m in result.transcript if m["role"] == "tool"}
    assert attributes(on["call_1"])["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'  # as the model sent them
    assert attributes(on["call_1"])["gen_ai.tool.call.result"] == "Paris is in France" == told["call_1"]
    assert json.loads(str(attributes(on["call_2"])["gen_ai.tool.call.arguments"])) == {"a": "Paris", "b": "Lyon"}
    result_2 = str(attributes(on["call_2"])["gen_ai.tool.call.result"])
    assert result_2 == told["call_2"] and json.loads(result_2) == {"km": 392, "from": "Paris", "to": "Lyon"}
    # a failed call: its arguments, no result (the conventions: a result only on success), the message and
    # the exception event
    failed = on["call_9"]
    assert attributes(failed)["gen_ai.tool.call.arguments"] == '{"city": "Nice"}'
    assert "gen_ai.tool.call.result" not in attributes(failed)
    assert failed.status.description == "error: broken raised RuntimeError: the database is down for Nice"
    assert [e.name for e in failed.events] == ["exception"]
    # the key: in no span, with content on
    assert not [s for s in spans if KEY in s.to_json() or KEY[10:] in s.to_json()]


async def test_a_failed_loop_is_an_error_span(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    async with service_for(server) as service:
        server.enqueue(tool_reply(("call_1", "lookup", '{"city": "Paris"}'), cost=0.003))
        with pytest.raises(ToolLoopError) as raised:
            await service.run_tools("Where?", tools=[lookup], model=MODEL, max_rounds=1)
        (agent,) = named(telemetry.finished(), "invoke_agent")
        (tool,) = named(telemetry.finished(), "execute_tool ")
        telemetry.spans.clear()
        server.enqueue(tool_reply(("call_1", "lookup", '{"city": "Paris"}'), cost=0.002),
                       Scripted(status=401, json={"error": {"message": "bad key", "code": 401}}))
        with pytest.raises(AuthenticationError):
            await service.run_tools("Where?", tools=[lookup], model=MODEL)
        (failed,) = named(telemetry.finished(), "invoke_agent")
    assert raised.value.cost == Decimal("0.003")
    assert agent.status.status_code is StatusCode.ERROR and tool.status.status_code is StatusCode.UNSET
    looped = attributes(agent)
    assert looped["error.type"] == "ToolLoopError"
    assert (looped["openrouter.rounds"], looped["openrouter.attempts"]) == (1, 1)
    assert looped["openrouter.cost_usd"] == pytest.approx(0.003)
    # a round's API error ends the loop: its class, and what the first round spent
    assert failed.status.status_code is StatusCode.ERROR
    assert attributes(failed)["error.type"] == "AuthenticationError"
    assert attributes(failed)["openrouter.rounds"] == 1
    assert attributes(failed)["openrouter.cost_usd"] == pytest.approx(0.002)


async def test_no_tracer_provider_no_loop_span(
    server: FakeOpenRouter, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter provider alone (OpenTelemetry imported, no tracer provider): the loop makes no span."""
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    async with service_for(server) as service:
        assert observe.tool_loop(MODEL, service.settings, output_type="text") is None
        server.enqueue(*TWO_ROUNDS)
        result = await service.run_tools("Plan Paris to Lyon", tools=[lookup, distance], model=MODEL)
    assert result.rounds == 3 and not telemetry.finished()
    assert metrics.get_meter_provider() is telemetry.meter_provider
    assert len(telemetry.points("gen_ai.client.operation.duration")) == 1  # the rounds' chat metric only


def test_nothing_observed_the_loop_loads_no_telemetry(server: FakeOpenRouter) -> None:
    script = f"""
import asyncio, sys
from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.engine import observe, toolloop

def lookup(city: str) -> str:
    "Where a city is."
    return city + " is in France"

async def main():
    settings = Settings.from_env({{}}, base_url={server.base_url!r}, api_key={server.api_key!r}, catalog=False)
    made = []
    real_watch, real_loop = observe.Watch, observe.tool_loop
    observe.Watch = lambda *a, **k: made.append("watch") or real_watch(*a, **k)
    observe.tool_loop = lambda *a, **k: made.append(real_loop(*a, **k)) or made[-1]
    async with OpenRouterService(settings, registry=Registry(environ={{}})) as service:
        result = await service.run_tools("Where is Paris?", tools=[lookup])
    assert result.rounds == 2, result
    assert made == [None], made  # the loop asked once, got no span; no round built a Watch
asyncio.run(main())
assert not [m for m in sys.modules if m.startswith("opentelemetry") or m == "openrouter_registry.engine.otel"]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
