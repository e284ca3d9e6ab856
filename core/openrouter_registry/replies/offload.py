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

__all__ = ["OFF_LOOP_CHARS", "off_loop"]

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


async def off_loop(size: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)``: inline when ``size`` (the reply's length in characters) is at
    most `OFF_LOOP_CHARS`, else on a worker thread, awaited without blocking the event loop."""
    if size <= OFF_LOOP_CHARS:
        return function(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(function, *args, **kwargs))
