"""The transport's bounds, on each HTTP stack (conftest's ``http_stack``): the pool (its size, waiting
for it, running out of it), deadlines against servers that drip, size caps (gzip bomb included), SSE
line splitting, cancellation soaks, and one service used from several event loops and threads."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import os
import random
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry
from openrouter_registry.replies.decode import InvalidResponseError, decode_chunk
from openrouter_registry.errors import PoolTimeoutError, TimeoutError
from openrouter_registry.settings import Settings
from openrouter_registry.http.sselines import LineSplitter
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.http.transport import Transport

MODEL = "openai/gpt-4o"
CHAT = "/chat/completions"
BODY: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}]}
FAST = 0.01
DONE = "data: [DONE]\n\n"


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as s:
        yield s


def settings_for(base_url: str, api_key: str = "sk-or-v1-limits-test", **overrides: Any) -> Settings:
    return Settings.from_env({}, api_key=api_key, base_url=base_url, **overrides)


def auth(server: FakeOpenRouter) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def chunk_line(text: str) -> str:
    data = {"id": "gen-1", "model": MODEL, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return "data: " + json.dumps(data, ensure_ascii=False)


# --- pool --------------------------------------------------------------------------------------------


async def test_running_out_of_pool_is_a_pool_timeout_not_retried(server: FakeOpenRouter) -> None:
    settings = settings_for(server.base_url, server.api_key, max_connections=1, timeout=0.5)
    async with Transport(settings, base_delay=FAST) as transport:
        async with transport.stream_data(CHAT, BODY, auth(server), model=MODEL) as stream:
            await stream.__anext__()  # open: it holds the only connection until closed
            started = time.monotonic()
            with pytest.raises(PoolTimeoutError) as info:
                await transport.post_json(CHAT, BODY, auth(server), model=MODEL)
            waited = time.monotonic() - started
        assert 0.45 <= waited < 1.5  # the wait counted against OPENROUTER_TIMEOUT, once
        error = info.value
        assert isinstance(error, TimeoutError) and error.attempts == 1
        assert "local connection pool was exhausted" in str(error) and "OPENROUTER_MAX_CONNECTIONS" in str(error)
        assert "No answer from OpenRouter" not in str(error)
        assert len(server.requests) == 1  # nothing else was sent
        data, attempts = await transport.post_json(CHAT, BODY, auth(server), model=MODEL)  # free again
        assert attempts == 1 and "choices" in data


async def test_requests_beyond_the_pool_wait_and_reuse_its_connections() -> None:
    with FakeOpenRouter(latency=0.05) as server:
        settings = settings_for(server.base_url, server.api_key, max_connections=3, timeout=5)
        async with Transport(settings, base_delay=FAST) as transport:
            results = await asyncio.gather(*[
                transport.post_json(CHAT, BODY, auth(server), model=MODEL) for _ in range(24)
            ])
        assert [attempts for _, attempts in results] == [1] * 24
        assert len({request.connection for request in server.requests}) <= 3  # kept alive, reused


# --- deadlines ------------------------------------------------------------------------------------------


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts a local asyncio server with the given connection handler and returns its base URL; every
    server started is closed after the test."""
    servers: list[asyncio.Server] = []

    async def start(handle: Handler) -> str:
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/api/v1"

    yield start
    for srv in servers:
        srv.close()


@pytest.fixture
def drip(raw_server: Callable[[Handler], Awaitable[str]]) -> Callable[[bytes, bytes, float], Awaitable[str]]:
    """A local server that sends ``head`` at once, then ``piece`` every ``every`` seconds for ever."""

    async def start(head: bytes, piece: bytes, every: float) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(head)
                while True:
                    await writer.drain()
                    await asyncio.sleep(every)
                    writer.write(piece)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        return await raw_server(handle)

    return start


async def test_a_dripping_body_ends_within_attempts_times_timeout(drip: Any) -> None:
    base_url = await drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
                          b" ", 0.05)
    async with Transport(settings_for(base_url, timeout=0.6, max_attempts=3), base_delay=FAST, max_delay=0.02) as t:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await t.post_json(CHAT, BODY, {}, model=MODEL)
        elapsed = time.monotonic() - started
    assert info.value.attempts == 3 and "within 0.6s" in str(info.value)
    assert 1.8 <= elapsed < 3 * 0.6 + 3 * 0.02 + 1.0  # attempts x timeout + backoff (+ scheduling slack)


async def test_keep_alive_comments_alone_hit_the_idle_limit(drip: Any) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: OPENROUTER PROCESSING\n\n"
    base_url = await drip(head, b": OPENROUTER PROCESSING\n\n", 0.05)
    settings = settings_for(base_url, timeout=5, stream_idle_timeout=0.4)
    async with Transport(settings, base_delay=FAST) as transport:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="sent no data for 0.4s .OPENROUTER_STREAM_IDLE_TIMEOUT") as info:
            async for _ in transport.stream_data(CHAT, BODY, {}, model=MODEL):
                pass
        elapsed = time.monotonic() - started
    assert 0.35 <= elapsed < 2.0 and info.value.attempts == 1


async def test_a_stream_that_keeps_sending_data_hits_the_total_limit(drip: Any) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    base_url = await drip(head, (chunk_line("tick") + "\n\n").encode(), 0.05)
    settings = settings_for(base_url, timeout=5, stream_idle_timeout=0.5, stream_timeout=0.8)
    texts: list[str] = []
    async with Transport(settings, base_delay=FAST) as transport:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="did not end within 0.8s .OPENROUTER_STREAM_TIMEOUT"):
            async for raw in transport.stream_data(CHAT, BODY, {}, model=MODEL):
                texts.append(decode_chunk(raw).text)
        elapsed = time.monotonic() - started
    assert 0.75 <= elapsed < 2.5 and len(texts) >= 5 and set(texts) == {"tick"}  # data flowed, then the cap


@pytest.fixture
def broken(raw_server: Callable[[Handler], Awaitable[str]]) -> Callable[[bytes], Awaitable[str]]:
    """A local server that answers every request with ``answer`` and then resets the connection."""

    async def start(answer: bytes) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.transport.abort()  # a reset, not an orderly close

        return await raw_server(handle)

    return start


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"choices\": [",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"choices\": [",
        b"HTTP/1.1 200 OK\r\nContent-Len",
        b"",
    ],
    ids=["truncated-length", "truncated-chunked", "truncated-headers", "reset"],
)
async def test_truncated_bodies_and_resets_are_connection_errors_after_retries(broken: Any, answer: bytes) -> None:
    from openrouter_registry.errors import ConnectionError

    base_url = await broken(answer)
    async with Transport(settings_for(base_url, timeout=5, max_attempts=2), base_delay=FAST) as transport:
        with pytest.raises(ConnectionError, match="Could not reach OpenRouter at 127.0.0.1") as info:
            await transport.post_json(CHAT, BODY, {}, model=MODEL)
    assert info.value.attempts == 2 and info.value.__context__ is None


async def test_a_stream_cut_mid_event_is_a_connection_error(broken: Any) -> None:
    from openrouter_registry.errors import ConnectionError

    base_url = await broken(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + b"%x\r\n%s\r\n" % (len(chunk_line("a")) + 2, (chunk_line("a") + "\n\n").encode()))
    texts: list[str] = []
    async with Transport(settings_for(base_url, timeout=5), base_delay=FAST) as transport:
        with pytest.raises(ConnectionError) as info:
            async for raw in transport.stream_data(CHAT, BODY, {}, model=MODEL):
                texts.append(decode_chunk(raw).text)
    assert texts == ["a"] and info.value.attempts == 1  # what came is kept; never retried once open


# --- size caps ----------------------------------------------------------------------------------------


async def test_a_body_over_the_cap_is_invalid_and_not_kept(server: FakeOpenRouter) -> None:
    big = json.dumps({"choices": [], "pad": "x" * 5000})
    server.enqueue(*[Scripted(body=big)] * 2)
    settings = settings_for(server.base_url, server.api_key, max_response_bytes=4096, max_attempts=2)
    async with Transport(settings, base_delay=FAST) as transport:
        with pytest.raises(InvalidResponseError, match="larger than 4096 bytes") as info:
            await transport.post_json(CHAT, BODY, auth(server), model=MODEL)
        assert info.value.attempts == 2
        server.enqueue(Scripted(body=json.dumps({"choices": [], "pad": "x" * 3000})))
        data, _ = await transport.post_json(CHAT, BODY, auth(server), model=MODEL)  # under the cap: fine
    assert len(data["pad"]) == 3000


async def test_a_gzip_bomb_is_refused_with_bounded_memory(server: FakeOpenRouter) -> None:
    bomb = gzip.compress(b"{" + b" " * (200 * 1024 * 1024), compresslevel=9)  # 200 MB behind ~200 kB
    server.enqueue(Scripted(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}))
    settings = settings_for(server.base_url, server.api_key, max_response_bytes=1024 * 1024, max_attempts=1)
    async with Transport(settings, base_delay=FAST) as transport:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidResponseError, match="larger than 1048576 bytes"):
                await transport.post_json(CHAT, BODY, auth(server), model=MODEL)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 100 * 1024 * 1024  # never the 200 MB
        data, _ = await transport.post_json(CHAT, BODY, auth(server), model=MODEL)  # the pool still works
    assert "choices" in data


async def test_a_stream_line_over_the_cap_is_invalid(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(sse=[chunk_line("y" * 3000) + "\n\n", DONE]))
    settings = settings_for(server.base_url, server.api_key, max_response_bytes=2048)
    async with Transport(settings, base_delay=FAST) as transport:
        with pytest.raises(InvalidResponseError, match="longer than 2048 bytes"):
            async for _ in transport.stream_data(CHAT, BODY, auth(server), model=MODEL):
                pass


# --- SSE line splitting -----------------------------------------------------------------------------------


async def test_unicode_line_separators_inside_deltas_arrive_intact(server: FakeOpenRouter) -> None:
    texts = ["a\u2028b", "c\u2029d", "e\u0085f", "g\x1ch\x1di\x1ej\x0bk\x0cl"]
    server.enqueue(Scripted(sse=[chunk_line(text) + "\n\n" for text in texts] + [DONE]))
    async with Transport(settings_for(server.base_url, server.api_key), base_delay=FAST) as transport:
        got = [decode_chunk(raw).text async for raw in transport.stream_data(CHAT, BODY, auth(server), model=MODEL)]
    assert got == texts


async def test_cr_and_crlf_end_lines_even_across_pieces(server: FakeOpenRouter) -> None:
    first, second = chunk_line("one"), chunk_line("two")
    server.enqueue(Scripted(sse=[first + "\r", "\r", ": comment\r\n", "\r\n" + second[:9], second[9:] + "\r\n\r\n", DONE]))
    async with Transport(settings_for(server.base_url, server.api_key), base_delay=FAST) as transport:
        got = [decode_chunk(raw).text async for raw in transport.stream_data(CHAT, BODY, auth(server), model=MODEL)]
    assert got == ["one", "two"]


def test_line_splitter_follows_the_sse_specification() -> None:
    splitter = LineSplitter(64)
    assert splitter.feed(b"a\rb\nc\r") == ["a", "b", "c"]
    assert splitter.feed(b"\nd") == []  # the LF of a CRLF split across pieces ends nothing more
    assert splitter.feed("\u2028e\u0085\r\n".encode()) == ["d\u2028e\u0085"]
    assert splitter.feed(b"tail") == [] and splitter.flush() == ["tail"]
    with pytest.raises(InvalidResponseError, match="longer than 64 bytes"):
        LineSplitter(64).feed(b"x" * 65)
    with pytest.raises(InvalidResponseError, match="not UTF-8"):
        LineSplitter(64).feed(b"\xff\n")


# --- cancellation -------------------------------------------------------------------------------------------


def open_sockets() -> int:
    """Sockets this process holds (Linux); -1 where /proc is not available."""
    fds = "/proc/self/fd"
    if not os.path.isdir(fds):
        return -1
    count = 0
    for name in os.listdir(fds):
        try:
            count += os.readlink(os.path.join(fds, name)).startswith("socket:")
        except OSError:
            pass
    return count


def settle(baseline: int) -> int:
    """Open sockets once the local server's threads have closed their ends (polled for up to 10 s: a
    margin for a loaded 2-core machine, where those threads may wait a while for a core)."""
    for _ in range(200):
        gc.collect()
        now = open_sockets()
        if now <= baseline:
            return now
        time.sleep(0.05)
    return open_sockets()


async def test_random_cancellations_leak_no_connection() -> None:
    rng = random.Random(5)
    with FakeOpenRouter(latency=0.004) as server:
        baseline = open_sockets()
        settings = settings_for(server.base_url, server.api_key, max_connections=8, timeout=3)
        service = OpenRouterService(settings, registry=Registry(environ={}))

        async def generate() -> None:
            await service.generate("hi")

        async def stream() -> None:
            await service.stream("hi").collect()

        # Rounds of 8 calls, each cancelled at a random moment, until 600 were cancelled mid-way. How many
        # finish first depends on the machine's load, so the test runs rounds until it has its 600
        # cancellations (at most 600 rounds) instead of counting on a share of a fixed number of rounds.
        cancelled = rounds = 0
        while cancelled < 600 and rounds < 600:
            rounds += 1
            tasks = [asyncio.create_task(rng.choice((generate, stream))()) for _ in range(8)]
            await asyncio.sleep(rng.uniform(0, 0.012))
            for task in tasks:
                cancelled += task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert cancelled >= 600, f"only {cancelled} of {8 * rounds} calls were cancelled mid-way"

        pool = service.transport._pool()
        assert pool.gate._value == 8  # every slot came back
        # The pool works at once: 16 calls take milliseconds, a leaked connection would make them wait for
        # the 3 s timeout. A loaded machine can stall one measurement, so it is retried (3 tries); a real
        # leak is slow every time.
        took = []
        for _ in range(3):
            started = time.monotonic()
            results = await asyncio.gather(*[service.generate("hi") for _ in range(16)])
            assert all(r.text for r in results)
            took.append(time.monotonic() - started)
            if took[-1] < 2.0:
                break
        assert min(took) < 2.0, took
        await service.aclose()
        if baseline >= 0:
            assert settle(baseline) <= baseline  # no socket left open


async def test_a_thousand_cancellations_in_a_row_leave_no_socket() -> None:
    with FakeOpenRouter(latency=0.5) as server:
        baseline = open_sockets()
        settings = settings_for(server.base_url, server.api_key, max_connections=4, timeout=3)
        async with Transport(settings, base_delay=FAST) as transport:
            for i in range(1000):
                task = asyncio.create_task(transport.post_json(CHAT, BODY, auth(server), model=MODEL))
                await asyncio.sleep(0 if i % 2 else 0.001)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert transport._pool().gate._value == 4
        if baseline >= 0:
            assert settle(baseline) <= baseline


# --- several event loops and threads ---------------------------------------------------------------------------


def test_one_service_from_several_threads_keeps_one_client_per_loop(server: FakeOpenRouter) -> None:
    service = OpenRouterService(settings_for(server.base_url, server.api_key), registry=Registry(environ={}))
    baseline = open_sockets()
    ready, release = threading.Barrier(4), threading.Event()
    clients: list[int] = []
    failures: list[BaseException] = []

    def worker() -> None:
        async def run() -> None:
            for _ in range(3):
                await service.generate("hi")
            clients.append(id(service.transport.client))
            ready.wait()
            while not release.is_set():  # the loop stays alive (its client open) until the main thread closed it
                await asyncio.sleep(0.01)

        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    ready.wait()
    assert len(service.transport._pools) == 3 and len(set(clients)) == 3  # one client per loop
    asyncio.run(service.aclose())  # closes the three clients, in their own loops
    release.set()
    for thread in threads:
        thread.join()
    assert not failures and service.transport._pools == {}
    asyncio.run(service.aclose())  # again, every loop gone: still no error
    for _ in range(2):  # and the service still works, across asyncio.run calls
        assert asyncio.run(service.generate("hi")).text
    asyncio.run(service.aclose())
    if baseline >= 0:
        assert settle(baseline) <= baseline


# --- import cost ----------------------------------------------------------------------------------------------


def test_aiohttp_and_orjson_load_on_first_request_not_on_import(server: FakeOpenRouter, http_stack: str) -> None:
    code = (
        "import asyncio, sys\n"
        "import openrouter_registry\n"
        "assert 'aiohttp' not in sys.modules and 'orjson' not in sys.modules, 'imported by the package'\n"
        "from openrouter_registry.http.transport import Transport\n"
        "from openrouter_registry.settings import Settings\n"
        "assert 'aiohttp' not in sys.modules, 'imported by the transport module'\n"
        f"settings = Settings.from_env({{}}, api_key={server.api_key!r}, base_url={server.base_url!r}, transport={http_stack!r})\n"
        "async def main():\n"
        "    async with Transport(settings) as t:\n"
        "        await t.post_json('/chat/completions', {'model': 'openai/gpt-4o', 'messages': [{'role': 'user', 'content': 'hi'}]},\n"
        f"                          {{'Authorization': 'Bearer {server.api_key}'}}, model='openai/gpt-4o')\n"
        "asyncio.run(main())\n"
        "assert 'orjson' in sys.modules  # the request body's encoder, on every stack\n"
        "print('aiohttp' in sys.modules)\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(http_stack == "aiohttp")  # loaded by the first aiohttp request only


async def test_requests_go_straight_to_the_stack_unless_a_proxy_is_configured(
    server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrouter_registry.http.backends import make_client

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_for(server.base_url, server.api_key)
    client, direct = make_client(settings)
    assert direct is client._transport  # the client's own transport, called without the client's machinery
    await client.aclose()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    client, direct = make_client(settings)
    assert direct is None  # the client routes through the proxy (and honours NO_PROXY)
    await client.aclose()


async def test_certificates_are_loaded_once_per_process_and_never_for_plain_http(
    server: FakeOpenRouter, http_stack: str
) -> None:
    from openrouter_registry.http import backends
    from openrouter_registry.http.transport import Transport

    backends.ssl_context.cache_clear()
    settings = Settings.from_env({}, api_key=server.api_key, base_url=server.base_url, transport=http_stack)
    async with Transport(settings) as transport:
        await transport.post_json("/chat/completions", {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                                  {"Authorization": f"Bearer {server.api_key}"}, model="openai/gpt-4o")
    # the default stack loads no CA bundle for a local http server; plain httpx makes its pool with the shared one
    assert backends.ssl_context.cache_info().currsize == (1 if http_stack == "httpx" else 0)
    secure = Settings.from_env({}, api_key=server.api_key, base_url="https://openrouter.ai/api/v1", transport=http_stack)
    first, _ = backends.make_client(secure)
    second, _ = backends.make_client(secure)
    try:
        if http_stack == "aiohttp":
            sessions = [client._transport._open() for client in (first, second)]  # type: ignore[attr-defined]
            try:
                assert sessions[0].connector._ssl is sessions[1].connector._ssl is backends.ssl_context()
            finally:
                for session in sessions:
                    await session.close()
        assert backends.ssl_context.cache_info().currsize == 1  # one context, whatever the number of pools
    finally:
        await first.aclose()
        await second.aclose()
