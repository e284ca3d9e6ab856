"""`LoopThread`: the event loop behind the synchronous client (`NLPServices.openrouter_sync`).

Every sync call runs its coroutine on one event loop that lives on a daemon thread of its own and
blocks the caller until it is done. So a sync call works the same from a plain script, from many
threads at once (they share the loop, hence one connection pool), and from code that already runs
an event loop, such as a Jupyter cell or an async framework's handler: ``asyncio.run`` would raise
``RuntimeError`` there, a call into another thread's loop does not. The loop starts on the first
call; `close` (or the interpreter's exit) stops it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ..errors import ConfigurationError

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """One event loop on a daemon thread, started on first use; `run` a coroutine on it from any thread."""

    def __init__(self, name: str = "openrouter-registry-sync") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._thread is not None else "not started"
        return f"LoopThread({self._name!r}, {state})"

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise ConfigurationError("this sync client is closed: create a new one with NLPServices.openrouter_sync()")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=self._name, daemon=True)
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run the coroutine ``make()`` builds on the loop thread and return its result (or raise its
        error) in the calling thread. ``make`` is called on the loop thread, so whatever it creates
        belongs to that loop. Ctrl-C in the caller cancels the coroutine."""
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            raise ConfigurationError(
                "a sync call was made from inside the sync client's own event loop (from an async callback): "
                "use the async service (NLPServices.openrouter) there"
            )

        async def call() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C (or any interruption of the wait): the coroutine stops too
            raise

    def iterate(self, source: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
        """The items of the async iterator ``source()`` (built on the loop thread), one blocking step
        each. Leaving the loop early (``break``, an error) closes the async iterator, releasing what it holds."""
        holder: list[AsyncIterator[T]] = []

        async def step() -> tuple[bool, T | None]:
            if not holder:
                holder.append(source())
            try:
                return True, await holder[0].__anext__()
            except StopAsyncIteration:
                return False, None

        finished = False
        try:
            while True:
                more, item = self.run(step)
                if not more:
                    finished = True
                    return
                yield item  # type: ignore[misc]  # an item whenever ``more``
        finally:
            if not finished and holder and not self._closed:
                close = getattr(holder[0], "aclose", None)
                if close is not None:
                    self.run(close)

    def close(self, last: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``last()`` on the loop (e.g. closing the service's connection pool), then stop the loop
        and its thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if last is not None and thread is not threading.current_thread():
            try:
                asyncio.run_coroutine_threadsafe(last(), loop).result(timeout=10)
            except Exception:  # closing must not fail: the pool goes with the loop anyway
                pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
