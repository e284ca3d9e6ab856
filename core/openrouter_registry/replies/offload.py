"""Run CPU-bound reply handling (the ``parse_structured`` chain and schema validation) off the event
loop when the reply is large, so one big or hostile reply never freezes the other coroutines of
the process (every other conversation of a Parlant server).

Small replies (at most `OFF_LOOP_CHARS` characters: nearly every structured answer) are handled
inline: a worker thread costs more than their parse. Larger ones go to a small dedicated thread pool
(not asyncio's default executor, which also resolves host names for new connections). The parse
itself is linear in the reply's length and bounded by `candidates.MAX_SCAN_CHARS`; while it runs
in a thread, the event loop gets the interpreter back at least every ``sys.getswitchinterval()``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["OFF_LOOP_CHARS", "off_loop", "off_loop_within", "ParseOverrun"]

#: Replies longer than this are parsed and validated on a worker thread.
OFF_LOOP_CHARS = 2_048

P = ParamSpec("P")
T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = min(4, os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openrouter-parse")
        return _pool


class ParseOverrun(Exception):
    """The work `off_loop` ran on a worker thread passed its ``deadline``: abandoned (its thread runs on,
    out of the pool; the next parse gets a fresh worker)."""


def _abandon(pool: ThreadPoolExecutor) -> None:
    """Stop handing work to ``pool`` (one of its workers is stuck): the next parse makes a new pool, so a
    hung parser never holds up the replies of other models."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False)


async def off_loop(size: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)``: inline when ``size`` (the reply's length in characters) is at
    most `OFF_LOOP_CHARS`, else on a worker thread, awaited without blocking the event loop."""
    return await off_loop_within(None, size, functools.partial(function, *args, **kwargs))


async def off_loop_within(deadline: float | None, size: int, work: Callable[[], T]) -> T:
    """`off_loop` of ``work()`` with a ``deadline`` (seconds, None: none) on the worker thread: past it,
    `ParseOverrun` (the thread is abandoned with its pool). Inline work cannot be interrupted; its caller
    times it instead."""
    if size <= OFF_LOOP_CHARS:
        return work()
    loop = asyncio.get_running_loop()
    pool = _executor()
    future = loop.run_in_executor(pool, work)
    if deadline is None:
        return await future
    try:
        return await asyncio.wait_for(future, deadline)
    except TimeoutError:
        _abandon(pool)
        raise ParseOverrun(deadline) from None
