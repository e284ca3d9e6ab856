"""Call events (`CallEvent`, what the ``on_event`` hook and ``on_event=`` observers receive) and retry
observers: code that wants to know each time the transport is about to retry a request.

`CallEvent` is a plain value: the engine builds one for each step of a call (request sent, retry,
mode fallback, re-ask, response, error) and hands it to the observers; turning events into spans
happens in the engine (`openrouter_registry.engine.observe`), never here.

The transport calls `notify_retry` from its one retry callback, with the HTTP status (None for a
connection failure or a timeout) and the wait before the next attempt (the server's ``Retry-After``
when it sent one). Observers are registered for a scope, not globally, so one batch run sees the
retries of its own requests and no one else's:

    with observe_retries(on_retry):          # this context and the tasks created inside it
        await service.generate(...)

The scope is a `contextvars.ContextVar`: asyncio tasks created inside the ``with`` block (or with a
context copied inside it) carry the observers with them. An observer that raises is logged and
ignored: observing a request never breaks it. Importing this module costs only the standard library
and attrs.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Literal

import attrs

from ..result import CostSource, Usage

__all__ = ["CallEvent", "EventKind", "EventObserver", "RetryEvent", "RetryObserver", "observe_retries", "notify_retry"]

#: What a `CallEvent` reports, in the order they come within one call: ``request`` (an HTTP request is
#: about to go out; a retry's request is reported by ``retry``), ``retry``, ``fallback`` (the model
#: refused the structured mode: the next one is tried), ``reask`` (the reply did not validate: the model
#: is asked again), then exactly one of ``response`` (the call succeeded) or ``error`` (it raised).
EventKind = Literal["request", "retry", "fallback", "reask", "response", "error"]


@attrs.frozen(kw_only=True)
class CallEvent:
    """One step of one call (``generate``, ``stream`` or ``embed``), for observers.

    Always set: ``kind`` (see `EventKind`), ``operation`` (``"chat"`` or ``"embeddings"``), ``model``
    (the model id asked for), ``call_id`` (the same for every event of one call, unique in the
    process), ``elapsed`` (seconds since the call started) and ``attempts`` (HTTP requests made so far,
    the one this event announces included).

    Per kind: ``request``: ``mode`` (the structured mode, None for text). ``retry``: ``status`` (None
    without an HTTP answer), ``wait`` (seconds before the next request), ``reason`` (the error class).
    ``fallback``: ``mode`` (the new mode), ``reason`` (the refused mode). ``reask``: ``errors`` (why the
    reply did not validate), ``mode``. ``response``: ``response_model``, ``provider``,
    ``generation_id``, ``usage``, ``cost`` (USD, every attempt summed), ``cost_source``, ``mode``,
    ``finish_reason``. ``error``: ``error`` (the typed exception raised to the caller; its class name
    is ``reason``) and whatever was spent before it (``usage``, ``cost``).
    """

    kind: EventKind
    operation: str
    model: str
    call_id: int
    elapsed: float
    attempts: int
    mode: str | None = None
    status: int | None = None
    wait: float | None = None
    reason: str | None = None
    errors: tuple[str, ...] = ()
    response_model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    usage: Usage | None = None
    cost: float | Decimal | None = None
    cost_source: CostSource | None = None
    finish_reason: str | None = None
    error: BaseException | None = None


EventObserver = Callable[[CallEvent], None]

log = logging.getLogger("openrouter_registry")


@attrs.frozen
class RetryEvent:
    """One retry about to happen: ``status`` of the failed attempt (None when no HTTP answer came),
    ``wait`` seconds before the next attempt, the ``model`` asked for, the ``attempt`` number that
    failed (1 for the first request) and the ``error`` class name."""

    status: int | None
    wait: float
    model: str
    attempt: int
    error: str

    @property
    def rate_limited(self) -> bool:
        """True for an HTTP 429 (the server asked the client to slow down)."""
        return self.status == 429


RetryObserver = Callable[[RetryEvent], None]

_OBSERVERS: contextvars.ContextVar[tuple[RetryObserver, ...]] = contextvars.ContextVar(
    "openrouter_registry_retry_observers", default=()
)


@contextmanager
def observe_retries(observer: RetryObserver) -> Iterator[None]:
    """Call ``observer`` with a `RetryEvent` for every retry made in this context (tasks created in
    it included) until the block ends. Observers nest: an inner block adds to the outer ones."""
    token = _OBSERVERS.set((*_OBSERVERS.get(), observer))
    try:
        yield
    finally:
        _OBSERVERS.reset(token)


def add_observer(context: contextvars.Context, observer: RetryObserver) -> None:
    """Add ``observer`` to a copied ``context`` (for ``asyncio.create_task(..., context=context)``)."""
    context.run(lambda: _OBSERVERS.set((*_OBSERVERS.get(), observer)))


def notify_retry(
    status: int | None, wait: float, *, model: str, attempt: int, error: str, listener: RetryObserver | None = None
) -> None:
    """Tell ``listener`` (the one call's own observer) and the observers of the current context that a
    request is about to be retried."""
    observers = _OBSERVERS.get()
    if listener is not None:
        observers = (listener, *observers)
    if not observers:
        return
    event = RetryEvent(status=status, wait=float(wait), model=model, attempt=attempt, error=error)
    for observer in observers:
        try:
            observer(event)
        except Exception:  # an observer's bug must not break the request it observes
            log.warning("a retry observer failed (%r); ignored", observer, exc_info=True)
