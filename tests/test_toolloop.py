"""`service.run_tools`: the bounded tool loop, the `tools` structured mode and the `reasoning=` checks,
against the local server on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal

import asyncio
import time
import types
from typing import Any

import pytest

from openrouter_registry import ConfigurationError, Settings, ToolLoopError
from openrouter_registry.models.catalog import ModelInfo, ReasoningFacts, modes_from_parameters, parse_models
from openrouter_registry.models.generator import Generator
from openrouter_registry.models.reasoning import check_reasoning
from openrouter_registry.plugin import ModelTable, parse_json_reply
from openrouter_registry.plugins.family import family_hooks
from openrouter_registry.testing import FakeOpenRouter, Scripted

from test_tools import make_service
from test_tools import server  # noqa: F401  (the fixture: a local server)


def tool_reply(*calls: tuple[str, str, str], cost: float = 0.001) -> Scripted:
    """A reply of tool calls: (id, name, arguments text) each."""
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        for call_id, name, arguments in calls]}
    return Scripted(json={
        "id": "gen-tools", "provider": "OpenAI", "model": "openai/gpt-4o-mini", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110, "cost": cost},
    })


SPANS: list[tuple[float, float]] = []


async def slow_a(x: int) -> str:
    """Slow tool A."""
    started = time.monotonic()
    await asyncio.sleep(0.3)
    SPANS.append((started, time.monotonic()))
    return f"a{x}"


def slow_b(x: int) -> str:
    """Slow tool B (sync: runs on a worker thread)."""
    started = time.monotonic()
    time.sleep(0.3)
    SPANS.append((started, time.monotonic()))
    return f"b{x}"


def broken(x: int) -> str:
    """Always fails."""
    raise RuntimeError("the database is down")


async def test_the_loop_runs_parallel_calls_concurrently_and_sums_every_round(server: FakeOpenRouter) -> None:
    server.enqueue(tool_reply(("call_1", "slow_a", '{"x": 1}'), ("call_2", "slow_b", '{"x": 2}'), cost=0.002))
    SPANS.clear()
    async with make_service(server) as service:
        result = await service.run_tools("Run both", tools=[slow_a, slow_b])
    (start_a, end_a), (start_b, end_b) = sorted(SPANS)
    assert start_b < end_a  # 0.3 s each: the second began before the first ended (concurrently)
    assert result.rounds == 2 and result.content == "The tools answered: a1; b2"
    tool_results = [m for m in result.transcript if m["role"] == "tool"]
    assert tool_results == [{"role": "tool", "tool_call_id": "call_1", "content": "a1"},
                            {"role": "tool", "tool_call_id": "call_2", "content": "b2"}]
    (second,) = server.generations.values()  # what the server billed for the unscripted second round
    assert result.cost == Decimal("0.002") + Decimal(repr(second["total_cost"]))
    assert result.usage.prompt_tokens == 100 + result.final.usage.prompt_tokens
    assert result.attempts == 2 and len(server.requests) == 2
    assert server.requests[1].body["messages"][1]["tool_calls"][1]["id"] == "call_2"
    assert server.requests[1].body["tools"] == server.requests[0].body["tools"]  # tools on every request


async def test_failures_go_back_to_the_model_as_that_calls_error(server: FakeOpenRouter) -> None:
    server.enqueue(tool_reply(
        ("c1", "broken", '{"x": 1}'),
        ("c2", "nonexistent", "{}"),
        ("c3", "slow_a", '{"x": "not a number"}'),
        ("c4", "slow_a", '{"x": 4,}'),  # malformed JSON: repaired locally, then run
    ))
    async with make_service(server) as service:
        result = await service.run_tools("Go", tools=[broken, slow_a])
    contents = {m["tool_call_id"]: m["content"] for m in result.transcript if m["role"] == "tool"}
    assert contents["c1"] == "error: broken raised RuntimeError: the database is down"
    assert contents["c2"].startswith("error: there is no tool named 'nonexistent'; the tools are: broken, slow_a")
    assert contents["c3"].startswith("error: invalid arguments: slow_a: $.x: 'not a number' is not of type 'integer'")
    assert contents["c4"] == "a4"
    assert result.rounds == 2


async def test_past_max_rounds_a_typed_error_carries_the_transcript_usage_and_cost(server: FakeOpenRouter) -> None:
    server.enqueue(*(tool_reply((f"c{i}", "slow_a", '{"x": 0}'), cost=0.01) for i in range(3)))
    async with make_service(server) as service:
        with pytest.raises(ToolLoopError, match="max_rounds=2") as caught:
            await service.run_tools("Loop", tools=[slow_a], max_rounds=2)
    error = caught.value
    assert error.rounds == 2 and error.cost == Decimal("0.02") and error.usage.prompt_tokens == 200
    assert [m["role"] for m in error.transcript] == ["user", "assistant", "tool", "assistant", "tool"]
    assert len(server.requests) == 2


async def test_the_final_answer_is_validated_against_the_schema(server: FakeOpenRouter) -> None:
    schema = {"title": "Total", "type": "object", "properties": {"total": {"type": "integer"}},
              "required": ["total"], "additionalProperties": False}
    server.enqueue(tool_reply(("c1", "slow_a", '{"x": 5}')))
    server.set_reply("Total", {"total": 5})
    async with make_service(server) as service:
        result = await service.run_tools("Sum", tools=[slow_a], schema=schema, max_rounds=3)
    assert result.content == {"total": 5} and result.final.mode == "json_schema"


async def test_run_tools_refuses_bad_arguments_before_sending(server: FakeOpenRouter) -> None:
    spec = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match="give the Python function"):
            await service.run_tools("x", tools=[spec])
        with pytest.raises(ConfigurationError, match="max_rounds must be a positive integer"):
            await service.run_tools("x", tools=[slow_a], max_rounds=0)
        with pytest.raises(ConfigurationError, match="unknown options \\['stream'\\]"):
            await service.run_tools("x", tools=[slow_a], stream=True)
    assert server.requests == []


async def test_every_round_sends_generates_routing_options_and_the_settings_session(server: FakeOpenRouter) -> None:
    from openrouter_registry import Provider

    server.enqueue(tool_reply(("c1", "slow_a", '{"x": 1}')))
    async with make_service(server) as service:
        result = await service.run_tools("Go", tools=[slow_a], provider=Provider(order=["OpenAI"]),
                                         models=["openai/gpt-4o"], session_id="chat-7", max_attempts=1, timeout=5)
    assert result.rounds == 2
    for request in server.requests:  # both rounds, exactly as generate sends them
        assert request.body["provider"] == {"order": ["OpenAI"]}
        assert request.body["models"] == ["openai/gpt-4o"] and request.body["session_id"] == "chat-7"
    server.enqueue(tool_reply(("c1", "slow_a", '{"x": 1}')))
    async with make_service(server, session_id="from-settings") as service:
        await service.run_tools("Go", tools=[slow_a])
    assert [r.body["session_id"] for r in server.requests[2:]] == ["from-settings", "from-settings"]
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match="max_attempts"):
            await service.run_tools("x", tools=[slow_a], max_attempts=0)
    assert len(server.requests) == 4


# --- the tools structured mode ---------------------------------------------------------------------


def test_the_catalog_lists_the_tools_mode_for_models_with_tools_and_no_json_mode() -> None:
    assert modes_from_parameters(("tools", "tool_choice", "max_tokens")) == ("tools", "prompt")
    assert modes_from_parameters(("tools", "response_format")) == ("json_object", "prompt")
    assert modes_from_parameters(("max_tokens",)) == ("prompt",)


CITY = {"title": "City", "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
        "additionalProperties": False}


def tools_only_catalog(server: FakeOpenRouter) -> None:
    """A catalog whose one model lists tools and no JSON mode (no plugin claims it: the catalog decides)."""
    server.catalog_answer = Scripted(json={"data": [
        {"id": "acme/toolsy-1", "name": "Acme Toolsy", "context_length": 32000,
         "pricing": {"prompt": "0.000001", "completion": "0.000002"},
         "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice"]}]})


async def test_the_tools_mode_asks_for_one_forced_function_call(server: FakeOpenRouter) -> None:
    tools_only_catalog(server)
    server.set_reply("City", {"name": "Paris"})
    async with make_service(server, model="acme/toolsy-1") as service:
        result = await service.generate("Capital of France?", schema=CITY)  # catalog: tools, no JSON mode
    body = server.requests[-1].body
    assert result.content == {"name": "Paris"} and result.mode == "tools" and result.tool_calls == ()
    assert body["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert body["tools"][0]["function"]["parameters"] == CITY and "response_format" not in body


async def test_a_refused_tools_mode_is_learned_like_the_others(server: FakeOpenRouter) -> None:
    refusal = Scripted(status=404, json={"error": {"message": "No endpoints found that support tool use.", "code": 404}})
    server.enqueue(refusal)
    tools_only_catalog(server)
    server.set_reply("City", {"name": "Paris"})
    async with make_service(server, model="acme/toolsy-1") as service:
        first = await service.generate("Capital of France?", schema=CITY)
        second = await service.generate("Capital of France?", schema=CITY)
    assert (first.mode, second.mode) == ("prompt", "prompt")
    assert len(server.requests) == 3  # the refusal, then the prompt mode twice: learned


class ToolsFirst(Generator):
    structured_modes = ("json_schema", "tools", "prompt")


def _tools_first_family() -> types.ModuleType:
    module = types.ModuleType("acme_tools_family")
    table = ModelTable(families=[(r"acme/[\w.\-]+", ToolsFirst)])
    module.resolve_generator, module.claimed_models, module.parse_structured = family_hooks(  # type: ignore[attr-defined]
        table, parse_json_reply, prefix="acme/"
    )
    return module


async def test_a_family_plugin_puts_the_tools_mode_in_its_own_order(server: FakeOpenRouter) -> None:
    server.refuse_modes["acme/model-1"] = {"json_schema"}
    server.set_reply("City", {"name": "Rome"})
    service = make_service(server, model="acme/model-1")
    service.registry.register(_tools_first_family(), name="acme_tools_family")
    async with service:
        result = await service.generate("Capital of Italy?", schema=CITY)
    assert result.mode == "tools" and result.content == {"name": "Rome"}
    assert [r.body.get("response_format", {}).get("type") for r in server.requests] == ["json_schema", None]
    assert server.requests[-1].body["tool_choice"]["function"]["name"] == "City"


# --- reasoning checks ------------------------------------------------------------------------------


class WithFacts(Generator):
    facts_for_test: ReasoningFacts | None = None

    @property
    def model_info(self) -> ModelInfo | None:
        return ModelInfo(self.model, reasoning=self.facts_for_test)


def with_facts(model: str, facts: ReasoningFacts | None) -> Generator:
    generator = WithFacts(model, Settings(api_key="sk-or-v1-x", catalog=False))
    object.__setattr__(generator, "facts_for_test", facts)
    return generator


def test_reasoning_is_checked_against_the_catalogs_facts() -> None:
    mandatory = with_facts("openai/gpt-5", ReasoningFacts(supported_efforts=("high", "medium", "low"), mandatory=True))
    with pytest.raises(ConfigurationError, match="always reasons"):
        check_reasoning({"enabled": False}, mandatory, None)
    with pytest.raises(ConfigurationError, match="does not take reasoning effort 'minimal'; the catalog lists high, medium, low"):
        check_reasoning({"effort": "minimal"}, mandatory, None)
    assert check_reasoning("high", mandatory, None) == {"effort": "high"}
    claude = with_facts("anthropic/claude-sonnet-4", None)
    with pytest.raises(ConfigurationError, match="must exceed the reasoning budget"):
        check_reasoning({"max_tokens": 4000}, claude, 2000)
    with pytest.raises(ConfigurationError, match=r"max\(min\(max_tokens x ratio, 128000\), 1024\)"):
        check_reasoning({"effort": "low"}, claude, 1000)
    assert check_reasoning({"effort": "low"}, claude, 5000) == {"effort": "low"}
    with pytest.raises(ConfigurationError, match="unknown keys"):
        check_reasoning({"budget": 1}, claude, None)


def test_the_catalog_reads_reasoning_facts_and_ignores_malformed_ones() -> None:
    models = parse_models([
        {"id": "openai/gpt-5", "reasoning": {"supported_efforts": ["high", "low"], "mandatory": True, "default_effort": 3}},
        {"id": "x/y", "reasoning": "yes"},
    ])
    assert models["openai/gpt-5"].reasoning == ReasoningFacts(supported_efforts=("high", "low"), mandatory=True)
    assert models["x/y"].reasoning is None


async def test_a_refused_reasoning_sends_nothing(server: FakeOpenRouter) -> None:
    async with make_service(server, model="anthropic/claude-3.5-sonnet") as service:
        with pytest.raises(ConfigurationError, match="reasoning.effort must be one of"):
            await service.generate("x", reasoning={"effort": "extreme"})
        with pytest.raises(ConfigurationError, match="must exceed the reasoning budget"):
            await service.generate("x", reasoning={"max_tokens": 3000}, max_tokens=1000)
    assert server.requests == []


async def test_a_call_with_its_own_tools_skips_the_tools_mode(server: FakeOpenRouter) -> None:
    tools_only_catalog(server)
    server.set_reply("City", {"name": "Paris"})
    spec = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    async with make_service(server, model="acme/toolsy-1") as service:
        result = await service.generate("Capital of France?", schema=CITY, extra_body={"tools": [spec], "tool_choice": "none"})
    assert result.mode == "prompt" and result.content == {"name": "Paris"}
    assert server.requests[-1].body["tools"] == [spec]


async def test_a_forced_tool_choice_holds_for_the_first_round_only(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        result = await service.run_tools("Go", tools=[slow_a], tool_choice="slow_a", max_rounds=3)
    assert result.rounds == 2
    assert server.requests[0].body["tool_choice"] == {"type": "function", "function": {"name": "slow_a"}}
    assert server.requests[1].body["tool_choice"] == "auto"
