"""Retry observers: code that wants to know each time the transport is about to retry a request.

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

import attrs

__all__ = ["RetryEvent", "RetryObserver", "observe_retries", "notify_retry"]

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


def notify_retry(status: int | None, wait: float, *, model: str, attempt: int, error: str) -> None:
    """Tell the observers of the current context that a request is about to be retried."""
    observers = _OBSERVERS.get()
    if not observers:
        return
    event = RetryEvent(status=status, wait=float(wait), model=model, attempt=attempt, error=error)
    for observer in observers:
        try:
            observer(event)
        except Exception:  # an observer's bug must not break the request it observes
            log.warning("a retry observer failed (%r); ignored", observer, exc_info=True)
