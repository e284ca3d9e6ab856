"""Run CPU-bound reply handling (the ``parse_structured`` chain and schema validation) off the event
loop when the reply is large, so one big or hostile reply never freezes the other coroutines of
the process (every other conversation of a Parlant server); and hold every plugin parser to a deadline.

Small replies (at most `OFF_LOOP_CHARS` characters: nearly every structured answer) are handled
inline: a worker thread costs more than their parse. Larger ones go to a small dedicated thread pool
(not asyncio's default executor, which also resolves host names for new connections). The parse
itself is linear in the reply's length and bounded by `candidates.MAX_SCAN_CHARS`; while it runs
in a thread, the event loop gets the interpreter back at least every ``sys.getswitchinterval()``.

The deadline (`off_loop_within`): a watched parse reports each parser as it starts in its ``running``
list. One daemon thread, the watchdog, looks at the watched parses every `WATCH_POLL` seconds while
any runs, and interrupts one whose current parser (not one of the ``spare`` ones, the core's) has
run past the deadline: ``PyThreadState_SetAsyncExc`` raises `_Interrupted` in the parsing thread (the
event loop's for an inline parse) at its next bytecode boundary, and the parse ends with
`ParseOverrun` naming that parser. Arming costs one small object and a lock (no thread, no timer).
A parser blocked in C (``time.sleep``, a lock, a C extension) gets the interrupt only when it comes
back to Python: inline, the loop waits that long; on a worker thread the wait ends at the deadline
and the thread is abandoned with its pool.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["OFF_LOOP_CHARS", "WATCH_POLL", "off_loop", "off_loop_within", "ParseOverrun"]

#: Replies longer than this are parsed and validated on a worker thread.
OFF_LOOP_CHARS = 2_048
#: Seconds between two looks of the watchdog at the running parses: a parser is interrupted between
#: its deadline and the deadline plus this (plus a thread switch, ``sys.getswitchinterval()``).
WATCH_POLL = 0.02

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
    """A watched parse passed its ``deadline``. ``plugin``: the parser the watchdog interrupted, or None
    when a worker thread did not answer in time (it was abandoned, with its pool: its thread runs on,
    the next parse gets a fresh worker)."""

    def __init__(self, deadline: float, plugin: str | None = None) -> None:
        super().__init__(deadline)
        self.deadline = deadline
        self.plugin = plugin


class _Interrupted(BaseException):
    """What the watchdog raises in a thread whose watched parser passed its deadline. A BaseException, so
    a plugin's ``except Exception`` (and the registry's isolation of failed hooks) lets it through."""


def _abandon(pool: ThreadPoolExecutor) -> None:
    """Stop handing work to ``pool`` (one of its workers is stuck): the next parse makes a new pool, so a
    hung parser never holds up the replies of other models."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False)


# --- the watchdog -------------------------------------------------------------------------------
#
# Every thread that parses has one `_Watch`, made on its first watched parse and reused: arming and
# disarming are attribute stores, no lock, no allocation. The watchdog scans the watches under
# `_watch_lock` with `_scanning` set and sends at most one `_Interrupted` per parse
# (``PyThreadState_SetAsyncExc``). The parsing thread never takes a lock after its work started: an
# asynchronous exception can be raised at any bytecode boundary, also right after a lock was acquired
# and before the ``with`` that would release it, which would leak the lock (a deadlock at the next
# parse). Instead `_quiesce` clears ``armed``, waits (lock-free) for a scan in progress to end, and when
# this parse was blamed but the interrupt did not arrive in the work, swaps it for a `_Drain` it raises
# in itself at once. That delivery is the only clean way to consume an interrupt: clearing it with
# ``SetAsyncExc(id, NULL)`` leaves the interpreter's "asynchronous exception pending" flag set for
# good (CPython 3.11 signals on a clear too, and only a delivery unsignals), so every thread after it
# runs the slow eval-breaker path at every check, and a thread with a trace or profile function
# (coverage, a debugger, cProfile) spins at its next call forever. (Order matters and the GIL makes
# these stores and loads sequentially consistent: `_quiesce` clears ``armed`` and only then reads
# `_scanning`, then ``blamed``; the watchdog sets `_scanning` before it reads ``armed``, and ``blamed``
# before it sends the interrupt.)


class _Watch:
    """The watched parses of one thread: its current (parser, start time) list, deadline and spared
    parsers while ``armed``, and the parser it was interrupted in (``blamed``, set by the watchdog)."""

    __slots__ = ("ident", "thread", "armed", "deadline", "running", "spare", "blamed", "received")

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.thread = threading.current_thread()
        self.armed = False
        self.deadline = 0.0
        self.running: list[tuple[str, float]] = []
        self.spare: Collection[str] = ()
        self.blamed: str | None = None
        self.received = False  # whether this parse's interrupt (or the `_Drain` in its place) was raised


_watch_lock = threading.Lock()  # held by the watchdog while it scans, and by `_register` (before a parse)
_wake = threading.Condition(threading.Lock())  # the dozing watchdog waits on it
_local = threading.local()
_all: list[_Watch] = []  # one per live thread that parsed (replaced, never mutated in place)
_watchdog: threading.Thread | None = None
_scanning = False
_dozing = False
#: Scans that found nothing armed before the watchdog waits to be woken (one second of quiet).
_DOZE_AFTER = 50


def _set_async_exc(thread: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None)


def _scan(now: float) -> bool:
    """Interrupt each armed parse whose current parser passed its deadline; whether any was armed."""
    global _scanning
    busy = False
    with _watch_lock:
        _scanning = True
        try:
            for watch in _all:
                if not watch.armed:
                    continue
                busy = True
                running = watch.running
                if watch.blamed is not None or not running:
                    continue
                name, started = running[-1]
                if now - started > watch.deadline and name not in watch.spare:
                    watch.blamed = name  # one interrupt per parse: see `_watched`
                    _set_async_exc(watch.ident, _Interrupted)
        finally:
            _scanning = False
    return busy


def _watch_loop() -> None:
    global _dozing
    quiet = 0
    while True:
        time.sleep(WATCH_POLL)
        quiet = 0 if _scan(time.monotonic()) else quiet + 1
        if quiet < _DOZE_AFTER:
            continue
        with _wake:
            _dozing = True  # before the check: an arm after it sees the flag and wakes us
            if not any(watch.armed for watch in _all):
                _wake.wait()  # woken by an arm: back to scanning (that parse may be over by now, and
            _dozing = False  # waiting again would make every later arm wake us: a thread switch per parse)
        quiet = 0


def _register() -> _Watch:
    """This thread's watch, made on its first watched parse (and the watchdog, on the first of all)."""
    global _all, _watchdog
    watch = _Watch()
    with _watch_lock:
        _all = [w for w in _all if w.thread.is_alive()] + [watch]
        if _watchdog is None:
            _watchdog = threading.Thread(target=_watch_loop, name="openrouter-parse-watchdog", daemon=True)
            _watchdog.start()
    _local.watch = watch
    return watch


def _rouse() -> None:
    with _wake:
        _wake.notify()


class _Drain(BaseException):
    """What `_quiesce` raises in its own thread in place of an interrupt that came too late for the work."""


#: How long `_quiesce` waits for the watchdog's scan to end, and for the `_Drain` it sent itself.
_QUIESCE_LIMIT = 1.0


def _quiesce(watch: _Watch) -> None:
    """Stop watching this thread's parse; when the watchdog is scanning, wait for the scan to end; when
    it blamed this parse and the interrupt was not yet raised (``watch.received``), raise a `_Drain` in
    place of it. An `_Interrupted` or `_Drain` can come out of any line here: the caller catches them
    and calls again (``received`` says which came). After a return nothing is pending for this thread."""
    watch.armed = False
    give_up = time.monotonic() + _QUIESCE_LIMIT
    while _scanning and time.monotonic() < give_up:
        time.sleep(0)
    if watch.blamed is None or watch.received:
        return
    _set_async_exc(watch.ident, _Drain)  # replaces a pending interrupt, or is the only one
    give_up = time.monotonic() + _QUIESCE_LIMIT
    while time.monotonic() < give_up:  # raised at the loop's next check: within a few bytecodes
        pass
    watch.received = True  # not raised (cannot happen on CPython): stop waiting for it
    _set_async_exc(watch.ident, None)


def _watched(deadline: float, running: list[tuple[str, float]], spare: Collection[str], work: Callable[[], T]) -> T:
    """``work()``, its parsers (as it reports them in ``running``) held to ``deadline`` except the
    ``spare`` ones; `ParseOverrun` when the watchdog interrupted it.

    The watchdog sends at most one interrupt per parse. It is raised inside ``work()``, or after it
    (a parse that ended as the watchdog looked), or not at all when the parser swallowed it
    (``except BaseException``); `_quiesce` sees to the last two (see the watchdog's notes above). When
    `_watched` returns or raises, no interrupt for this parse can be pending, so none escapes into
    unrelated code. A parser that swallows it runs on and is accounted when it returns, like one
    blocked in C."""
    watch: _Watch | None = getattr(_local, "watch", None)
    if watch is None:
        watch = _register()
    watch.running, watch.deadline, watch.spare, watch.blamed, watch.received = running, deadline, spare, None, False
    watch.armed = True
    if _dozing:
        _rouse()
    returned = False
    try:
        value = work()
        returned = True  # also when the parser swallowed the interrupt: its value stands
    except _Interrupted:
        watch.received = True
    while True:
        try:
            watch.armed = False  # `_quiesce`'s first step, inlined: it runs after every parse
            if _scanning or watch.blamed is not None:
                _quiesce(watch)
            break
        except (_Interrupted, _Drain):
            watch.received = True
    if not returned:
        raise ParseOverrun(deadline, watch.blamed)
    return value


def _after_fork() -> None:  # the child has no watchdog thread, and a lock may have been held at the fork
    global _watch_lock, _wake, _local, _all, _watchdog, _scanning, _dozing
    _watch_lock, _wake, _local = threading.Lock(), threading.Condition(threading.Lock()), threading.local()
    _all, _watchdog, _scanning, _dozing = [], None, False, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# --- entry points --------------------------------------------------------------------------------


async def off_loop(size: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)``: inline when ``size`` (the reply's length in characters) is at
    most `OFF_LOOP_CHARS`, else on a worker thread, awaited without blocking the event loop."""
    return await off_loop_within(None, size, functools.partial(function, *args, **kwargs))


async def off_loop_within(
    deadline: float | None,
    size: int,
    work: Callable[[], T],
    *,
    running: list[tuple[str, float]] | None = None,
    spare: Collection[str] = (),
    thread: bool = False,
) -> T:
    """`off_loop` of ``work()`` (on a worker thread also when ``thread``) with a ``deadline`` (seconds,
    None: none) for each parser ``work`` reports in ``running`` as it starts, except the ``spare`` ones:
    the watchdog interrupts one that passes it, inline or on the worker, and `ParseOverrun` names it.
    On the worker, the wait itself ends at the deadline plus two `WATCH_POLL` (the watchdog's turn, then
    a parser blocked in C): `ParseOverrun` without a name, the thread is abandoned with its pool."""
    if size <= OFF_LOOP_CHARS and not thread:
        if deadline is None or running is None:
            return work()
        return _watched(deadline, running, spare, work)
    loop = asyncio.get_running_loop()
    pool = _executor()
    if deadline is None:
        return await loop.run_in_executor(pool, work)
    if running is not None:
        work = functools.partial(_watched, deadline, running, spare, work)
    future = loop.run_in_executor(pool, work)
    try:
        return await asyncio.wait_for(future, deadline + 2 * WATCH_POLL)
    except TimeoutError:
        _abandon(pool)
        raise ParseOverrun(deadline) from None
