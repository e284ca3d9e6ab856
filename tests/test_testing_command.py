"""The test kit for plugin and app tests: ``python -m openrouter_registry.testing`` starts the local
server from a shell, `Scripted.stream` scripts a streamed reply, and the server's request lists say
which requests each holds (``all_requests``: every one, the catalog's GET included)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.plugin import FakeOpenRouter, Scripted

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}


def start(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "openrouter_registry.testing", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    base_url = process.stdout.readline().rstrip("\n")
    api_key = process.stdout.readline().rstrip("\n")
    return process, base_url, api_key


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_each_family_in_its_style_and_stops_cleanly(stop: signal.Signals) -> None:
    process, base_url, api_key = start("--api-key", "sk-or-v1-shell-key")
    try:
        assert base_url.startswith("OPENROUTER_BASE_URL=http://127.0.0.1:") and base_url.endswith("/api/v1")
        assert api_key == "OPENROUTER_API_KEY=sk-or-v1-shell-key"
        settings = Settings.from_env(
            {}, base_url=base_url.split("=", 1)[1], api_key=api_key.split("=", 1)[1], max_attempts=1
        )

        async def ask() -> Any:
            async with OpenRouterService(settings, registry=Registry(environ={})) as service:
                return await service.generate("Where is the Louvre?", schema=CITY, model="anthropic/claude-3.5-sonnet")

        result = asyncio.run(ask())
        assert isinstance(result.content, dict) and set(result.content) == {"city"}
        assert result.text.lstrip().startswith('"city"')  # Claude's style: it continues the plugin's "{" prefill
        assert (result.provider, result.parser) == ("Anthropic", "openrouter_claude")
        assert result.cost is not None and result.cost > 0
    finally:
        process.send_signal(stop)
        code = process.wait(timeout=20)
    assert code == 0
    assert process.stderr is not None and process.stderr.read().splitlines()[-1] == "stopped"


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "openrouter_registry.testing", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"python -m openrouter_registry.testing: cannot listen on 127.0.0.1:{port}: ")
    assert len(done.stderr.splitlines()) == 1


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as fake:
        yield fake


def test_a_scripted_stream_is_read_like_a_real_one(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted.stream("Bonjour, voici la réponse.", model="acme/writer-1", provider="Acme"))
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)

    async def read() -> Any:
        async with OpenRouterService(settings, registry=Registry(environ={})) as service:
            stream = service.stream("Bonjour", model="acme/writer-1")
            deltas = [delta async for delta in stream]
            return stream, deltas

    stream, deltas = asyncio.run(read())
    assert "".join(deltas) == stream.text == "Bonjour, voici la réponse." and len(deltas) > 1
    assert (stream.model, stream.provider, stream.finish_reason, stream.attempts) == ("acme/writer-1", "Acme", "stop", 1)
    assert stream.usage.completion_tokens > 0 and stream.cost is not None and stream.cost > 0
    assert stream.generation_id is not None and stream.generation_id.startswith("gen-")
    (request,) = server.requests
    assert request.body["stream"] is True and server.pending == 0


def test_every_request_is_recorded_and_each_list_says_which(server: FakeOpenRouter) -> None:
    server.set_reply("response", {"city": "Paris"})
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)  # the catalog is on

    async def ask() -> Any:
        async with OpenRouterService(settings, registry=Registry(environ={})) as service:
            return await service.generate("Where is the Louvre?", schema=CITY, model="openai/gpt-4o")

    assert asyncio.run(ask()).content == {"city": "Paris"}
    assert [(r.method, r.path) for r in server.all_requests] == [
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/chat/completions"),
    ]
    assert [r.path for r in server.catalog_requests] == ["/api/v1/models"]
    assert [r.path for r in server.requests] == ["/api/v1/chat/completions"]
    server.clear()
    assert server.all_requests == server.requests == server.catalog_requests == []
