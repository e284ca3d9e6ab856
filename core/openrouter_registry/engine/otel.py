"""OpenTelemetry for one call: a GenAI client span, a child span per HTTP request, span events for
retries, mode fallbacks and re-asks, and the two GenAI client metrics; for the tool loop, an
``invoke_agent`` span (`LoopSpan`) with an ``execute_tool {gen_ai.tool.name}`` span (`ToolSpan`) per
tool call, both of kind INTERNAL.

Loaded only by `openrouter_registry.engine.observe`, and only when ``opentelemetry`` is already
imported by the application and a tracer or meter provider is set (`enabled`); ``import
openrouter_registry`` never loads it. Names follow the OpenTelemetry GenAI semantic conventions
(open-telemetry/semantic-conventions-genai, "Development" status, read 2026-12): the span
``{gen_ai.operation.name} {gen_ai.request.model}`` of kind CLIENT with the ``gen_ai.*`` attributes,
the histograms ``gen_ai.client.operation.duration`` (s) and ``gen_ai.client.token.usage``
({token}). OpenRouter's own facts ride along under the ``openrouter.`` prefix (`ATTRIBUTES`).

Content (messages, system instructions, tool definitions, the output, a tool call's arguments and
result and its error message) is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is ``true`` (or ``SPAN_ONLY`` /
``SPAN_AND_EVENT``), as JSON strings in the conventions' message format. Request headers, and so the
API key, are never read here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import __version__  # the root package is loaded before any of its modules

__all__ = ["enabled", "CallSpan", "LoopSpan", "ToolSpan", "loop_span", "capture_content", "ATTRIBUTES", "CONTENT_SWITCH"]

CONTENT_SWITCH = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CONTENT_ON = frozenset({"true", "1", "yes", "span_only", "span_and_event"})

#: The ``openrouter.*`` attributes a call's span may carry, and what each means.
ATTRIBUTES = {
    "openrouter.cost_usd": "what the call cost in USD, every attempt summed (float)",
    "openrouter.cost_source": "where the cost came from: 'api' (OpenRouter's usage.cost) or 'catalog'",
    "openrouter.upstream_provider": "the provider OpenRouter routed to (e.g. 'Anthropic')",
    "openrouter.generation_id": "OpenRouter's generation id (also gen_ai.response.id)",
    "openrouter.generator": "the Generator class that built the request",
    "openrouter.plugin": "the plugin that provided the generator",
    "openrouter.structured_mode": "the structured-output mode that answered (json_schema, tool, prompt...)",
    "openrouter.attempts": "HTTP requests the call made, retries, fallbacks and re-asks included",
    "openrouter.reasks": "times the model was asked again after an invalid reply",
    "openrouter.mode_fallbacks": "times the model refused a structured mode and the next one was tried",
    "openrouter.rounds": "the tool loop's rounds (chat calls) run, on its invoke_agent span",
}

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

try:  # the API's "no provider set yet" classes; a provider configured by environment variable is a real one
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _UnsetMeters
except ImportError:  # pragma: no cover - a future API without it: treat every meter provider as set
    _UnsetMeters = ()  # type: ignore[assignment,misc]
_UNSET_TRACERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_UNSET_METERS = (_UnsetMeters, metrics.NoOpMeterProvider)


def _tracer() -> trace.Tracer | None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, _UNSET_TRACERS):
        return None
    return provider.get_tracer("openrouter_registry", __version__)


class _Instruments:
    def __init__(self, provider: metrics.MeterProvider) -> None:
        meter = provider.get_meter("openrouter_registry", __version__)
        self.provider = provider
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )


_instruments: _Instruments | None = None


def _meters() -> _Instruments | None:
    global _instruments
    provider = metrics.get_meter_provider()
    if isinstance(provider, _UNSET_METERS):
        return None
    if _instruments is None or _instruments.provider is not provider:
        _instruments = _Instruments(provider)
    return _instruments


def enabled() -> bool:
    """True when the application has set a tracer provider or a meter provider."""
    return not isinstance(trace.get_tracer_provider(), _UNSET_TRACERS) or not isinstance(
        metrics.get_meter_provider(), _UNSET_METERS
    )


def capture_content(environ: Mapping[str, str] = os.environ) -> bool:
    """The documented opt-in: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``."""
    return environ.get(CONTENT_SWITCH, "").strip().lower() in _CONTENT_ON


def _text_parts(content: Any) -> list[dict[str, Any]]:
    """A chat message's content as the conventions' parts (``{"type": "text", "content": ...}``)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts = []
    for part in content:
        if part.get("type") == "text":
            parts.append({"type": "text", "content": part.get("text", "")})
        else:
            parts.append({"type": str(part.get("type")), "content": json.dumps(part, default=str)})
    return parts


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class CallSpan:
    """The span (and metrics) of one call. Methods are called by `observe.Watch` in the call's order."""

    def __init__(
        self,
        operation: str,
        model: str,
        server: tuple[str, int],
        *,
        stream: bool,
        output_type: str | None,
        extra: Mapping[str, Any],
        current: bool,
    ) -> None:
        self.operation = operation
        self.model = model
        self._metric_attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openrouter",
            "gen_ai.request.model": model,
            "server.address": server[0],
            "server.port": server[1],
        }
        self._meters = _meters()
        tracer = _tracer()
        self.span: trace.Span | None = None
        self._request: trace.Span | None = None
        self._token: object | None = None
        self._content = capture_content()
        if tracer is None:
            return
        attributes: dict[str, Any] = dict(self._metric_attributes)
        if stream:
            attributes["gen_ai.request.stream"] = True
        if output_type is not None:
            attributes["gen_ai.output.type"] = output_type
        attributes.update(extra)
        self.span = tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes)
        if current:  # nested instrumentation (httpx, aiohttp) shows under this call
            self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def detach(self) -> None:
        """Stop being the current span (the call's block ended); idempotent."""
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def prepared(
        self,
        attributes: Mapping[str, Any],
        conversation: Sequence[Mapping[str, Any]] | None,
        tools: Any,
    ) -> None:
        """The request's settings once resolved; the input content when captured."""
        span = self.span
        if span is None:
            return
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if not self._content:
            return
        if conversation is not None:
            system = [p for m in conversation if m.get("role") in ("system", "developer") for p in _text_parts(m.get("content"))]
            if system:
                span.set_attribute("gen_ai.system_instructions", _json(system))
            span.set_attribute(
                "gen_ai.input.messages",
                _json([
                    {"role": m["role"], "parts": _text_parts(m.get("content"))}
                    for m in conversation
                    if m.get("role") not in ("system", "developer")
                ]),
            )
        if tools:
            span.set_attribute("gen_ai.tool.definitions", _json(tools))

    def embedded_inputs(self, texts: Sequence[str]) -> None:
        """An embeddings call's inputs, when content is captured."""
        if self.span is not None and self._content:
            self.span.set_attribute("gen_ai.input.messages", _json([{"role": "user", "parts": _text_parts(t)} for t in texts]))

    # --- per HTTP request --------------------------------------------------------------------------

    def request(self, attempt: int, mode: str | None) -> None:
        """A request is about to go out: a child span for it (retries inside it show as events)."""
        if self.span is None:
            return
        self._end_request(None)
        attributes: dict[str, Any] = {"openrouter.attempt": attempt}
        if mode is not None:
            attributes["openrouter.structured_mode"] = mode
        tracer = _tracer()
        if tracer is None:
            return
        self._request = tracer.start_span(
            f"openrouter.request {self.model}", context=trace.set_span_in_context(self.span),
            kind=SpanKind.INTERNAL, attributes=attributes,
        )

    def retry(self, attempt: int, status: int | None, wait: float, error: str) -> None:
        target = self._request or self.span
        if target is None:
            return
        attributes: dict[str, Any] = {"openrouter.attempt": attempt, "openrouter.retry.wait_s": wait, "error.type": error}
        if status is not None:
            attributes["http.response.status_code"] = status
        target.add_event("openrouter.retry", attributes)

    def replied(self, attributes: Mapping[str, Any]) -> None:
        """The request answered: its own usage, cost and generation id go on its child span."""
        if self._request is not None:
            self._request.set_attributes({k: v for k, v in attributes.items() if v is not None})
        self._end_request(None)

    def _end_request(self, error: BaseException | None) -> None:
        request, self._request = self._request, None
        if request is None:
            return
        if error is not None:
            request.set_attribute("error.type", type(error).__name__)
            request.set_status(Status(StatusCode.ERROR, str(error)))
        request.end()

    def request_failed(self, error: BaseException) -> None:
        self._end_request(error)

    # --- per call ----------------------------------------------------------------------------------

    def event(self, name: str, attributes: Mapping[str, Any]) -> None:
        if self.span is not None:
            self.span.add_event(name, {k: v for k, v in attributes.items() if v is not None})

    def reask(self, number: int, errors: Sequence[str]) -> None:
        """A re-ask: a span event; the validation errors (which may quote the reply) only with content on."""
        attributes: dict[str, Any] = {"openrouter.reask": number, "openrouter.validation_error_count": len(errors)}
        if self._content:
            attributes["openrouter.validation_errors"] = list(errors[:10])
        self.event("openrouter.reask", attributes)

    def finish(self, attributes: Mapping[str, Any], output: str | None, finish_reason: str | None, duration: float,
               tokens: tuple[int, int] | None) -> None:
        """The call succeeded: response attributes, the output when captured, metrics; the span ends."""
        self._end_request(None)
        response_model = attributes.get("gen_ai.response.model")
        span = self.span
        if span is not None:
            span.set_attributes({k: v for k, v in attributes.items() if v is not None})
            if self._content and output is not None:
                message: dict[str, Any] = {"role": "assistant", "parts": _text_parts(output)}
                if finish_reason is not None:
                    message["finish_reason"] = finish_reason
                span.set_attribute("gen_ai.output.messages", _json([message]))
            span.end()
        self._record(duration, response_model, None, tokens)

    def fail(self, error: BaseException, attributes: Mapping[str, Any], duration: float) -> None:
        """The call raised ``error``: status ERROR, ``error.type`` our error class; the span ends."""
        self._end_request(error)
        kind = type(error).__name__
        span = self.span
        if span is not None:
            span.set_attributes({k: v for k, v in attributes.items() if v is not None})
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.record_exception(error)
            span.end()
        self._record(duration, None, kind, None)

    def _record(self, duration: float, response_model: Any, error: str | None, tokens: tuple[int, int] | None) -> None:
        meters = self._meters
        if meters is None:
            return
        labels = dict(self._metric_attributes)
        if response_model:
            labels["gen_ai.response.model"] = response_model
        if error is not None:
            labels["error.type"] = error
        meters.duration.record(duration, labels)
        if tokens is not None:
            for kind, count in zip(("input", "output"), tokens):
                meters.tokens.record(count, {**labels, "gen_ai.token.type": kind})


# --- the tool loop -----------------------------------------------------------------------------------


def loop_span(model: str, server: tuple[str, int], *, output_type: str, conversation_id: str | None,
              extra: Mapping[str, Any]) -> LoopSpan | None:
    """The span of one `run_tools` loop, current until it ends, or None without a tracer provider."""
    tracer = _tracer()
    if tracer is None:
        return None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "openrouter",
        "gen_ai.request.model": model,
        "server.address": server[0],
        "server.port": server[1],
        "gen_ai.output.type": output_type,
    }
    if conversation_id:
        attributes["gen_ai.conversation.id"] = conversation_id
    attributes.update(extra)
    return LoopSpan(tracer, tracer.start_span("invoke_agent", kind=SpanKind.INTERNAL, attributes=attributes))


class LoopSpan:
    """The ``invoke_agent`` span of one tool loop (kind INTERNAL): the current span while the loop runs,
    so the chat span of each round and the ``execute_tool`` span of each tool call are its children."""

    def __init__(self, tracer: trace.Tracer, span: trace.Span) -> None:
        self._tracer = tracer
        self.span = span
        self._content = capture_content()
        self._token: object | None = otel_context.attach(trace.set_span_in_context(span))

    def _detach(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def tool(self, name: str, call_id: str, description: str | None, arguments: str) -> ToolSpan:
        """The ``execute_tool`` span of one tool call, a child of this loop's span."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
        }
        if description:
            attributes["gen_ai.tool.description"] = description
        if self._content:
            attributes["gen_ai.tool.call.arguments"] = arguments
        span = self._tracer.start_span(
            f"execute_tool {name}", context=trace.set_span_in_context(self.span), kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        return ToolSpan(span, name, self._content)

    def finish(self, attributes: Mapping[str, Any]) -> None:
        """The loop answered: its totals; the span ends."""
        self._detach()
        self.span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        self.span.end()

    def fail(self, error: BaseException, attributes: Mapping[str, Any]) -> None:
        """The loop raised ``error`` (`ToolLoopError`, a round's API error...): status ERROR, ``error.type``."""
        self._detach()
        span = self.span
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.record_exception(error)
        span.end()


class ToolSpan:
    """The ``execute_tool {name}`` span of one tool call (kind INTERNAL). It is the current span while
    the function runs (`attach`, in the task that runs it), so what the function does nests under it."""

    def __init__(self, span: trace.Span, name: str, content: bool) -> None:
        self.span = span
        self.name = name
        self._content = content
        self._token: object | None = None

    def attach(self) -> None:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def _detach(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def succeeded(self, result: str) -> None:
        """The function returned: the result as sent to the model when content is captured; the span ends."""
        self._detach()
        if self._content:
            self.span.set_attribute("gen_ai.tool.call.result", result)
        self.span.end()

    def failed(self, kind: str, error: BaseException | None, message: str) -> None:
        """The call failed (``kind`` is its ``error.type``): status ERROR; its ``message`` (what the model
        is told, which may quote the arguments) and the exception event only when content is captured,
        else a description without content; the span ends."""
        self._detach()
        span = self.span
        span.set_attribute("error.type", kind)
        span.set_status(Status(StatusCode.ERROR, message if self._content else f"{self.name} failed: {kind}"))
        if error is not None and self._content:
            span.record_exception(error)
        span.end()
