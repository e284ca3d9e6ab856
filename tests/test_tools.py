"""Tool calls, reasoning and usage details: decoded from OpenRouter's real reply shapes, asked for with
``tools=`` / ``reasoning=``, sent back with ``assistant_message()`` / ``tool_message()``, and streamed,
against the local server on 127.0.0.1 (never the network)."""

from __future__ import annotations

from decimal import Decimal

import copy
import dataclasses
import json
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import pydantic
import pytest

from openrouter_registry import (
    ConfigurationError,
    OpenRouterService,
    Registry,
    Settings,
    StructuredOutputError,
    ToolCall,
    tool_message,
)
from openrouter_registry.replies.decode import InvalidResponseError, decode_chat, decode_chunk
from openrouter_registry.result import Usage
from openrouter_registry.schemas.tools import check_tools
from openrouter_registry.testing import FakeOpenRouter, Scripted

# --- real reply bodies (recordings of other projects; ids and texts as recorded) --------------------

#: raix__llama-3.3-8b-free-parallel-tool-calls (2025-06): three parallel calls, uuid ids, content "".
PARALLEL = {
    "id": "gen-1749065400-Z33udWegU7uCygjixl0o", "provider": "Meta", "model": "meta-llama/llama-3.3-8b-instruct:free",
    "object": "chat.completion", "created": 1749065400,
    "choices": [{"logprobs": None, "finish_reason": "tool_calls", "native_finish_reason": "tool_calls", "index": 0,
                 "message": {"role": "assistant", "content": "", "refusal": None, "reasoning": None, "tool_calls": [
                     {"index": 0, "type": "function", "id": "4a146981-cfb9-45cf-8566-4e6c5b692bdd",
                      "function": {"name": "check_weather", "arguments": "{\"location\":\"New York\"}"}},
                     {"index": 1, "type": "function", "id": "7a6e229a-83f8-497e-93f3-d8cb6c6aa5da",
                      "function": {"name": "check_weather", "arguments": "{\"location\":\"Los Angeles\"}"}},
                     {"index": 2, "type": "function", "id": "e30fe3e1-f96e-431b-97ab-9a2659b3788c",
                      "function": {"name": "check_weather", "arguments": "{\"location\":\"Chicago\"}"}}]}}],
    "usage": {"prompt_tokens": 212, "completion_tokens": 22, "total_tokens": 234},
}

#: A Claude reply through OpenRouter: content null, a toolu_bdrk_ id, signed reasoning, cache writes.
CLAUDE_TOOL = {
    "id": "gen-1757000000-abc", "provider": "Amazon Bedrock", "model": "anthropic/claude-sonnet-4",
    "object": "chat.completion", "created": 1757000000,
    "choices": [{"finish_reason": "tool_calls", "native_finish_reason": "tool_use", "index": 0, "message": {
        "role": "assistant", "content": None, "refusal": None,
        "reasoning": "The user wants the weather; I call the tool.",
        "reasoning_details": [{"type": "reasoning.text", "text": "The user wants the weather; I call the tool.",
                               "signature": "EqQBCkgIBxABGAIiQL5", "format": "anthropic-claude-v1", "index": 0}],
        "tool_calls": [{"id": "toolu_bdrk_01XyZ", "index": 0, "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}}],
    "usage": {"prompt_tokens": 1400, "completion_tokens": 90, "total_tokens": 1490, "cost": 0.0056, "is_byok": False,
              "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1200, "audio_tokens": 0},
              "cost_details": {"upstream_inference_cost": None, "upstream_inference_prompt_cost": 0.0042},
              "completion_tokens_details": {"reasoning_tokens": 120}},
}


def test_a_reply_of_only_tool_calls_keeps_every_call_and_says_tool_calls() -> None:
    reply = decode_chat(PARALLEL)
    assert reply.text == "" and reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("4a146981-cfb9-45cf-8566-4e6c5b692bdd", "check_weather", {"location": "New York"}),
        ("7a6e229a-83f8-497e-93f3-d8cb6c6aa5da", "check_weather", {"location": "Los Angeles"}),
        ("e30fe3e1-f96e-431b-97ab-9a2659b3788c", "check_weather", {"location": "Chicago"}),
    ]
    assert reply.tool_calls[1].arguments_text == '{"location":"Los Angeles"}'


def test_reasoning_details_and_usage_details_are_kept_as_received() -> None:
    reply = decode_chat(CLAUDE_TOOL)
    assert reply.reasoning == "The user wants the weather; I call the tool."
    assert list(reply.reasoning_details) == CLAUDE_TOOL["choices"][0]["message"]["reasoning_details"]
    assert reply.tool_calls == (ToolCall("toolu_bdrk_01XyZ", "get_weather", {"city": "Paris"}, '{"city": "Paris"}'),)
    usage = reply.usage
    assert (usage.cache_write_tokens, usage.reasoning_tokens, usage.is_byok) == (1200, 120, False)
    assert usage.cost_details == {"upstream_inference_cost": None, "upstream_inference_prompt_cost": 0.0042}
    assert usage.to_dict()["cache_write_tokens"] == 1200
    summed = usage + usage
    assert summed.cache_write_tokens == 2400 and summed.cost_details["upstream_inference_prompt_cost"] == 0.0084


@pytest.mark.parametrize("call_id", ["call_abc123", "toolu_bdrk_01A", "functions.add:0", "add:0", "0123456789abcdef" * 2])
def test_tool_call_ids_of_every_form_are_kept(call_id: str) -> None:
    body = copy.deepcopy(CLAUDE_TOOL)
    body["choices"][0]["message"]["tool_calls"][0]["id"] = call_id
    assert decode_chat(body).tool_calls[0].id == call_id


def test_malformed_arguments_are_repaired_locally_and_empty_ones_are_an_empty_object() -> None:
    body = copy.deepcopy(CLAUDE_TOOL)
    calls = body["choices"][0]["message"]["tool_calls"]
    calls[0]["function"]["arguments"] = "{'city': 'Paris',}"
    calls.append({"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": ""}})
    first, second = decode_chat(body).tool_calls
    assert first.arguments == {"city": "Paris"} and first.arguments_text == "{'city': 'Paris',}"
    assert second.arguments == {} and second.arguments_text == ""


def test_a_think_block_in_the_content_moves_to_reasoning() -> None:
    body = copy.deepcopy(PARALLEL)
    message = body["choices"][0]["message"]
    del message["tool_calls"]
    message["content"] = "<think>Two plus two.</think>\n\nIt is 4."
    body["choices"][0]["finish_reason"] = "stop"
    reply = decode_chat(body)
    assert (reply.text, reply.reasoning) == ("It is 4.", "Two plus two.")
    message["content"] = "<think>Still thinking when the limit"  # cut off at max_tokens, reasoning null
    body["choices"][0]["finish_reason"] = "length"
    reply = decode_chat(body)
    assert (reply.text, reply.reasoning, reply.finish_reason) == ("", "Still thinking when the limit", "length")
    message["content"], message["reasoning"] = "It is 4.", "<think>Two plus two.</think>"
    assert (decode_chat(body).text, decode_chat(body).reasoning) == ("It is 4.", "Two plus two.")


def test_annotations_and_images_are_kept_and_a_non_list_is_refused() -> None:
    body = copy.deepcopy(PARALLEL)
    message = body["choices"][0]["message"]
    citation = {"type": "url_citation", "url_citation": {"url": "https://example.org", "title": "Ex",
                                                          "start_index": 0, "end_index": 5}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    message.update(annotations=[citation], images=[image])
    reply = decode_chat(body)
    assert list(reply.annotations) == [citation] and list(reply.images) == [image]
    message["tool_calls"] = {"not": "a list"}
    with pytest.raises(InvalidResponseError, match="tool_calls is not a list"):
        decode_chat(body)


def test_reasoning_tokens_above_completion_tokens_are_kept_as_sent() -> None:
    usage = Usage.from_api({"prompt_tokens": 10, "completion_tokens": 5,
                            "completion_tokens_details": {"reasoning_tokens": 900}})
    assert (usage.completion_tokens, usage.reasoning_tokens) == (5, 900)


# --- stream chunks ---------------------------------------------------------------------------------


def test_stream_chunks_carry_tool_call_fragments_and_reasoning() -> None:
    chunk = decode_chunk({"id": "gen-1", "choices": [{"index": 0, "delta": {
        "role": "assistant", "content": None, "reasoning": "hm",
        "tool_calls": [{"index": 1, "id": "call_9", "type": "function", "function": {"name": "add", "arguments": ""}}]},
        "finish_reason": None}]})
    assert chunk.reasoning == "hm"
    assert [(f.index, f.id, f.name, f.arguments) for f in chunk.tool_calls] == [(1, "call_9", "add", "")]
    usage_only = decode_chunk({"id": "gen-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    assert usage_only.usage is not None and usage_only.usage.total_tokens == 4 and usage_only.tool_calls == ()


# --- against the local server ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as s:
        yield s


def make_service(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    overrides.setdefault("api_key", server.api_key)
    overrides.setdefault("model", "openai/gpt-4o-mini")
    return OpenRouterService(Settings.from_env({}, base_url=server.base_url, **overrides), registry=Registry(environ={}))


def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@attrs.frozen
class Place:
    city: str
    country: str | None = None


@dataclasses.dataclass
class Window:
    days: int


class Units(pydantic.BaseModel):
    system: Literal["metric", "imperial"]


async def forecast(place: Place, window: Window, units: Units | None = None) -> str:
    """The forecast for a place."""
    assert isinstance(place, Place) and isinstance(window, Window)
    return f"sunny in {place.city} for {window.days} days"


async def test_callables_become_function_specs_in_the_request(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        result = await service.generate("What is 2 + 3?", tools=[add], tool_choice="add", parallel_tool_calls=False)
    body = server.requests[-1].body
    assert body["tools"] == [{"type": "function", "function": {
        "name": "add", "description": "Add two integers.",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["a"], "properties": {
            "a": {"type": "integer", "description": "the first number"},
            "b": {"type": "integer", "description": "the second number", "default": 0}}}}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert body["parallel_tool_calls"] is False
    assert result.finish_reason == "tool_calls" and result.text == ""
    (call,) = result.tool_calls
    assert call.name == "add" and isinstance(call.arguments["a"], int) and call.id.startswith("call_")


def test_record_and_pydantic_parameters_become_schemas_and_come_back_as_instances() -> None:
    (tool,) = check_tools([forecast])
    parameters = tool.parameters
    assert parameters["required"] == ["place", "window"]
    assert parameters["properties"]["place"] == {"$ref": "#/$defs/Place"}
    assert parameters["$defs"]["Place"]["required"] == ["city"]
    units = parameters["properties"]["units"]
    assert units["anyOf"][0]["properties"]["system"]["enum"] == ["metric", "imperial"]
    assert units["anyOf"][1] == {"type": "null"} and units["default"] is None
    kwargs = tool.arguments({"place": {"city": "Oslo"}, "window": {"days": 3}, "units": {"system": "metric"}})
    assert kwargs == {"place": Place("Oslo"), "window": Window(3), "units": Units(system="metric")}


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ([lambda x: x], "named '<lambda>'"),
        ([add, add], "two tools are named 'add'"),
        ([lambda: None.__class__], "named '<lambda>'"),
        ([{"type": "function", "function": {"name": "bad name"}}], "function.name must be"),
        ([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}], "tool f: parameters must describe an object"),
        ([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "minProperties": "x"}}}], "tool f: parameters are not a valid JSON Schema"),
        ([42], "tools\\[0\\] is a int"),
        ("add", "tools must be a list"),
    ],
)
async def test_bad_tools_are_refused_before_anything_is_sent(server: FakeOpenRouter, tools: Any, message: str) -> None:
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match=message):
            await service.generate("hi", tools=tools)
    assert server.requests == []


def variadic(*numbers: int) -> int:
    return sum(numbers)


def takes_a_set_of_bytes(data: bytes) -> None:
    return None


@pytest.mark.parametrize(
    ("tool", "message"),
    [(variadic, "tool variadic: parameter 'numbers' is variadic positional"),
     (takes_a_set_of_bytes, "tool takes_a_set_of_bytes, parameter data: unsupported type bytes")],
)
def test_a_callable_whose_signature_has_no_schema_is_refused_naming_it(tool: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_tools([tool])


async def test_tool_choice_must_name_a_declared_tool(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match="tool_choice must be 'auto', 'none', 'required' or the name of a declared tool \\(add\\)"):
            await service.generate("hi", tools=[add], tool_choice="subtract")
        with pytest.raises(ConfigurationError, match="tool_choice was given without tools="):
            await service.generate("hi", tool_choice="auto")
    assert server.requests == []


async def test_invalid_tool_arguments_are_asked_again_with_the_errors(server: FakeOpenRouter) -> None:
    bad = copy.deepcopy(CLAUDE_TOOL)
    bad["choices"][0]["message"]["tool_calls"][0]["function"] = {"name": "add", "arguments": '{"a": "two"}'}
    server.enqueue(Scripted(json=bad))
    async with make_service(server) as service:
        result = await service.generate("What is 2 + 3?", tools=[add], tool_choice="add")
    assert len(server.requests) == 2 and result.attempts == 2
    resent = server.requests[1].body["messages"]
    assert resent[1]["tool_calls"] == bad["choices"][0]["message"]["tool_calls"]  # as received
    assert resent[1]["reasoning_details"] == bad["choices"][0]["message"]["reasoning_details"]
    assert resent[2]["role"] == "tool" and resent[2]["tool_call_id"] == "toolu_bdrk_01XyZ"
    assert "'two' is not of type 'integer'" in resent[2]["content"]
    assert result.tool_calls == () and result.text.startswith("The tools answered: error: invalid arguments")
    server.enqueue(Scripted(json=bad), Scripted(json=bad))
    async with make_service(server) as service:
        with pytest.raises(StructuredOutputError, match="tool call arguments do not match") as caught:
            await service.generate("What is 2 + 3?", tools=[add], max_reasks=1)
    assert caught.value.attempts == 2


async def test_a_two_turn_round_trip_sends_the_calls_and_reasoning_back_byte_for_byte(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=CLAUDE_TOOL, headers={"X-Generation-Id": CLAUDE_TOOL["id"]}))
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    async with make_service(server, model="anthropic/claude-sonnet-4") as service:
        first = await service.generate("Weather in Paris?", tools=[weather], reasoning={"max_tokens": 2000}, max_tokens=4000)
        assert first.provider == "Amazon Bedrock"
        (call,) = first.tool_calls
        conversation = [{"role": "user", "content": "Weather in Paris?"}, first.assistant_message(),
                        tool_message(call, {"temp_c": 21})]
        second = await service.generate(messages=conversation, tools=[weather], model="anthropic/claude-sonnet-4")
    sent = server.requests[-1].body["messages"]
    received = CLAUDE_TOOL["choices"][0]["message"]
    assert json.dumps(sent[1]["tool_calls"]) == json.dumps(received["tool_calls"])
    assert json.dumps(sent[1]["reasoning_details"]) == json.dumps(received["reasoning_details"])
    assert sent[1]["content"] is None and "content" in sent[1]
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_bdrk_01XyZ", "content": '{"temp_c": 21}'}
    assert server.requests[0].body["reasoning"] == {"max_tokens": 2000}
    # the second turn is served by another provider: the conversation still goes through
    assert second.provider != first.provider and second.finish_reason == "stop"
    assert second.text == 'The tools answered: {"temp_c": 21}' and second.tool_calls == ()


async def test_messages_as_openrouter_takes_them_pass_the_input_checks(server: FakeOpenRouter) -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        ]},
        {"role": "assistant", "tool_calls": [{"id": "functions.add:0", "type": "function",
                                              "function": {"name": "add", "arguments": "{\"a\":1}"}}]},
        {"role": "tool", "tool_call_id": "functions.add:0", "content": "1"},
    ]
    async with make_service(server) as service:
        result = await service.generate(messages=messages)
        assert server.requests[-1].body["messages"] == messages
        # gpt-4o-mini caches by itself: the marker is passed on as sent and nothing is billed as written
        # (what explicit-caching models write and read is in tests/test_caching.py)
        assert result.usage.cache_write_tokens == 0
        with pytest.raises(ConfigurationError, match="tool message without 'tool_call_id'"):
            await service.generate(messages=[{"role": "tool", "content": "1"}])
        with pytest.raises(ConfigurationError, match="messages\\[0\\] has no 'content'"):
            await service.generate(messages=[{"role": "user"}])
        with pytest.raises(ConfigurationError, match="tool_calls must be on an assistant message"):
            await service.generate(messages=[{"role": "user", "content": "x", "tool_calls": [{"id": "1"}]}])
    assert len(server.requests) == 1


async def test_response_format_in_extra_body_is_sent_or_refused_pointing_to_schema(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        await service.generate("Give JSON", extra_body={"response_format": {"type": "json_object"}})
        assert server.requests[-1].body["response_format"] == {"type": "json_object"}
        with pytest.raises(ConfigurationError, match="pass the JSON Schema as schema="):
            await service.generate("x", schema={"type": "object"}, extra_body={"response_format": {"type": "json_object"}})
    assert len(server.requests) == 1


# --- streams ---------------------------------------------------------------------------------------


def sse(data: dict[str, Any]) -> str:
    return "data: " + json.dumps(data, separators=(",", ":")) + "\n\n"


def delta_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    return sse({"id": "gen-s", "provider": "Moonshot AI", "model": "moonshotai/kimi-k2", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": finish}], **extra})


async def test_streamed_tool_calls_are_assembled_by_index_in_every_wire_shape(server: FakeOpenRouter) -> None:
    usage = {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70, "cost": 0.0001,
             "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 12}}
    pieces = [
        ": OPENROUTER PROCESSING\n\n",
        delta_chunk({"content": None, "reasoning": "I need "}),
        delta_chunk({"content": None, "reasoning": "two tools."}),
        delta_chunk({"content": None, "tool_calls": [{"index": 0, "id": "functions.now:0", "type": "function",
                                                      "function": {"name": "now", "arguments": ""}}]}),
        delta_chunk({"content": None, "tool_calls": [{"index": 1, "id": "add:1", "type": "function",
                                                      "function": {"name": "add", "arguments": ""}}]}),
        ": OPENROUTER PROCESSING\n\n",
        delta_chunk({"content": None, "tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
    ]
    split = delta_chunk({"content": None, "tool_calls": [{"index": 1, "function": {"arguments": "{\"a\": 2, "}}]})
    pieces += [split[:25], split[25:]]  # one data: line split across two network reads
    pieces += [
        delta_chunk({"content": None, "tool_calls": [{"index": 1, "function": {"arguments": "\"b\": 3}"}}]}),
        delta_chunk({"content": ""}, "tool_calls"),
        delta_chunk({"content": ""}, "tool_calls", usage=usage),  # finish_reason again on the usage chunk (2026-04)
        "data: [DONE]\n\n",
    ]
    server.enqueue(Scripted(sse=pieces))
    async with make_service(server) as service:
        stream = service.stream("now, and 2 + 3", tools=[add])
        events = [event async for event in stream.events()]
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["ReasoningDelta", "ReasoningDelta", "ToolCallStarted", "ToolCallStarted", "ToolCallArgumentsDelta",
                     "ToolCallArgumentsDelta", "ToolCallArgumentsDelta", "ToolCallFinished", "ToolCallFinished",
                     "UsageReport"]
    assert stream.reasoning == "I need two tools." and stream.finish_reason == "tool_calls" and stream.text == ""
    assert stream.tool_calls == (ToolCall("functions.now:0", "now", {}, "{}"),
                                 ToolCall("add:1", "add", {"a": 2, "b": 3}, '{"a": 2, "b": 3}'))
    assert stream.usage.cache_write_tokens == 12 and stream.cost == Decimal("0.0001")
    assert stream.assistant_message()["tool_calls"][1] == {
        "id": "add:1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}


async def test_the_local_server_streams_tool_calls_and_reasoning(server: FakeOpenRouter) -> None:
    async with make_service(server, model="anthropic/claude-3.5-sonnet") as service:
        stream = service.stream("add", tools=[add], reasoning={"effort": "high"}, max_tokens=4000)
        deltas = [delta async for delta in stream]
    assert deltas == [] and stream.finish_reason == "tool_calls"
    (call,) = stream.tool_calls
    assert call.id.startswith("toolu_bdrk_") and call.name == "add" and isinstance(call.arguments["a"], int)
    assert stream.reasoning and stream.reasoning_details[0]["format"] == "anthropic-claude-v1"
    assert stream.usage.reasoning_tokens > 0


async def test_the_local_server_can_put_reasoning_in_a_think_block(server: FakeOpenRouter) -> None:
    server.think_in_content = True
    async with make_service(server) as service:
        result = await service.generate("Hi", reasoning={"effort": "low"})
    assert result.reasoning and not result.text.startswith("<think>") and result.text
    assert result.reasoning_details == ()


# --- the guide's examples --------------------------------------------------------------------------


async def test_the_readme_tools_examples_run_against_the_local_server(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "tools-and-reasoning.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", guide, re.DOTALL)
    assert len(blocks) == 4
    namespace: dict[str, Any] = {}
    async with make_service(server) as service:
        for block in blocks:
            exec(compile(block, "docs/guides/tools-and-reasoning.md", "exec"), namespace)
            await namespace["main"](service)
    out = capsys.readouterr().out
    assert "tool_calls (ToolCall(id='call_" in out  # the first example's print
    assert "The tools answered: " in out and "ToolCallFinished" in out and "UsageReport" in out
    assert len(server.requests) == 6  # two turns by hand, two loop rounds, one stream, one reasoning call
    assert server.requests[-1].body["reasoning"] == {"effort": "high"}


async def test_a_streamed_think_block_in_the_content_becomes_reasoning(server: FakeOpenRouter) -> None:
    server.think_in_content = True
    async with make_service(server) as service:
        stream = service.stream("Hi", reasoning={"effort": "low"})
        events = [event async for event in stream.events()]
        plain = await service.generate("Hi")
    kinds = [type(event).__name__ for event in events]
    assert kinds[0] == "ReasoningDelta" and "TextDelta" in kinds and kinds[-1] == "UsageReport"
    assert kinds.index("TextDelta") > max(i for i, k in enumerate(kinds) if k == "ReasoningDelta")
    assert stream.reasoning == "The user asked a question; I work out the answer step by step before replying."
    assert stream.text == plain.text and "<think>" not in stream.text  # the text that follows the block


@pytest.mark.parametrize(
    ("pieces", "text", "reasoning"),
    [
        (["<thi", "nk>abc</th", "ink>\n", "Hello"], "Hello", "abc"),
        (["  <think>cut off at the li", "mit"], "", "cut off at the limit"),
        (["<b>bold</b>"], "<b>bold</b>", None),
        (["<", "p>x"], "<p>x", None),
        (["<thi"], "<thi", None),  # held back in case a block opens; the stream ends first: it is text
    ],
)
async def test_think_tags_split_across_chunks(server: FakeOpenRouter, pieces: list[str], text: str, reasoning: str | None) -> None:
    server.enqueue(Scripted(sse=[delta_chunk({"content": piece}) for piece in pieces] + ["data: [DONE]\n\n"]))
    async with make_service(server) as service:
        stream = service.stream("x")
        deltas = [delta async for delta in stream]
    assert "".join(deltas) == stream.text == text and stream.reasoning == reasoning


async def test_think_tags_inside_a_streamed_reasoning_field_are_taken_off(server: FakeOpenRouter) -> None:
    pieces = [delta_chunk({"content": None, "reasoning": "<think>ab"}), delta_chunk({"content": None, "reasoning": "c</think>"}),
              delta_chunk({"content": "<think>kept</think> as content"}), "data: [DONE]\n\n"]
    server.enqueue(Scripted(sse=pieces))
    async with make_service(server) as service:
        stream = service.stream("x")
        await stream.collect()
    assert (stream.reasoning, stream.text) == ("abc", "<think>kept</think> as content")


async def test_tools_sent_through_extra_body_come_back_unchecked(server: FakeOpenRouter) -> None:
    spec = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    server.enqueue(Scripted(json=CLAUDE_TOOL))
    async with make_service(server) as service:
        result = await service.generate("Weather?", extra_body={"tools": [spec]})
    assert len(server.requests) == 1 and server.requests[0].body["tools"] == [spec]
    assert result.tool_calls[0].name == "get_weather" and result.tool_calls[0].errors == ()
