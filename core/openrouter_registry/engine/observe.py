"""Observing one call: `CallEvent`s for plugins (the ``on_event`` hook) and apps (``on_event=``), and
OpenTelemetry spans and metrics (`openrouter_registry.engine.otel`) when the app has set a provider.

`watch` is the one entry point, and it is free when nothing observes: no plugin implements
``on_event``, the service has no ``on_event=`` and ``opentelemetry`` is not imported (or no provider
is set) -> it returns None and the call goes on untouched. Otherwise it returns a `Watch`, which the
call drives in order (``request``, ``retry``, ``fallback``, ``reask``, then ``succeeded``, or
``ended(error)`` for what it raised). Any call that talks to OpenRouter (``generate``, ``stream``,
``embed``, each round of the tool loop) adopts it the same way:

    watch = observe.watch("chat", model, settings, registry, on_event)
    try:
        result = await work(watch)         # ... if watch: watch.request(mode) before each HTTP request ...
    except BaseException as error:         # (a try costs nothing when nothing is raised; a with block would)
        if watch is not None:
            watch.ended(error)             # the error event, an error span
        raise
    if watch is not None:
        watch.succeeded(...)               # the response event; the span ends

(``with watch:`` does the same where the call is observed for sure.)

The tool loop (`run_tools`) adds spans, not events: `tool_loop` gives it an ``invoke_agent`` span (None
when no tracer provider is set, as cheaply as `watch`), the parent of its rounds' chat spans and of an
``execute_tool`` span per tool call (`otel.LoopSpan.tool`); `loop_totals` are its closing attributes.
Running a tool emits no `CallEvent`: events report the steps of a request to OpenRouter (their kinds,
``attempts`` and ``model`` mean nothing for a local function), and the rounds' chat calls have theirs.

Observers are isolated: one that raises is logged and ignored (plugins through the registry's
isolation rule), so observing never changes a call's outcome.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..http.events import CallEvent, EventKind, EventObserver, RetryEvent
from ..result import CostSource, Usage

if TYPE_CHECKING:
    from ..plugins.registry import Registry
    from ..settings import Settings
    from .otel import CallSpan, LoopSpan

__all__ = ["watch", "unobserved", "Watch", "span_attributes", "tracing_wanted", "tool_loop", "loop_totals"]

log = logging.getLogger("openrouter_registry")

_IDS = itertools.count(1)

_EXTRA: ContextVar[Mapping[str, Any]] = ContextVar("openrouter_registry_span_attributes", default={})


@contextmanager
def span_attributes(attributes: Mapping[str, Any]) -> Iterator[None]:
    """Add ``attributes`` to the span of every call made in this block (an adapter's context: the
    Parlant adapter adds ``parlant.schema_name``)."""
    token = _EXTRA.set({**_EXTRA.get(), **attributes})
    try:
        yield
    finally:
        _EXTRA.reset(token)


#: `openrouter_registry.engine.otel`, once loaded (an import statement per call would cost microseconds).
_otel: Any = None


def tracing_wanted() -> bool:
    """True when the app imported OpenTelemetry and set a tracer or meter provider (two dict lookups
    when it did not: this module never imports ``opentelemetry`` itself)."""
    global _otel
    if "opentelemetry.trace" not in sys.modules and "opentelemetry.metrics" not in sys.modules:
        return False
    if _otel is None:
        from . import otel

        _otel = otel
    return bool(_otel.enabled())


def _server(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (443 if parts.scheme == "https" else 80)


def _float(cost: float | Decimal | None) -> float | None:
    return None if cost is None else float(cost)


def unobserved(registry: Registry, on_event: EventObserver | None) -> bool:
    """True when surely nothing observes a call (no ``on_event``, no plugin's ``on_event``, OpenTelemetry
    not imported): `watch` would return None. A few dict lookups; False does not mean a `Watch` comes back."""
    modules = sys.modules
    return (
        on_event is None
        and "opentelemetry.trace" not in modules
        and "opentelemetry.metrics" not in modules
        and not registry.observed
    )


def watch(
    operation: str,
    model: str,
    settings: Settings,
    registry: Registry,
    on_event: EventObserver | None,
    *,
    stream: bool = False,
    output_type: str | None = None,
    current: bool = True,
) -> Watch | None:
    """A `Watch` for one call, or None when nothing observes it. ``current``: the call's span becomes
    the current span inside the ``with`` block (not for a stream, whose block spans several tasks' turns)."""
    if unobserved(registry, on_event):  # the common case first, in a few dict lookups
        return None
    plugins = registry.observed
    tracing = tracing_wanted()
    if on_event is None and not plugins and not tracing:
        return None
    span: CallSpan | None = None
    if tracing:
        from .otel import CallSpan

        span = CallSpan(
            operation, model, _server(settings.base_url),
            stream=stream, output_type=output_type, extra=_EXTRA.get(), current=current,
        )
    return Watch(operation, model, registry if plugins else None, on_event, span)


def tool_loop(
    model: str, settings: Settings, *, output_type: str, conversation_id: str | None = None
) -> LoopSpan | None:
    """The ``invoke_agent`` span of one tool loop (`run_tools`), current until it ends, or None when no
    tracer provider is set (one dict lookup when the app never imported OpenTelemetry). The loop gives
    each tool call an ``execute_tool`` span through it (`LoopSpan.tool`). Spans only: a tool run has
    no `CallEvent` (events report a call's requests to OpenRouter; the rounds' chat calls have theirs)."""
    if "opentelemetry.trace" not in sys.modules or not tracing_wanted():
        return None
    return _otel.loop_span(  # type: ignore[no-any-return]
        model, _server(settings.base_url), output_type=output_type, conversation_id=conversation_id, extra=_EXTRA.get()
    )


def loop_totals(
    usage: Usage, cost: float | Decimal | None, cost_source: CostSource | None, attempts: int, rounds: int,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A tool loop's span attributes once it ends: what every round used and cost, summed."""
    return {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
        "gen_ai.usage.cache_write.input_tokens": usage.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
        "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else None,
        "openrouter.cost_usd": _float(cost),
        "openrouter.cost_source": cost_source,
        "openrouter.attempts": attempts,
        "openrouter.rounds": rounds,
    }


class Watch:
    """One observed call: builds its `CallEvent`s, hands them to the observers, drives its span."""

    def __init__(
        self,
        operation: str,
        model: str,
        registry: Registry | None,
        on_event: EventObserver | None,
        span: CallSpan | None,
    ) -> None:
        self.operation = operation
        self.model = model
        self.call_id = next(_IDS)
        self.attempts = 0
        self.reasks = 0
        self.fallbacks = 0
        self.mode: str | None = None
        self._registry = registry
        self._on_event = on_event
        self._span = span
        self._started = time.perf_counter()
        self._done = False
        self._usage: Usage | None = None
        self._cost: float | Decimal | None = None

    def __repr__(self) -> str:
        return f"Watch({self.operation!r}, model={self.model!r}, call_id={self.call_id}, attempts={self.attempts})"

    # --- events --------------------------------------------------------------------------------------

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        event = CallEvent(
            kind=kind, operation=self.operation, model=self.model, call_id=self.call_id,
            elapsed=time.perf_counter() - self._started, attempts=self.attempts, **fields,
        )
        if self._registry is not None:
            self._registry.notify(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # an observer's bug must not break the call it observes
                log.warning("an on_event observer failed on a %r event (%r); ignored", kind, self._on_event, exc_info=True)

    def prepared(
        self,
        *,
        generator: str,
        plugin: str,
        mode: str | None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        conversation: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """The call's request is settled (generator resolved, first mode picked): span attributes."""
        self.mode = mode
        if self._span is None:
            return
        extra = extra_body or {}
        session = extra.get("session_id")
        stop = extra.get("stop")
        self._span.prepared(
            {
                "openrouter.generator": generator,
                "openrouter.plugin": plugin,
                "gen_ai.request.max_tokens": max_tokens if max_tokens is not None else _number(extra.get("max_tokens")),
                "gen_ai.request.temperature": temperature if temperature is not None else _number(extra.get("temperature")),
                "gen_ai.request.top_p": _number(extra.get("top_p")),
                "gen_ai.request.top_k": _number(extra.get("top_k")),
                "gen_ai.request.seed": _number(extra.get("seed")),
                "gen_ai.request.frequency_penalty": _number(extra.get("frequency_penalty")),
                "gen_ai.request.presence_penalty": _number(extra.get("presence_penalty")),
                "gen_ai.request.stop_sequences": [stop] if isinstance(stop, str) else _strings(stop),
                "gen_ai.conversation.id": session if isinstance(session, str) and session else None,
            },
            conversation,
            extra.get("tools"),
        )

    def embedded_inputs(self, texts: Sequence[str]) -> None:
        if self._span is not None:
            self._span.embedded_inputs(texts)

    def request(self, mode: str | None = None) -> None:
        """An HTTP request (the first of a transport call) is about to go out."""
        self.attempts += 1
        self.mode = mode
        if self._span is not None:
            self._span.request(self.attempts, mode)
        self._emit("request", mode=mode)

    def retry(self, event: RetryEvent) -> None:
        """The transport's retry listener: the failed request is retried after ``event.wait``."""
        self.attempts += 1
        if self._span is not None:
            self._span.retry(self.attempts, event.status, event.wait, event.error)
        self._emit("retry", status=event.status, wait=event.wait, reason=event.error, mode=self.mode)

    def replied(self, *, generation_id: str | None, provider: str | None, usage: Usage, cost: float | Decimal | None) -> None:
        """A transport call answered: what that one reply used and cost (on its request span)."""
        if self._span is not None:
            self._span.replied({
                "gen_ai.response.id": generation_id,
                "openrouter.upstream_provider": provider,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "openrouter.cost_usd": _float(cost),
            })

    def request_failed(self, error: BaseException) -> None:
        """A transport call raised (after its retries): its request span ends in error."""
        if self._span is not None:
            self._span.request_failed(error)

    def fallback(self, refused: str | None, mode: str | None, error: BaseException) -> None:
        """The model refused ``refused``: the call goes on in ``mode``."""
        self.fallbacks += 1
        if self._span is not None:
            self._span.event("openrouter.mode_fallback", {
                "openrouter.refused_mode": refused, "openrouter.structured_mode": mode, "error.type": type(error).__name__,
            })
        self._emit("fallback", mode=mode, reason=refused)

    def reask(self, errors: Sequence[str]) -> None:
        """The reply did not validate: the model is asked again."""
        self.reasks += 1
        if self._span is not None:
            self._span.reask(self.reasks, errors)
        self._emit("reask", errors=tuple(errors), mode=self.mode)

    def spent(self, usage: Usage | None, cost: float | Decimal | None) -> None:
        """What the call has spent so far (reported with an error, should one come)."""
        self._usage, self._cost = usage, cost

    def succeeded(
        self,
        *,
        response_model: str | None,
        provider: str | None,
        generation_id: str | None,
        usage: Usage | None,
        cost: float | Decimal | None,
        cost_source: CostSource | None,
        finish_reason: str | None = None,
        output: str | None = None,
    ) -> None:
        """The call's result: a ``response`` event; the span gets the response attributes and ends."""
        self._done = True
        if self._span is not None:
            self._span.detach()
            attributes = self._totals(usage, cost)
            attributes.update({
                "gen_ai.response.id": generation_id,
                "gen_ai.response.model": response_model,
                "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else None,
                "openrouter.upstream_provider": provider,
                "openrouter.generation_id": generation_id,
                "openrouter.cost_source": cost_source,
            })
            tokens = None if usage is None else (usage.prompt_tokens, usage.completion_tokens)
            self._span.finish(attributes, output, finish_reason, time.perf_counter() - self._started, tokens)
        self._emit(
            "response", mode=self.mode, response_model=response_model, provider=provider, generation_id=generation_id,
            usage=usage, cost=cost, cost_source=cost_source, finish_reason=finish_reason,
        )

    def _totals(self, usage: Usage | None, cost: float | Decimal | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "openrouter.attempts": self.attempts,
            "openrouter.reasks": self.reasks,
            "openrouter.mode_fallbacks": self.fallbacks,
            "openrouter.structured_mode": self.mode,
            "openrouter.cost_usd": _float(cost),
        }
        if usage is not None:
            attributes.update({
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
                "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
            })
            cache_write = getattr(usage, "cache_write_tokens", None)  # once Usage reports cache writes
            if isinstance(cache_write, int):
                attributes["gen_ai.usage.cache_write.input_tokens"] = cache_write
        return attributes

    # --- the call's block ----------------------------------------------------------------------------

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.ended(error)

    def ended(self, error: BaseException | None) -> None:
        """The call's block is over: with ``error`` (what it raised) an ``error`` event and an error span;
        without one (or a stream's consumer that stopped early: `GeneratorExit`), a ``response`` event
        with what was spent, unless `succeeded` came first. Idempotent."""
        if self._done:
            return
        if error is None or isinstance(error, GeneratorExit):
            self.succeeded(
                response_model=None, provider=None, generation_id=None, usage=self._usage, cost=self._cost, cost_source=None
            )
            return
        self._done = True
        if self._span is not None:
            self._span.detach()
        usage = getattr(error, "usage", None) or self._usage
        if not isinstance(usage, Usage):
            usage = None
        cost = getattr(error, "cost", None)
        cost = self._cost if cost is None else cost
        if self._span is not None:
            self._span.fail(error, self._totals(usage, cost), time.perf_counter() - self._started)
        self._emit(
            "error", mode=self.mode, error=error, reason=type(error).__name__, usage=usage, cost=cost,
            generation_id=getattr(error, "generation_id", None), provider=getattr(error, "provider", None),
        )


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None
