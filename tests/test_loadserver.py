"""The fast local load server (`openrouter_registry.testing.loadserver`): it answers like OpenRouter,
its structured replies validate against the request's schema (also through our whole generate
path), it streams, and it rate-limits exactly every Nth request with a Retry-After."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.testing.loadserver import LoadServer

from city import CITY

NESTED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2},
        "score": {"type": "number", "minimum": 10, "maximum": 11},
        "when": {"type": "string", "format": "date"},
    },
    "required": ["name", "tags", "score", "when"],
    "additionalProperties": False,
}


def chat(schema: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "Extract the data."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}},
        **extra,
    }


@pytest.fixture(scope="module")
def server() -> Iterator[LoadServer]:
    with LoadServer() as s:
        yield s


def client(server: LoadServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key or server.api_key}"})


@pytest.mark.parametrize(("schema", "name"), [(CITY, "city_country"), (NESTED, "nested")])
def test_reply_is_real_shaped_and_valid_for_the_schema(server: LoadServer, schema: dict[str, Any], name: str) -> None:
    with client(server) as c:
        first, second = (c.post("/chat/completions", json=chat(schema, name)) for _ in range(2))
    for response in (first, second):
        assert response.status_code == 200
        assert response.text.startswith("\n") and response.text.lstrip().startswith("{")  # keep-alive padding
        body = response.json()
        assert body["id"].startswith("gen-") and response.headers["x-generation-id"] == body["id"]
        assert (body["model"], body["provider"], body["object"]) == ("openai/gpt-4o-mini", "OpenAI", "chat.completion")
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0 and usage["cost"] > 0
        (choice,) = body["choices"]
        assert choice["finish_reason"] == "stop"
        jsonschema.validate(json.loads(choice["message"]["content"]), schema)
    assert first.json()["id"] != second.json()["id"]


def test_stream_is_sse_with_a_usage_chunk_and_done(server: LoadServer) -> None:
    with client(server) as c:
        response = c.post("/chat/completions", json=chat(CITY, "city_country", stream=True))
    assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
    assert response.text.startswith(": OPENROUTER PROCESSING\n\n")
    events = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    jsonschema.validate(json.loads(text), CITY)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] > 0


def test_embeddings_models_and_errors(server: LoadServer) -> None:
    with client(server) as c:
        embedded = c.post("/embeddings", json={"model": "openai/text-embedding-3-small", "input": ["a", "b"]})
        models = c.get("/models")
        missing = c.get("/nowhere")
        bad_json = c.post("/chat/completions", content=b"{", headers={"Content-Type": "application/json"})
    with client(server, key="sk-or-v1-wrong") as c:
        unauthorized = c.post("/chat/completions", json=chat(CITY, "city_country"))
    assert embedded.status_code == 200
    assert [len(d["embedding"]) for d in embedded.json()["data"]] == [1536, 1536]
    assert "openai/gpt-4o-mini" in [m["id"] for m in models.json()["data"]]
    assert (missing.status_code, bad_json.status_code, unauthorized.status_code) == (404, 400, 401)
    assert unauthorized.json()["error"] == {"message": "No auth credentials found", "code": 401}


def test_rate_limits_every_nth_request_with_retry_after() -> None:
    with LoadServer(rate_limit_every=3, retry_after=2) as server, client(server) as c:
        statuses = []
        for _ in range(9):
            response = c.post("/chat/completions", json=chat(CITY, "city_country"))
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["retry-after"] == "2"
                assert response.json()["error"]["code"] == 429
    assert statuses == [200, 200, 429] * 3


def test_latency_delays_each_answer_without_serializing_them() -> None:
    import asyncio
    import time

    async def many(server: LoadServer) -> tuple[list[int], float]:
        async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"},
                                     limits=httpx.Limits(max_connections=50)) as c:
            start = time.perf_counter()
            responses = await asyncio.gather(*(c.post("/chat/completions", json=chat(CITY, "city_country"))
                                               for _ in range(50)))
            return [r.status_code for r in responses], time.perf_counter() - start

    with LoadServer(latency=0.3) as server:
        statuses, elapsed = asyncio.run(many(server))
    assert statuses == [200] * 50
    # 50 answers each 0.3 s late, all waiting at once: one latency, not fifty (generous bound)
    assert 0.3 <= elapsed < 0.3 * 10


@pytest.mark.parametrize(("model", "mode"), [("openai/gpt-4o-mini", "json_schema"), ("anthropic/claude-3.5-sonnet", "prompt")])
async def test_our_generate_path_accepts_its_replies(server: LoadServer, model: str, mode: str) -> None:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        result = await service.generate("Extract the data.", schema=NESTED, model=model)
        streamed = [piece async for piece in service.stream("Say hello.", model="openai/gpt-4o-mini")]
    jsonschema.validate(result.content, NESTED)
    assert (result.mode, result.attempts) == (mode, 1) and result.cost is not None and result.cost > 0
    assert "Hello from openai/gpt-4o-mini" in "".join(str(p) for p in streamed)


def test_not_imported_by_the_package() -> None:
    import subprocess

    code = "import openrouter_registry, sys; print('openrouter_registry.testing.loadserver' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
