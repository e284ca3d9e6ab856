"""`openrouter_registry.testing`: the local OpenRouter-compatible server and the JSON-Schema instance generator.

Everything goes over loopback HTTP with the standard library (http.client / urllib), as a client would.
"""

from __future__ import annotations

import asyncio
import enum
import http.client
import json
import math
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NamedTuple, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, Field

from openrouter_registry.testing import (
    FakeOpenRouter,
    RecordedRequest,
    Scripted,
    UnsatisfiableSchemaError,
    instance_for,
    price_of,
)
from openrouter_registry.testing.server import PRICES

CHAT = "/api/v1/chat/completions"
EMBEDDINGS = "/api/v1/embeddings"
MODELS = "/api/v1/models"
KEY = "/api/v1/key"
PADDING = "\n         \n\n"
GEN_ID = re.compile(r"^gen-\d{10}-[A-Za-z0-9]{20}$")

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "temperature": {"type": "number"},
        "conditions": {"type": "array", "items": {"type": "string"}},
        "windy": {"type": "boolean"},
    },
    "required": ["city", "temperature", "conditions", "windy"],
    "additionalProperties": False,
}


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def content(self) -> str:
        return str(self.json()["choices"][0]["message"]["content"])


def call(
    server: FakeOpenRouter,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: bool = True,
    authorization: str | None = None,
    raw: bytes | None = None,
    timeout: float = 5.0,
) -> Response:
    """One request with http.client; ``Authorization: Bearer <server key>`` unless told otherwise."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif auth:
        headers["Authorization"] = f"Bearer {server.api_key}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def chat_body(model: str, *, schema: Mapping[str, Any] | None = None, mode: str = "json_schema",
              name: str = "weather", **extra: Any) -> dict[str, Any]:
    """A chat request; ``mode`` json_schema (response_format), json_object (+ schema in the prompt) or prompt."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    body: dict[str, Any] = {"model": model, "messages": messages, **extra}
    if schema is not None:
        if mode == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
        else:
            instruction = f"Answer in JSON.\nJSON Schema:\n{json.dumps(schema)}"
            messages.insert(0, {"role": "system", "content": instruction})
            if mode == "json_object":
                body["response_format"] = {"type": "json_object"}
    return body


def extract_json(text: str) -> Any:
    """What a lenient client does: take the fenced block or the outermost braces, drop trailing commas."""
    fenced = re.search(r"```json\n(.*?)\n```", text, re.S)
    if fenced:
        text = fenced.group(1)
    elif "{" in text:
        text = text[text.index("{"): text.rindex("}") + 1]
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def sse_events(raw: bytes) -> list[str]:
    """The blank-line separated events of an SSE body, in order (comments included)."""
    return [event for event in raw.decode().split("\n\n") if event]


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as fake:
        yield fake


# -- lifecycle and basics ------------------------------------------------------------------------


def test_base_url_api_key_and_idempotent_stop() -> None:
    fake = FakeOpenRouter(api_key="sk-or-v1-custom")
    with pytest.raises(RuntimeError):
        fake.base_url
    fake.start()
    assert fake.start() is fake  # already running: no-op
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", fake.base_url)
    assert fake.api_key == "sk-or-v1-custom"
    port = fake.port
    with urllib.request.urlopen(fake.base_url + "/models", timeout=5) as reply:
        assert reply.status == 200
    fake.stop()
    fake.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert FakeOpenRouter().api_key == "sk-or-v1-local-test-key"


def test_context_manager_records_requests_in_order(server: FakeOpenRouter) -> None:
    call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    call(server, "GET", EMBEDDINGS)
    first, second = server.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, second.method, second.path) == ("POST", CHAT, "GET", EMBEDDINGS)
    assert first.body["model"] == "openai/gpt-4o"
    assert json.loads(first.raw) == first.body
    assert first.headers["content-type"] == "application/json"
    assert all(name == name.lower() for name in first.headers)
    assert first.time <= second.time <= time.monotonic()
    assert second.body is None


def test_authorization_never_shown_in_repr(server: FakeOpenRouter) -> None:
    call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    recorded = server.requests[0]
    assert recorded.headers["authorization"] == f"Bearer {server.api_key}"
    assert server.api_key not in repr(recorded)
    assert "<redacted>" in repr(recorded)
    assert server.api_key not in repr(server)


# -- chat completions: envelope ------------------------------------------------------------------


def test_envelope_like_the_real_api(server: FakeOpenRouter) -> None:
    reply = call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.raw.decode().startswith(PADDING + "{")
    data = reply.json()
    assert GEN_ID.match(data["id"])
    assert reply.headers["x-generation-id"] == data["id"]
    assert (data["provider"], data["model"], data["object"]) == ("OpenAI", "openai/gpt-4o", "chat.completion")
    assert abs(data["created"] - time.time()) < 5
    assert data["system_fingerprint"].startswith("fp_")
    choice = data["choices"][0]
    assert choice == {
        "logprobs": None,
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Hello from openai/gpt-4o (local OpenRouter test server).",
            "refusal": None,
            "reasoning": None,
        },
    }
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] == math.ceil(len("What is the weather in Paris?") / 4)
    assert usage["completion_tokens"] == math.ceil(len(choice["message"]["content"]) / 4)
    prompt_price, completion_price = price_of("openai/gpt-4o")
    assert (prompt_price, completion_price) == (2.5e-6, 1e-5)
    expected = usage["prompt_tokens"] * prompt_price + usage["completion_tokens"] * completion_price
    assert usage["cost"] == pytest.approx(expected)
    assert isinstance(usage["cost"], float)
    assert usage["is_byok"] is False
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0}  # as recorded 2026-04
    assert usage["cost_details"] == {"upstream_inference_cost": None}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}


@pytest.mark.parametrize(
    ("model", "provider", "native", "reported"),
    [
        ("anthropic/claude-3.5-sonnet", "Anthropic", "end_turn", "anthropic/claude-3.5-sonnet"),
        ("meta-llama/llama-3.3-70b-instruct:free", "Meta", "stop", "meta-llama/llama-3.3-70b-instruct"),
        ("google/gemini-pro-1.5", "DeepInfra", "stop", "google/gemini-pro-1.5"),
    ],
)
def test_provider_and_finish_reason_by_family(
    server: FakeOpenRouter, model: str, provider: str, native: str, reported: str
) -> None:
    data = call(server, "POST", CHAT, chat_body(model)).json()
    assert (data["provider"], data["model"]) == (provider, reported)
    assert data["choices"][0]["native_finish_reason"] == native
    assert "system_fingerprint" not in data
    assert data["choices"][0]["message"]["content"] == f"Hello from {reported} (local OpenRouter test server)."


def test_free_variant_costs_nothing(server: FakeOpenRouter) -> None:
    usage = call(server, "POST", CHAT, chat_body("meta-llama/llama-3.3-70b-instruct:free")).json()["usage"]
    assert usage["cost"] == 0.0
    paid = call(server, "POST", CHAT, chat_body("meta-llama/llama-3.3-70b-instruct")).json()["usage"]
    assert paid["cost"] > 0


def test_padding_and_text_reply_are_configurable() -> None:
    with FakeOpenRouter(padding=False, text_reply="Bonjour de {model}") as fake:
        reply = call(fake, "POST", CHAT, chat_body("openai/gpt-4o-mini"))
        assert reply.raw.startswith(b"{")
        assert reply.content == "Bonjour de openai/gpt-4o-mini"
    with FakeOpenRouter(text_reply=lambda model: model.upper()) as fake:
        assert call(fake, "POST", CHAT, chat_body("openai/gpt-4o-mini")).content == "OPENAI/GPT-4O-MINI"


def test_max_tokens_truncates_with_finish_reason_length(server: FakeOpenRouter) -> None:
    full = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER)).content
    data = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER, max_tokens=3)).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == full[:12]
    assert data["usage"]["completion_tokens"] == 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice["message"]["content"])
    anthropic = call(server, "POST", CHAT, chat_body("anthropic/claude-3.5-sonnet", max_tokens=2)).json()
    assert anthropic["choices"][0]["native_finish_reason"] == "max_tokens"
    roomy = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER, max_tokens=4000)).json()
    assert roomy["choices"][0]["finish_reason"] == "stop"


# -- chat completions: structured output ---------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "mode", "check"),
    [
        ("openai/gpt-4o", "json_schema", "compact"),
        ("openai/gpt-4o-mini", "prompt", "compact"),
        ("anthropic/claude-3.5-sonnet", "json_schema", "prose"),
        ("anthropic/claude-3.5-sonnet", "prompt", "prose"),
        ("meta-llama/llama-3.3-70b-instruct", "json_schema", "trailing_comma"),
        ("meta-llama/llama-3.3-70b-instruct", "json_object", "trailing_comma"),
        ("google/gemini-pro-1.5", "json_schema", "compact"),
        ("google/gemini-pro-1.5", "json_object", "compact"),
        ("google/gemini-pro-1.5", "prompt", "fenced"),
    ],
)
def test_family_styles_wrap_a_valid_instance(server: FakeOpenRouter, model: str, mode: str, check: str) -> None:
    content = call(server, "POST", CHAT, chat_body(model, schema=WEATHER, mode=mode)).content
    if check == "compact":
        assert content == json.dumps(json.loads(content), separators=(",", ":"), ensure_ascii=False)
    elif check == "prose":
        assert content.startswith("Here is the extracted information:\n\n```json\n{\n  \"")
        assert content.endswith("\n}\n```\n\nLet me know if you need anything else.")
    elif check == "trailing_comma":
        assert content.startswith("Here is the JSON:\n\n{\n  \"")
        assert content.endswith(",\n}")
        with pytest.raises(json.JSONDecodeError):
            json.loads(content[content.index("{"):])
    else:
        assert content.startswith("```json\n{\n  \"") and content.endswith("\n}\n```")
    value = extract_json(content)
    Draft202012Validator(WEATHER).validate(value)
    assert value["city"] == "example city"
    assert value["conditions"] and all(isinstance(c, str) for c in value["conditions"])


def test_anthropic_prefill_gets_the_continuation_only(server: FakeOpenRouter) -> None:
    body = chat_body("anthropic/claude-3.5-sonnet", schema=WEATHER, mode="prompt")
    body["messages"].append({"role": "assistant", "content": "{"})
    content = call(server, "POST", CHAT, body).content
    assert not content.lstrip().startswith("{")
    assert content.startswith('\n  "city": ')
    value = json.loads("{" + content)
    Draft202012Validator(WEATHER).validate(value)
    # without the prefill, the same request gets prose
    body["messages"].pop()
    assert call(server, "POST", CHAT, body).content.startswith("Here is the extracted information:")


def test_schema_is_taken_from_the_last_marker_in_system_messages(server: FakeOpenRouter) -> None:
    decoy = {"type": "object", "properties": {"decoy": {"type": "integer"}}, "required": ["decoy"]}
    real = {"title": "Person", "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
            "required": ["name", "age"], "additionalProperties": False}
    body = {
        "model": "openai/gpt-4o",
        "messages": [
            {"role": "system", "content": f"Old rules.\nJSON Schema:\n{json.dumps(decoy)}"},
            {"role": "system", "content": [{"type": "text", "text": f"JSON Schema:\n{json.dumps(real)}\nThanks."}]},
            {"role": "user", "content": "Extract: Ann, 30"},
        ],
    }
    value = json.loads(call(server, "POST", CHAT, body).content)
    Draft202012Validator(real).validate(value)
    assert "decoy" not in value and value["age"] >= 18
    server.set_reply("Person", {"name": "Ann", "age": 30})  # the schema's title names it
    assert json.loads(call(server, "POST", CHAT, body).content) == {"name": "Ann", "age": 30}


def test_set_reply_by_schema_name_is_used_as_is(server: FakeOpenRouter) -> None:
    server.set_reply("weather", {"city": "Paris"})  # not even valid: clients must validate
    assert json.loads(call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER)).content) == {"city": "Paris"}
    other = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER, name="forecast")).content
    Draft202012Validator(WEATHER).validate(json.loads(other))
    assert json.loads(other) != {"city": "Paris"}
    llama = call(server, "POST", CHAT, chat_body("meta-llama/llama-3.3-70b-instruct", schema=WEATHER)).content
    assert llama == 'Here is the JSON:\n\n{\n  "city": "Paris",\n}'


def test_a_reply_function_of_two_parameters_reads_the_prompt(server: FakeOpenRouter) -> None:
    seen: list[Any] = []

    def from_prompt(valid: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        seen.append(messages)
        return {**valid, "city": messages[-1]["content"].rsplit(" ", 1)[-1].rstrip("?")}

    server.set_reply("weather", from_prompt)
    value = json.loads(call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER)).content)
    assert value["city"] == "Paris" and isinstance(value["temperature"], (int, float))
    assert seen == [[{"role": "user", "content": "What is the weather in Paris?"}]]
    server.set_reply("weather", lambda valid: {**valid, "city": "Lyon"})  # one parameter: the instance only
    assert json.loads(call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER)).content)["city"] == "Lyon"


def test_the_star_reply_answers_every_schema_without_its_own(server: FakeOpenRouter) -> None:
    server.set_reply("*", lambda valid, messages: {**valid, "city": f"star, {len(messages)} message(s)"})
    server.set_reply("forecast", {"city": "Oslo"})
    weather = json.loads(call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER)).content)
    assert weather["city"] == "star, 1 message(s)"
    Draft202012Validator(WEATHER).validate(weather)
    forecast = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER, name="forecast")).content
    assert json.loads(forecast) == {"city": "Oslo"}  # its own reply wins over "*"
    plain = call(server, "POST", CHAT, chat_body("openai/gpt-4o")).content
    assert "star" not in plain  # a plain-text request has no schema: "*" is not asked


def test_json_object_without_a_schema_still_answers_json(server: FakeOpenRouter) -> None:
    body = chat_body("openai/gpt-4o")
    body["response_format"] = {"type": "json_object"}
    assert json.loads(call(server, "POST", CHAT, body).content) == {
        "response": "Hello from openai/gpt-4o (local OpenRouter test server)."
    }


def test_pydantic_schema_end_to_end(server: FakeOpenRouter) -> None:
    schema = Invoice.model_json_schema()
    body = chat_body("openai/gpt-4o", schema=schema, name="Invoice")
    value = json.loads(call(server, "POST", CHAT, body).content)
    Draft202012Validator(schema).validate(value)
    Invoice.model_validate(value)


# -- refused modes --------------------------------------------------------------------------------


NO_ENDPOINTS_BODY = {
    "error": {
        "message": "No endpoints found that can handle the requested parameters. To learn more about provider "
        "routing, visit: https://openrouter.ai/docs/guides/routing/provider-selection",
        "code": 404,
    },
    "user_id": "user_local",
}
JSON_MODE_BODY = {
    "error": {
        "message": "Provider returned error",
        "code": 400,
        "metadata": {"provider_name": "DeepInfra", "raw": '{"error":"JSON mode is not supported for this model"}'},
    },
    "user_id": "user_local",
}


def test_refused_modes_answer_like_openrouter(server: FakeOpenRouter) -> None:
    model = "mistralai/mixtral-8x7b-instruct"
    schema_reply = call(server, "POST", CHAT, chat_body(model, schema=WEATHER, mode="json_schema"))
    assert (schema_reply.status, schema_reply.json()) == (404, NO_ENDPOINTS_BODY)
    object_reply = call(server, "POST", CHAT, chat_body(f"{model}:nitro", schema=WEATHER, mode="json_object"))
    assert (object_reply.status, object_reply.json()) == (400, JSON_MODE_BODY)
    prompt_reply = call(server, "POST", CHAT, chat_body(model, schema=WEATHER, mode="prompt"))
    assert prompt_reply.status == 200
    assert prompt_reply.content.startswith("```json\n")
    Draft202012Validator(WEATHER).validate(extract_json(prompt_reply.content))


def test_refuse_modes_are_per_model_and_editable() -> None:
    with FakeOpenRouter(refuse_modes={}) as fake:
        assert call(fake, "POST", CHAT, chat_body("mistralai/mixtral-8x7b-instruct", schema=WEATHER)).status == 200
        fake.refuse_modes["acme/model"] = {"json_object"}
        assert call(fake, "POST", CHAT, chat_body("acme/model", schema=WEATHER, mode="json_object")).status == 400
        assert call(fake, "POST", CHAT, chat_body("acme/model", schema=WEATHER, mode="json_schema")).status == 200


def test_fallback_models_skip_a_refusing_model(server: FakeOpenRouter) -> None:
    body = chat_body("mistralai/mixtral-8x7b-instruct", schema=WEATHER, models=["openai/gpt-4o-mini"])
    data = call(server, "POST", CHAT, body).json()
    assert data["model"] == "openai/gpt-4o-mini"
    Draft202012Validator(WEATHER).validate(json.loads(data["choices"][0]["message"]["content"]))


# -- scripts --------------------------------------------------------------------------------------


def test_enqueued_answers_come_first_in_order_then_default_resumes(server: FakeOpenRouter) -> None:
    rate_limited = {"error": {"message": "Rate limit exceeded", "code": 429}}
    server.enqueue(
        Scripted(status=429, json=rate_limited, headers={"Retry-After": "1"}),
        Scripted(status=503, json={"error": {"message": "overloaded", "code": 503}}),
    )
    server.enqueue(Scripted(status=200, body="not json at all", headers={"Content-Type": "text/plain"}))
    assert server.pending == 3
    first = call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    assert (first.status, first.json(), first.headers["retry-after"]) == (429, rate_limited, "1")
    second = call(server, "GET", KEY)  # any path
    assert second.status == 503
    third = call(server, "POST", CHAT, chat_body("openai/gpt-4o"), auth=False)  # scripts skip auth
    assert (third.status, third.raw, third.headers["content-type"]) == (200, b"not json at all", "text/plain")
    fourth = call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    assert fourth.status == 200 and fourth.json()["object"] == "chat.completion"
    assert server.pending == 0
    assert [r.path for r in server.requests] == [CHAT, KEY, CHAT, CHAT]


def test_scripted_body_wins_over_json_and_json_has_no_padding(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json={"a": 1}, body=b"raw"), Scripted(json={"a": 1}))
    assert call(server, "GET", KEY).raw == b"raw"
    reply = call(server, "GET", KEY)
    assert (reply.raw, reply.headers["content-type"]) == (b'{"a": 1}', "application/json")


def test_enqueue_rejects_non_scripts(server: FakeOpenRouter) -> None:
    with pytest.raises(TypeError):
        server.enqueue({"status": 429})  # type: ignore[arg-type]
    assert server.pending == 0


def test_scripted_delay_holds_the_answer(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json={"ok": True}, delay=0.3))
    started = time.monotonic()
    reply = call(server, "GET", KEY)
    assert reply.json() == {"ok": True}
    assert time.monotonic() - started >= 0.3
    server.enqueue(Scripted(json={"late": True}, delay=2.0))
    with pytest.raises(TimeoutError):
        call(server, "GET", KEY, timeout=0.2)
    assert call(server, "GET", KEY).status == 200  # the server is still fine


def test_scripted_close_drops_the_connection(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(close=True))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    assert len(server.requests) == 1
    assert call(server, "POST", CHAT, chat_body("openai/gpt-4o")).status == 200


def test_stop_wakes_a_delayed_answer_and_drops_the_connection() -> None:
    fake = FakeOpenRouter().start()
    fake.enqueue(Scripted(json={"never": "sent"}, delay=30))
    errors: list[BaseException] = []

    def waiting_client() -> None:
        try:
            call(fake, "GET", KEY, timeout=20)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiting_client)
    thread.start()
    while not fake.requests:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert len(errors) == 1


def test_scripted_defaults_to_an_empty_200(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted())
    reply = call(server, "POST", CHAT, chat_body("openai/gpt-4o"))
    assert (reply.status, reply.raw) == (200, b"")
    assert "x-generation-id" not in reply.headers


def test_scripted_sse_pieces_are_sent_verbatim(server: FakeOpenRouter) -> None:
    pieces = [": OPENROUTER PROCESSING\n\n", 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n',
              'data: {"error":{"code":400,"message":"Token limit reached"}}\n\n', "data: [DONE]\n\n"]
    server.enqueue(Scripted(sse=pieces))
    reply = call(server, "POST", CHAT, chat_body("openai/gpt-4o", stream=True))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.raw.decode() == "".join(pieces)


def test_latency_delays_default_answers() -> None:
    with FakeOpenRouter(latency=0.2) as fake:
        started = time.monotonic()
        assert call(fake, "POST", CHAT, chat_body("openai/gpt-4o")).status == 200
        assert time.monotonic() - started >= 0.2


def test_clear_forgets_requests_scripts_and_replies(server: FakeOpenRouter) -> None:
    server.set_reply("weather", {"city": "Paris"})
    server.enqueue(Scripted(status=500))
    call(server, "GET", KEY)
    server.enqueue(Scripted(status=500))
    server.refuse_modes["acme/model"] = {"json_schema"}
    server.clear()
    assert server.requests == [] and server.pending == 0
    reply = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER))
    assert reply.status == 200 and json.loads(reply.content) != {"city": "Paris"}
    assert server.refuse_modes["acme/model"] == {"json_schema"}  # not part of clear()


# -- streaming ------------------------------------------------------------------------------------


def test_stream_shape(server: FakeOpenRouter) -> None:
    reply = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=WEATHER, stream=True))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    events = sse_events(reply.raw)
    assert events[:2] == [": OPENROUTER PROCESSING", ": OPENROUTER PROCESSING"]
    assert events[-1] == "data: [DONE]"
    data_events = [e for e in events if e.startswith("data: ")]
    comments = [i for i, e in enumerate(events) if e.startswith(":")]
    assert len(comments) == 3 and comments[2] > 2  # one more keep-alive between two chunks
    assert all(e.startswith((":", "data: ")) for e in events)
    chunks = [json.loads(e[len("data: "):]) for e in data_events[:-1]]
    ids = {c["id"] for c in chunks}
    assert ids == {reply.headers["x-generation-id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "openai/gpt-4o" for c in chunks)
    content_chunks, finish, usage_chunk = chunks[:-2], chunks[-2], chunks[-1]
    assert all(len(c["choices"][0]["delta"]["content"]) <= 8 for c in content_chunks)
    assert all(c["choices"][0]["finish_reason"] is None for c in content_chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    Draft202012Validator(WEATHER).validate(json.loads(text))
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["delta"].get("content", "") == ""
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == math.ceil(len(text) / 4)
    assert usage["cost"] > 0
    assert "usage" not in finish


def test_stream_pieces_arrive_separately(server: FakeOpenRouter) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = json.dumps(chat_body("openai/gpt-4o", stream=True))
    conn.request("POST", CHAT, body=body, headers={"Authorization": f"Bearer {server.api_key}"})
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    first = response.read1(65536)
    assert first == b": OPENROUTER PROCESSING\n\n"  # not the whole stream at once
    rest = response.read()
    conn.close()
    assert rest.endswith(b"data: [DONE]\n\n")


# -- other endpoints ------------------------------------------------------------------------------


def test_embeddings_dimensions_unit_norm_and_determinism(server: FakeOpenRouter) -> None:
    texts = ["Ruby", "Python", "JavaScript"]
    reply = call(server, "POST", EMBEDDINGS, {"model": "openai/text-embedding-3-small", "input": texts})
    assert reply.status == 200 and reply.raw.decode().startswith(PADDING)
    data = reply.json()
    assert data["object"] == "list" and data["provider"] == "OpenAI"
    assert data["id"].startswith("gen-emb-")
    assert [d["index"] for d in data["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 1536 for d in data["data"])
    for item in data["data"]:
        assert math.fsum(v * v for v in item["embedding"]) == pytest.approx(1.0)
    vectors = [d["embedding"] for d in data["data"]]
    assert vectors[0] != vectors[1]
    tokens = sum(math.ceil(len(t) / 4) for t in texts)  # 1 + 2 + 3
    assert data["usage"]["prompt_tokens"] == tokens == data["usage"]["total_tokens"]
    assert data["usage"]["cost"] == pytest.approx(tokens * 2e-8)
    with FakeOpenRouter() as other:  # deterministic across servers and calls
        again = call(other, "POST", EMBEDDINGS, {"model": "openai/text-embedding-3-small", "input": "Python"}).json()
    assert again["data"][0]["embedding"] == vectors[1]


@pytest.mark.parametrize(
    ("model", "dimensions", "expected"),
    [
        ("openai/text-embedding-3-large", None, 3072),
        ("openai/text-embedding-3-small", None, 1536),
        ("acme/embedder", None, 1024),
        ("openai/text-embedding-3-large", 256, 256),
    ],
)
def test_embedding_lengths(server: FakeOpenRouter, model: str, dimensions: int | None, expected: int) -> None:
    body: dict[str, Any] = {"model": model, "input": "hello"}
    if dimensions is not None:
        body["dimensions"] = dimensions
    data = call(server, "POST", EMBEDDINGS, body).json()
    assert len(data["data"][0]["embedding"]) == expected


def test_models_list(server: FakeOpenRouter) -> None:
    reply = call(server, "GET", MODELS, auth=False)  # public, like the real endpoint
    assert reply.status == 200
    models = {m["id"]: m for m in reply.json()["data"]}
    assert set(models) == {
        "openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet", "anthropic/claude-3.5-haiku",
        "meta-llama/llama-3.3-70b-instruct", "mistralai/mixtral-8x7b-instruct", "google/gemini-pro-1.5",
    }
    gpt = models["openai/gpt-4o"]
    assert gpt["pricing"]["prompt"] == "0.0000025" and gpt["pricing"]["completion"] == "0.00001"
    assert gpt["context_length"] == 128_000
    assert gpt["top_provider"] == {"context_length": 128_000, "max_completion_tokens": 16_384, "is_moderated": True}
    assert {"tokenizer", "instruct_type", "modality"} <= set(gpt["architecture"])
    assert "structured_outputs" in gpt["supported_parameters"]
    assert "response_format" not in models["mistralai/mixtral-8x7b-instruct"]["supported_parameters"]
    filtered = call(server, "GET", MODELS + "?supported_parameters=structured_outputs").json()["data"]
    assert {m["id"] for m in filtered} == {
        "openai/gpt-4o", "openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct", "google/gemini-pro-1.5"
    }
    server.refuse_modes["openai/gpt-4o"] = {"json_schema"}
    filtered = call(server, "GET", MODELS + "?supported_parameters=structured_outputs").json()["data"]
    assert "openai/gpt-4o" not in {m["id"] for m in filtered}
    assert server.catalog_requests[1].query == "supported_parameters=structured_outputs"
    assert server.requests == []  # catalog fetches are kept apart from the generation path's requests


def test_models_are_priced_as_billed(server: FakeOpenRouter) -> None:
    """Every chat model the server bills is listed, at the price it bills."""
    from decimal import Decimal

    listed = {m["id"]: m["pricing"] for m in call(server, "GET", MODELS).json()["data"]}
    for model, (prompt, completion) in PRICES.items():
        if "embedding" in model:
            continue
        assert Decimal(listed[model]["prompt"]) == Decimal(str(prompt)), model
        assert Decimal(listed[model]["completion"]) == Decimal(str(completion)), model


def test_catalog_answer_is_not_taken_from_the_script_queue(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(status=503, json={"error": {"message": "down", "code": 503}}))
    assert call(server, "GET", MODELS).status == 200
    assert server.pending == 1  # the scripted answer still waits for the generation path
    server.catalog_answer = Scripted(status=500, json={"error": {"message": "boom", "code": 500}})
    assert call(server, "GET", MODELS).status == 500 and call(server, "GET", MODELS).status == 500
    assert len(server.catalog_requests) == 3


def test_generation_lookup(server: FakeOpenRouter) -> None:
    data = call(server, "POST", CHAT, chat_body("openai/gpt-4o")).json()
    stats = call(server, "GET", f"/api/v1/generation?id={data['id']}").json()["data"]
    assert stats["total_cost"] == data["usage"]["cost"]
    assert (stats["tokens_prompt"], stats["tokens_completion"]) == (
        data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"])
    assert call(server, "GET", "/api/v1/generation?id=gen-unknown").status == 404


# -- errors ---------------------------------------------------------------------------------------


def test_missing_authorization_is_401(server: FakeOpenRouter) -> None:
    reply = call(server, "POST", CHAT, chat_body("openai/gpt-4o"), auth=False)
    assert (reply.status, reply.json()) == (401, {"error": {"message": "Missing Authentication header", "code": 401}})
    assert len(server.requests) == 1 and "authorization" not in server.requests[0].headers


@pytest.mark.parametrize("authorization", ["Bearer invalid-key", "Basic c2stb3ItdjEtbG9jYWw=", "sk-or-v1-local-test-key"])
def test_wrong_key_is_401(server: FakeOpenRouter, authorization: str) -> None:
    for path, body in ((CHAT, chat_body("openai/gpt-4o")), (EMBEDDINGS, {"model": "x/y", "input": "a"})):
        reply = call(server, "POST", path, body, authorization=authorization)
        assert (reply.status, reply.json()) == (401, {"error": {"message": "No auth credentials found", "code": 401}})
    assert len(server.requests) == 2


def test_malformed_json_unknown_path_and_wrong_method(server: FakeOpenRouter) -> None:
    bad = call(server, "POST", CHAT, raw=b'{"model": "openai/gpt-4o", ')
    assert (bad.status, bad.json()) == (400, {"error": {"message": "Invalid JSON body", "code": 400}})
    assert server.requests[0].body is None and server.requests[0].raw == b'{"model": "openai/gpt-4o", '
    missing = call(server, "GET", "/api/v1/nothing-here")
    assert missing.status == 404 and missing.json()["error"]["code"] == 404
    wrong = call(server, "GET", CHAT)
    assert wrong.status == 405
    no_messages = call(server, "POST", CHAT, {"model": "openai/gpt-4o"})
    assert no_messages.status == 400


# -- concurrency and async ------------------------------------------------------------------------


def test_concurrent_requests_are_all_recorded(server: FakeOpenRouter) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        status = call(server, "POST", CHAT, chat_body("openai/gpt-4o-mini", user=f"u{i}")).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 20
    assert sorted(r.body["user"] for r in server.requests) == sorted(f"u{i}" for i in range(20))


async def test_usable_from_async_code() -> None:
    async with FakeOpenRouter() as fake:
        reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
        payload = json.dumps(chat_body("openai/gpt-4o")).encode()
        writer.write(
            b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {fake.api_key}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body)["model"] == "openai/gpt-4o"
    assert len(fake.requests) == 1


# -- instance generator ---------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class LineItem(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
    quantity: int = Field(ge=1, le=100)
    unit_price: float = Field(gt=0, multiple_of=0.01)


class Invoice(BaseModel):
    number: str
    kind: Literal["sale", "refund"]
    color: Color
    issued: str = Field(json_schema_extra={"format": "date"})
    customer_email: Optional[str] = None
    lines: list[LineItem] = Field(min_length=2)
    notes: Optional[list[str]] = None
    parent: Optional["Invoice"] = None


SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    ("string bounds", {"type": "string", "minLength": 20, "maxLength": 22}),
    ("formats", {"type": "object", "properties": {
        f: {"type": "string", "format": f} for f in ("date-time", "date", "email", "uri", "uuid")}}),
    ("pattern", {"type": "string", "pattern": r"^[a-z]+-\d{2,3}(x|y)$"}),
    ("enum and const", {"type": "object", "properties": {"e": {"enum": ["a", 2, None]}, "c": {"const": {"k": [1]}}}}),
    ("type list", {"type": ["null", "integer"], "minimum": 3, "maximum": 3}),
    ("integer bounds", {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 13, "multipleOf": 3}),
    ("number bounds", {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.1}),
    ("float multipleOf", {"type": "number", "minimum": 0.2, "maximum": 0.9, "multipleOf": 0.1}),
    ("integer with float step", {"type": "integer", "multipleOf": 2.5, "minimum": 1}),
    ("arrays", {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}],
                "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}),
    ("unique", {"type": "array", "items": {"enum": ["x", "y", "z"]}, "uniqueItems": True, "minItems": 3}),
    ("unique objects", {"type": "array", "uniqueItems": True, "minItems": 3,
                        "items": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}),
    ("contains", {"type": "array", "items": {"type": "integer"}, "contains": {"const": 7}, "maxItems": 1}),
    ("oneOf overlap", {"oneOf": [{"type": "integer"}, {"type": "number"}]}),
    ("anyOf nullable", {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}),
    ("allOf merge", {"allOf": [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {"properties": {"b": {"type": "integer", "minimum": 5}}, "required": ["b"]}]}),
    ("definitions ref", {"definitions": {"P": {"type": "object", "properties": {"x": {"type": "number"}}}},
                         "type": "array", "items": {"$ref": "#/definitions/P"}}),
    ("recursive", {"$defs": {"Node": {"type": "object", "properties": {
        "value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
        "required": ["value", "next"]}}, "$ref": "#/$defs/Node"}),
    ("min properties", {"type": "object", "minProperties": 2, "additionalProperties": {"type": "boolean"}}),
    ("not", {"type": "integer", "not": {"const": 1}}),
    ("pydantic", Invoice.model_json_schema()),
]


@pytest.mark.parametrize(("label", "schema"), SCHEMAS, ids=[label for label, _ in SCHEMAS])
def test_instance_for_validates(label: str, schema: dict[str, Any]) -> None:
    value = instance_for(schema)
    Draft202012Validator(schema).validate(value)
    assert instance_for(schema) == value  # deterministic


def test_instance_for_pydantic_model_reads_like_an_answer() -> None:
    schema = Invoice.model_json_schema()
    assert schema["$ref"] == "#/$defs/Invoice"  # recursive: pydantic puts the model itself in $defs
    assert '"$ref": "#/$defs/LineItem"' in json.dumps(schema["$defs"]["Invoice"]["properties"]["lines"])
    value = instance_for(schema)
    invoice = Invoice.model_validate(value)
    assert invoice.number == "example number"
    assert invoice.kind == "sale" and invoice.color is Color.RED
    assert invoice.customer_email == "example customer_email"  # optional fields are filled too
    assert len(invoice.lines) == 2 and invoice.lines[0] != invoice.lines[1]
    assert re.fullmatch(r"[A-Z]{3}-\d{4}", invoice.lines[0].sku)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", invoice.issued)
    assert invoice.parent is not None and invoice.parent.parent is None  # recursion stops


def test_instance_for_placeholders_and_formats() -> None:
    value = instance_for(SCHEMAS[1][1])
    assert value["email"] == "user@example.com"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value["uuid"])
    assert value["date-time"].endswith("Z") and value["uri"].startswith("https://")
    assert instance_for({"type": "object", "properties": {"city": {"type": "string"}}}) == {"city": "example city"}
    assert instance_for({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == 1
    assert instance_for({"type": "string"}, name="title") == "example title"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 5, "maximum": 4},
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "object", "required": ["a"], "properties": {"a": False}},
        {"$defs": {"L": {"type": "object", "properties": {"n": {"$ref": "#/$defs/L"}}, "required": ["n"]}},
         "$ref": "#/$defs/L"},
        {"type": "not-a-type"},
        {"type": "string", "pattern": "(unclosed"},
    ],
)
def test_instance_for_reports_unsatisfiable_schemas(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsatisfiableSchemaError):
        instance_for(schema)


def test_unsatisfiable_schema_gets_an_empty_object_from_the_server(server: FakeOpenRouter) -> None:
    schema = {"type": "integer", "minimum": 5, "maximum": 4}
    assert call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=schema)).content == "{}"


# hypothesis: random simple schemas (always satisfiable by construction) -> the instance validates

_NAMES = st.sampled_from(["name", "city", "age", "tags", "id", "score", "kind", "note"])
_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-50, 50), st.text(max_size=5))


@st.composite
def _strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    low = draw(st.integers(0, 30))
    if draw(st.booleans()):
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 10))
    if draw(st.booleans()):
        schema["format"] = draw(st.sampled_from(["date-time", "date", "email", "uri", "uuid"]))
    return schema


@st.composite
def _numbers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict[str, Any] = {"type": kind}
    step = draw(st.sampled_from([None, 1, 2, 3, 5, 7, 0.5, 0.25]))
    low = draw(st.integers(-1000, 1000))
    span = draw(st.integers(0, 100)) + (math.ceil(step) * 2 if step else 2)
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = low + span
    if step is not None:
        schema["multipleOf"] = step
    return schema


_LEAVES = st.one_of(
    _strings(),
    _numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(_JSON_SCALARS, min_size=1, max_size=4).map(lambda values: {"enum": values}),
    _JSON_SCALARS.map(lambda value: {"const": value}),
    st.just({}),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.builds(
        lambda props, required, closed: {
            "type": "object",
            "properties": props,
            "required": [k for k in props if k in required],
            "additionalProperties": not closed,
        },
        st.dictionaries(_NAMES, children, max_size=4),
        st.sets(_NAMES),
        st.booleans(),
    )
    arrays = st.builds(
        lambda items, low, extra: {"type": "array", "items": items, "minItems": low, "maxItems": low + extra},
        children, st.integers(0, 3), st.integers(0, 2),
    )
    nullable = children.map(lambda child: {"anyOf": [child, {"type": "null"}]})
    any_of = st.lists(children, min_size=1, max_size=3).map(lambda branches: {"anyOf": branches})
    one_of = st.sampled_from(["string", "boolean", "null", "array", "object"]).flatmap(
        lambda first: children.map(lambda child: {"oneOf": [{"type": first}, {"not": {"type": first}, **child}]})
    )
    return st.one_of(objects, arrays, nullable, any_of, one_of)


_PLAIN_SCHEMAS = st.recursive(_LEAVES, _extend, max_leaves=10)


@st.composite
def _random_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """A random schema whose nodes may be $refs to definitions under the root's $defs or definitions."""
    defs = draw(st.dictionaries(st.sampled_from(["A", "B", "C"]), _PLAIN_SCHEMAS, max_size=3))
    where = draw(st.sampled_from(["$defs", "definitions"]))
    refs = [{"$ref": f"#/{where}/{name}"} for name in defs]
    leaves = st.one_of(_LEAVES, st.sampled_from(refs)) if refs else _LEAVES
    schema = dict(draw(st.recursive(leaves, _extend, max_leaves=10)))
    if defs:
        schema[where] = defs
    return schema


RANDOM_SCHEMAS = _random_schemas()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RANDOM_SCHEMAS)
def test_instance_for_random_schemas(schema: dict[str, Any]) -> None:
    value = instance_for(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert errors == [], (schema, value)


def test_the_response_format_schema_is_billed_as_prompt_tokens(server: FakeOpenRouter) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string", "description": "x" * 400}},
              "required": ["city"], "additionalProperties": False}
    with_schema = call(server, "POST", CHAT, chat_body("openai/gpt-4o", schema=schema)).json()["usage"]
    plain = call(server, "POST", CHAT, chat_body("openai/gpt-4o")).json()["usage"]
    assert with_schema["prompt_tokens"] - plain["prompt_tokens"] >= 100  # the 400-character description counts
    assert with_schema["cost"] > plain["cost"]


def test_a_schema_in_a_user_message_is_answered_when_no_system_message_has_one(server: FakeOpenRouter) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    body = {"model": "openai/gpt-4o", "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": f"Which city?\nJSON Schema:\n{json.dumps(schema)}"}]}
    reply = json.loads(call(server, "POST", CHAT, body).content)
    assert set(reply) == {"city"} and isinstance(reply["city"], str)

