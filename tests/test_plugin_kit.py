"""The plugin author's test kit: `Scripted.chat` scripts a whole chat.completion reply in one line, and
what it builds goes through the real generation path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Registry, Settings, TruncatedOutputError
from openrouter_registry.testing import FakeOpenRouter, Scripted, price_of

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


def test_chat_builds_a_whole_reply() -> None:
    script = Scripted.chat(content={"city": "Paris", "tags": ["é"]}, model="acme/writer-1")
    body: Any = script.json
    assert (script.status, body["object"], body["model"]) == (200, "chat.completion", "acme/writer-1")
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": '{"city":"Paris","tags":["é"]}', "refusal": None, "reasoning": None}
    assert choice["finish_reason"] == "stop"
    assert body["id"].startswith("gen-") and script.headers["X-Generation-Id"] == body["id"]
    prompt, completion = price_of("acme/writer-1")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["cost"] == round(usage["prompt_tokens"] * prompt + usage["completion_tokens"] * completion, 12)
    assert Scripted.chat(content="plain text").json["choices"][0]["message"]["content"] == "plain text"
    json.dumps(body)  # serializable as is


async def test_a_scripted_reply_goes_through_the_generation_path() -> None:
    with FakeOpenRouter() as server:
        server.enqueue(
            Scripted.chat(content={"city": "Lyon"}, model="openai/gpt-4o", usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "cost": 0.5}),
            Scripted.chat(content='{"city": "Ly', model="openai/gpt-4o", finish_reason="length"),
        )
        settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key)
        async with OpenRouterService(settings, registry=Registry(environ={})) as service:
            result = await service.generate("Where?", schema=CITY, model="openai/gpt-4o")
            with pytest.raises(TruncatedOutputError):
                await service.generate("Where?", schema=CITY, model="openai/gpt-4o")
        assert len(server.requests) == 2
    assert result.content == {"city": "Lyon"}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.cost) == (7, 3, 0.5)
