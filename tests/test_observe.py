"""Observability: OpenTelemetry GenAI spans and metrics (read back from the SDK's in-memory exporter and
metric reader), the ``on_event`` hook and ``on_event=`` observer, and the User-Agent, against the local
OpenRouter server. Nothing here is free when unused unless `test_nothing_observed_loads_no_telemetry`
says so."""

from __future__ import annotations

from decimal import Decimal

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from openrouter_registry import (
    AuthenticationError,
    CallEvent,
    ConfigurationError,
    NLPServices,
    OpenRouterService,
    Registry,
    Settings,
    StructuredOutputError,
)
from openrouter_registry.engine.observe import span_attributes
from openrouter_registry.plugin import hookimpl
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS

KEY = "sk-or-v1-observe-secret-4c1d"


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def call_span(self) -> ReadableSpan:
        (span,) = [s for s in self.finished() if s.kind is SpanKind.CLIENT]
        return span

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """SDK providers for this test only (the global ones can be set once per process)."""
    kit = Telemetry()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: kit.tracer_provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: kit.meter_provider)
    yield kit
    kit.tracer_provider.shutdown()
    kit.meter_provider.shutdown()


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(api_key=KEY) as fake:
        fake.set_reply("city_country", PARIS)
        yield fake


def service_for(server: FakeOpenRouter, *, registry: Registry | None = None, **options: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    return OpenRouterService(settings, registry=registry or Registry(environ={}), **options)


def chat_reply(content: str, *, cost: float = 0.0004) -> dict[str, Any]:
    return {
        "id": "gen-observe-1",
        "provider": "OpenAI",
        "model": "openai/gpt-4o-2024-08-06",
        "choices": [{"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30, "cost": cost,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}},
    }


RATE_LIMITED = Scripted(status=429, json={"error": {"message": "slow down", "code": 429}}, headers={"retry-after-ms": "20"})


# --- spans -------------------------------------------------------------------------------------------


async def test_generate_span_follows_the_genai_conventions(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    server.enqueue(Scripted(json=chat_reply(json.dumps(PARIS))))
    async with service_for(server) as service:
        result = await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o", max_tokens=300,
                                        temperature=0.2, extra_body={"top_p": 0.9, "session_id": "conv-7"})
    assert result.content == PARIS
    span = telemetry.call_span()
    assert span.name == "chat openai/gpt-4o" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openrouter"
    assert attributes["gen_ai.request.model"] == "openai/gpt-4o"
    assert attributes["gen_ai.output.type"] == "json"
    assert attributes["gen_ai.conversation.id"] == "conv-7"
    assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", server.port)
    assert (attributes["gen_ai.request.max_tokens"], attributes["gen_ai.request.temperature"]) == (300, 0.2)
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.response.id"] == "gen-observe-1"
    assert attributes["gen_ai.response.model"] == "openai/gpt-4o-2024-08-06"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (20, 10)
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 4
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 2
    assert attributes["openrouter.cost_usd"] == pytest.approx(0.0004)
    assert attributes["openrouter.cost_source"] == "api"
    assert attributes["openrouter.upstream_provider"] == "OpenAI"
    assert attributes["openrouter.generation_id"] == "gen-observe-1"
    assert (attributes["openrouter.generator"], attributes["openrouter.plugin"]) == ("OpenRouterGPT4O", "openrouter_gpt")
    assert attributes["openrouter.structured_mode"] == "json_schema"
    assert (attributes["openrouter.attempts"], attributes["openrouter.reasks"], attributes["openrouter.mode_fallbacks"]) == (1, 0, 0)
    (request,) = [s for s in telemetry.finished() if s is not span]
    assert request.parent is not None and request.parent.span_id == span.context.span_id
    assert request.name == "openrouter.request openai/gpt-4o"
    assert dict(request.attributes or {})["openrouter.attempt"] == 1
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes


async def test_span_nests_under_the_callers_span(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with service_for(server) as service:
        with tracer.start_as_current_span("POST /cities") as handler:
            await service.generate("Extract: Paris.", schema=CITY)
    span = telemetry.call_span()
    assert span.parent is not None and span.parent.span_id == handler.get_span_context().span_id
    assert span.context.trace_id == handler.get_span_context().trace_id


async def test_retries_fallbacks_and_reasks_show_in_the_trace(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    model = "acme/json-shy"
    server.refuse_modes[model] = {"json_schema", "json_object"}
    server.enqueue(RATE_LIMITED)
    async with service_for(server) as service:
        result = await service.generate("Extract: Paris.", schema=CITY, model=model)
    assert result.mode == "prompt"
    span = telemetry.call_span()
    attributes = dict(span.attributes or {})
    assert attributes["openrouter.mode_fallbacks"] == 2 and attributes["openrouter.attempts"] == result.attempts == 4
    assert [e.name for e in span.events] == ["openrouter.mode_fallback", "openrouter.mode_fallback"]
    assert [dict(e.attributes or {})["openrouter.structured_mode"] for e in span.events] == ["json_object", "prompt"]
    requests = sorted((s for s in telemetry.finished() if s is not span), key=lambda s: s.start_time or 0)
    assert [dict(s.attributes or {})["openrouter.structured_mode"] for s in requests] == ["json_schema", "json_object", "prompt"]
    assert [s.status.status_code for s in requests] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    (retry,) = requests[0].events
    assert retry.name == "openrouter.retry"
    assert dict(retry.attributes or {})["http.response.status_code"] == 429
    assert dict(retry.attributes or {})["openrouter.retry.wait_s"] == pytest.approx(0.02)


async def test_a_reask_is_a_span_event_and_a_failed_call_an_error_span(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    bad = chat_reply('{"city": 3}')
    server.enqueue(Scripted(json=bad), Scripted(json=bad))
    async with service_for(server) as service:
        with pytest.raises(StructuredOutputError):
            await service.generate("Extract: Paris.", schema=CITY, max_reasks=1)
    span = telemetry.call_span()
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "StructuredOutputError"
    assert attributes["openrouter.reasks"] == 1 and attributes["openrouter.attempts"] == 2
    assert attributes["openrouter.cost_usd"] == pytest.approx(0.0008)  # both replies were billed
    assert [e.name for e in span.events] == ["openrouter.reask", "exception"]
    reask = dict(span.events[0].attributes or {})
    assert reask["openrouter.reask"] == 1 and reask["openrouter.validation_error_count"] >= 1
    assert "openrouter.validation_errors" not in reask  # they may quote the reply: content, opt-in only


async def test_an_api_error_sets_status_and_error_type(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    server.enqueue(Scripted(status=401, json={"error": {"message": "No auth credentials found", "code": 401}}))
    async with service_for(server) as service:
        with pytest.raises(AuthenticationError):
            await service.generate("Hello")
    span = telemetry.call_span()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "AuthenticationError"
    assert dict(span.attributes or {})["gen_ai.output.type"] == "text"
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes)["error.type"] == "AuthenticationError" and duration.count == 1


async def test_stream_and_embed_spans(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    async with service_for(server) as service:
        stream = service.stream("Say hello", model="openai/gpt-4o")
        text = await stream.collect()
        await service.embed(["one", "two"], model="openai/text-embedding-3-small")
    chat = next(s for s in telemetry.finished() if s.name == "chat openai/gpt-4o")
    attributes = dict(chat.attributes or {})
    assert text and attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.output_tokens"] == stream.usage.completion_tokens > 0
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    embed = next(s for s in telemetry.finished() if s.name == "embeddings openai/text-embedding-3-small")
    assert embed.kind is SpanKind.CLIENT
    assert dict(embed.attributes or {})["gen_ai.operation.name"] == "embeddings"
    assert dict(embed.attributes or {})["gen_ai.usage.input_tokens"] > 0


async def test_parlant_schema_name_rides_on_the_span(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    from pydantic import BaseModel

    class CityAnswer(BaseModel):
        city: str
        country: str

    server.set_reply("CityAnswer", {"city": "Lyon", "country": "France"})
    nlp = service_for(server)(None)
    generator = await nlp.get_schematic_generator(CityAnswer)
    from parlant.core.engines.alpha.prompt_builder import PromptBuilder

    await generator.generate(PromptBuilder().add_section("task", "Lyon, France", {}))
    assert dict(telemetry.call_span().attributes or {})["parlant.schema_name"] == "CityAnswer"


def test_span_attributes_nest_and_reset() -> None:
    from openrouter_registry.engine.observe import _EXTRA

    with span_attributes({"a": 1}):
        with span_attributes({"b": 2}):
            assert _EXTRA.get() == {"a": 1, "b": 2}
        assert _EXTRA.get() == {"a": 1}
    assert _EXTRA.get() == {}


# --- metrics -----------------------------------------------------------------------------------------


async def test_duration_and_token_histograms(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    server.enqueue(Scripted(json=chat_reply(json.dumps(PARIS))))
    async with service_for(server) as service:
        await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    labels = dict(duration.attributes)
    assert labels == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openrouter", "gen_ai.request.model": "openai/gpt-4o",
        "gen_ai.response.model": "openai/gpt-4o-2024-08-06", "server.address": "127.0.0.1", "server.port": server.port,
    }
    assert duration.count == 1 and 0 < duration.sum < 30
    tokens = {dict(p.attributes)["gen_ai.token.type"]: p.sum for p in telemetry.points("gen_ai.client.token.usage")}
    assert tokens == {"input": 20, "output": 10}


# --- content and the key -----------------------------------------------------------------------------


async def test_content_only_on_opt_in(server: FakeOpenRouter, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = [{"role": "system", "content": "You extract cities."}, {"role": "user", "content": "Extract: Paris."}]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    async with service_for(server) as service:
        # tool_choice "none": the tools are declared (and captured), the local server answers with content
        await service.generate(messages=messages, schema=CITY, extra_body={"tools": tools, "tool_choice": "none"})
        off = dict(telemetry.call_span().attributes or {})
        telemetry.spans.clear()
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        await service.generate(messages=messages, schema=CITY, extra_body={"tools": tools, "tool_choice": "none"})
        on = dict(telemetry.call_span().attributes or {})
    content = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions"}
    assert not content & set(off) and not any("Paris" in str(v) for v in off.values())
    assert json.loads(str(on["gen_ai.system_instructions"])) == [{"type": "text", "content": "You extract cities."}]
    assert json.loads(str(on["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Extract: Paris."}]}
    ]
    (output,) = json.loads(str(on["gen_ai.output.messages"]))
    assert output["role"] == "assistant" and output["finish_reason"] == "stop"
    assert json.loads(output["parts"][0]["content"]) == PARIS
    assert json.loads(str(on["gen_ai.tool.definitions"])) == tools


async def test_an_embedding_span_carries_its_inputs_only_on_opt_in(
    server: FakeOpenRouter, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "embeddings openai/text-embedding-3-small"
    async with service_for(server) as service:
        await service.embed(["Paris", "Lyon"], model="openai/text-embedding-3-small")
        off = dict(next(s for s in telemetry.finished() if s.name == name).attributes or {})
        telemetry.spans.clear()
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        await service.embed(["Paris", "Lyon"], model="openai/text-embedding-3-small")
        on = dict(next(s for s in telemetry.finished() if s.name == name).attributes or {})
    assert "gen_ai.input.messages" not in off and not any("Paris" in str(v) for v in off.values())
    assert json.loads(str(on["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Paris"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Lyon"}]},
    ]


async def test_the_key_is_in_no_span_event_or_metric(
    server: FakeOpenRouter, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    seen: list[CallEvent] = []
    server.enqueue(RATE_LIMITED, Scripted(status=401, json={"error": {"message": "bad key", "code": 401}}))
    async with service_for(server, on_event=seen.append) as service:
        with pytest.raises(AuthenticationError):
            await service.generate("Extract: Paris.", schema=CITY)
        await service.generate("Extract: Paris.", schema=CITY)
        await service.stream("hi").collect()
        await service.embed("hi")
    dumped = [span.to_json() for span in telemetry.finished()]
    dumped.append(telemetry.reader.get_metrics_data().to_json())  # type: ignore[union-attr]
    dumped.extend(repr(event) + str(event.error) for event in seen)
    assert len(telemetry.finished()) >= 8 and seen
    assert not [text for text in dumped if KEY in text or KEY[10:] in text]


# --- events ------------------------------------------------------------------------------------------


async def test_events_in_order_on_a_retried_call(server: FakeOpenRouter) -> None:
    seen: list[CallEvent] = []
    server.enqueue(RATE_LIMITED, Scripted(json=chat_reply(json.dumps(PARIS))))
    async with service_for(server, on_event=seen.append) as service:
        result = await service.generate("Extract: Paris.", schema=CITY, model="openai/gpt-4o")
    assert [e.kind for e in seen] == ["request", "retry", "response"]
    request, retry, response = seen
    assert len({e.call_id for e in seen}) == 1 and all(e.operation == "chat" and e.model == "openai/gpt-4o" for e in seen)
    assert (request.attempts, request.mode) == (1, "json_schema")
    assert (retry.attempts, retry.status, retry.reason) == (2, 429, "RateLimitError")
    assert retry.wait == pytest.approx(0.02)
    assert response.attempts == result.attempts == 2
    assert (response.response_model, response.provider, response.generation_id) == (
        "openai/gpt-4o-2024-08-06", "OpenAI", "gen-observe-1"
    )
    assert response.usage == result.usage and response.cost == result.cost == Decimal("0.0004")
    assert response.cost_source == "api" and response.finish_reason == "stop"
    assert 0 < request.elapsed <= retry.elapsed <= response.elapsed


async def test_fallback_reask_and_error_events(server: FakeOpenRouter) -> None:
    model = "acme/json-shy"
    server.refuse_modes[model] = {"json_schema"}
    bad = chat_reply('{"city": 3}')
    server.enqueue(Scripted(status=400, json={"error": {"message": "response_format json_schema is not supported", "code": 400}}),
                   Scripted(json=bad), Scripted(json=bad))
    seen: list[CallEvent] = []
    async with service_for(server, on_event=seen.append) as service:
        with pytest.raises(StructuredOutputError) as raised:
            await service.generate("Extract: Paris.", schema=CITY, model=model, max_reasks=1)
    assert [e.kind for e in seen] == ["request", "fallback", "request", "reask", "request", "error"]
    fallback, reask, error = seen[1], seen[3], seen[5]
    assert (fallback.reason, fallback.mode) == ("json_schema", "json_object")
    assert reask.errors and "city" in reask.errors[0]
    assert error.error is raised.value and error.reason == "StructuredOutputError"
    assert error.attempts == 3 and error.cost == Decimal("0.0008")


class Recorder:
    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    @hookimpl
    def on_event(self, event: CallEvent) -> None:
        self.events.append(event)


class Broken:
    @hookimpl
    def on_event(self, event: CallEvent) -> None:
        raise RuntimeError("observer bug")


async def test_the_hook_sees_every_event_and_failing_observers_change_nothing(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(environ={})
    recorder = Recorder()
    registry.register(recorder, "recorder")
    registry.register(Broken(), "broken")

    def app_observer(event: CallEvent) -> None:
        raise ValueError("app observer bug")

    server.enqueue(RATE_LIMITED)
    async with service_for(server, registry=registry, on_event=app_observer) as service:
        result = await service.generate("Extract: Paris.", schema=CITY)
        vectors = await service.embed("hello")
    assert result.content == PARIS and result.attempts == 2 and len(vectors.vectors) == 1
    assert [(e.operation, e.kind) for e in recorder.events] == [
        ("chat", "request"), ("chat", "retry"), ("chat", "response"), ("embeddings", "request"), ("embeddings", "response"),
    ]
    assert "broken" in caplog.text and "observer bug" in caplog.text and "an on_event observer failed" in caplog.text
    assert next(p for p in registry.plugins() if p.name == "broken").status in ("degraded", "failed")


async def test_a_stream_stopped_early_still_ends_its_call(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    seen: list[CallEvent] = []
    async with service_for(server, on_event=seen.append) as service:
        deltas = service.stream("Tell me a long story").__aiter__()
        await deltas.__anext__()
        await deltas.aclose()  # what `break` in an `async for` leads to
    assert [e.kind for e in seen] == ["request", "response"]
    assert telemetry.call_span().status.status_code is StatusCode.UNSET


def test_on_event_is_accepted_by_nlpservices_and_checked() -> None:
    service = NLPServices.openrouter(api_key=KEY, on_event=print)
    assert service.on_event is print
    with pytest.raises(ConfigurationError, match="on_event must be a callable"):
        NLPServices.openrouter(api_key=KEY, on_event="print")


# --- free when unused, the User-Agent ----------------------------------------------------------------


def test_nothing_observed_loads_no_telemetry(server: FakeOpenRouter) -> None:
    script = f"""
import asyncio, sys
import openrouter_registry
assert "opentelemetry" not in sys.modules, "import openrouter_registry imported opentelemetry"
from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.engine import observe

async def main():
    settings = Settings.from_env({{}}, base_url={server.base_url!r}, api_key={server.api_key!r}, catalog=False)
    async with OpenRouterService(settings, registry=Registry(environ={{}})) as service:
        made = []
        real = observe.Watch
        observe.Watch = lambda *a, **k: made.append(1) or real(*a, **k)
        await service.generate("hello")
        await service.stream("hello").collect()
        await service.embed("hello")
        assert not made, "a Watch was made with nothing observing"
asyncio.run(main())
assert not [m for m in sys.modules if m.startswith("opentelemetry") or m == "openrouter_registry.engine.otel"]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("stack", ["aiohttp", "httpx"])
async def test_requests_identify_the_library(server: FakeOpenRouter, stack: str) -> None:
    import aiohttp
    import httpx

    from openrouter_registry import __version__

    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, transport=stack)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        await service.generate("hello")
        await service.stream("hello").collect()
    expected = f"openrouter-registry/{__version__} httpx/{httpx.__version__}"
    if stack == "aiohttp":
        expected += f" aiohttp/{aiohttp.__version__}"
    assert [r.headers["user-agent"] for r in server.requests] == [expected, expected]


def test_the_otlp_snippet_of_the_guide_compiles() -> None:
    """The OTLP export snippet is documented, not run against a live collector: it must still be valid
    Python that names the exporter and processor it tells the reader to use."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "observability.md").read_text(encoding="utf-8")
    block = guide.split("<!-- otlp-export", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    compile(block, "observability.md", "exec")
    assert re.search(r"BatchSpanProcessor\(OTLPSpanExporter\(\)\)", block)


async def test_every_round_of_the_tool_loop_is_a_chat_span(server: FakeOpenRouter, telemetry: Telemetry) -> None:
    def lookup(city: str) -> str:
        """Where a city is."""
        return f"{city} is in France"

    async with service_for(server) as service:
        result = await service.run_tools("Where is Paris?", tools=[lookup], model="openai/gpt-4o-mini")
    chats = [span for span in telemetry.spans.get_finished_spans() if span.name == "chat openai/gpt-4o-mini"]
    assert result.rounds == 2 and len(chats) == 2  # the round that called the tool, then the answer
    assert [dict(span.attributes or {})["gen_ai.response.finish_reasons"] for span in chats] == [("tool_calls",), ("stop",)]


def test_sync_client_calls_nest_under_the_callers_span_and_keep_its_attributes(
    server: FakeOpenRouter, telemetry: Telemetry
) -> None:
    from openrouter_registry import NLPServices

    tracer = telemetry.tracer_provider.get_tracer("app")
    with NLPServices.openrouter_sync(base_url=server.base_url, api_key=server.api_key, catalog=False,
                                     model_name="openai/gpt-4o") as client:
        with tracer.start_as_current_span("handler") as handler, span_attributes({"app.request": "r-1"}):
            client.generate("Say hello")
            assert "".join(client.stream("Say hello")) != ""
        client.generate("Outside")  # no caller span: a root span of its own
    calls = [s for s in telemetry.finished() if s.kind is SpanKind.CLIENT]
    assert len(calls) == 3
    inside, streamed, outside = calls
    for span in (inside, streamed):  # run_coroutine_threadsafe schedules in a copy of the caller's context
        assert span.parent is not None and span.parent.span_id == handler.get_span_context().span_id
        assert span.context.trace_id == handler.get_span_context().trace_id
        assert span.attributes is not None and span.attributes["app.request"] == "r-1"
    assert outside.parent is None and outside.attributes is not None and "app.request" not in outside.attributes
