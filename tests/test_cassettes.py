"""Success paths of each family replayed from vcrpy cassettes (cassettes/*.yaml).

The cassettes replay with record_mode "none": no network. To re-record them against the real API:

    OPENROUTER_API_KEY=sk-or-v1-... OPENROUTER_RECORD_MODE=all .venv/bin/python -m pytest tests/test_cassettes.py

`Authorization` is filtered out of every recording, and requests match on method, URL and JSON body, so a
change to the request we send fails these tests until the cassette is re-recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import vcr

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.models.modes import MODE_MEMORY

from city import CITY

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
RECORD_MODE = os.environ.get("OPENROUTER_RECORD_MODE", "none")
KEY = os.environ.get("OPENROUTER_API_KEY", "") if RECORD_MODE != "none" else "sk-or-v1-cassette-replay-key"

PROMPT = "Extract the city and country from: 'We landed in Lyon at dawn; France was still asleep.'"

recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode=RECORD_MODE,
    filter_headers=["authorization", "cookie", "set-cookie"],
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    decode_compressed_response=True,
)


def service() -> OpenRouterService:
    settings = Settings.from_env(
        {}, api_key=KEY, http_referer="https://github.com/openrouter-registry", site_name="openrouter-registry tests",
        catalog=False,  # the cassettes hold the chat exchanges only, recorded without the model catalog
    )
    return OpenRouterService(settings, registry=Registry(environ={}))


@pytest.fixture(autouse=True)
def fresh_modes() -> None:
    MODE_MEMORY.clear()


CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "openai/gpt-4o",
        "gpt-4o-json-schema.yaml",
        {"mode": "json_schema", "provider": "OpenAI", "generator": "OpenRouterGPT4O", "plugin": "openrouter_gpt"},
    ),
    (
        "openai/gpt-4o-mini",
        "gpt-4o-mini-json-schema.yaml",
        {"mode": "json_schema", "provider": "Azure", "generator": "OpenRouterGPT4OMini", "plugin": "openrouter_gpt"},
    ),
    (
        "anthropic/claude-3.5-sonnet",
        "claude-3.5-sonnet-prompt-prefill.yaml",
        {"mode": "prompt", "provider": "Anthropic", "generator": "OpenRouterClaude35Sonnet", "plugin": "openrouter_claude"},
    ),
    (
        "meta-llama/llama-3.3-70b-instruct",
        "llama-3.3-70b-json-schema.yaml",
        {"mode": "json_schema", "provider": "DeepInfra", "generator": "OpenRouterLlama33_70B", "plugin": "openrouter_llama"},
    ),
]


@pytest.mark.parametrize(("model", "cassette", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_family_success_path(model: str, cassette: str, expected: dict[str, Any]) -> None:
    with recorder.use_cassette(cassette) as tape:
        async with service() as s:
            g = await s.generate(PROMPT, schema=CITY, model=model, temperature=0)
    assert g.content == {"city": "Lyon", "country": "France"}
    assert {k: getattr(g, k) for k in expected} == expected
    assert g.attempts == 1 and g.generation_id and g.generation_id.startswith("gen-")
    assert g.usage.prompt_tokens > 0 and g.usage.completion_tokens > 0
    assert g.cost is not None and g.cost > 0

    # the request that went out
    (request,) = tape.requests
    assert request.headers["HTTP-Referer"] == "https://github.com/openrouter-registry"
    assert request.headers["X-Title"] == "openrouter-registry tests"
    # the key went out (test_service checks its value on the wire) but the recording never keeps it
    assert "authorization" not in {name.lower() for name in request.headers}

    body = json.loads(request.body)
    assert body["model"] == model and body["temperature"] == 0
    if expected["mode"] == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == CITY
        assert body["response_format"]["json_schema"]["strict"] is True
    else:
        assert "response_format" not in body
        assert body["messages"][-1] == {"role": "assistant", "content": "{"}


def test_no_cassette_holds_a_key() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert "sk-or-v1-" not in text and "Bearer" not in text, path.name
        assert "authorization" not in text.lower(), path.name


async def test_recording_then_replaying_on_this_transport(tmp_path: Path, http_stack: str) -> None:
    """vcrpy patches what each stack sends through (aiohttp's ClientSession, httpx's transport): a
    generation and a stream recorded from the local server replay with the server gone."""
    from openrouter_registry.testing import FakeOpenRouter

    tape_recorder = vcr.VCR(cassette_library_dir=str(tmp_path), filter_headers=["authorization"],
                            match_on=["method", "path", "body"], decode_compressed_response=True)

    async def run(base_url: str, api_key: str) -> tuple[Any, str]:
        settings = Settings.from_env({}, api_key=api_key, base_url=base_url, catalog=False)
        async with OpenRouterService(settings, registry=Registry(environ={})) as s:
            generated = await s.generate(PROMPT, schema=CITY, model="openai/gpt-4o")
            streamed = await s.stream("Say hi", model="openai/gpt-4o").collect()
        return generated.content, streamed

    with FakeOpenRouter() as server:
        server.set_reply("city_country", {"city": "Lyon", "country": "France"})
        with tape_recorder.use_cassette("local.yaml", record_mode="all") as tape:
            recorded = await run(server.base_url, server.api_key)
        assert len(tape.requests) == 2 and len(server.requests) == 2
        base_url, key = server.base_url, server.api_key
    with tape_recorder.use_cassette("local.yaml", record_mode="none") as tape:
        replayed = await run(base_url, key)  # the server is stopped: only the cassette can answer
    assert replayed == recorded == ({"city": "Lyon", "country": "France"},
                                    "Hello from openai/gpt-4o (local OpenRouter test server).")
    assert tape.play_count == 2 and key not in (tmp_path / "local.yaml").read_text()
