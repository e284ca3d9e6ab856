"""Cost from the catalog: a reply without usage.cost is priced from the catalog (cost_source "catalog"),
and estimate_cost gives the lowest and highest price of a call before it is made."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from openrouter_registry import ContextLengthError, Usage
from openrouter_registry.models.catalog import Pricing
from openrouter_registry.models.pricing import CostEstimate, price_usage
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY
from test_service import make_service
from test_service import server  # noqa: F401  (the fixture: a local server answering city_country)

def reply_without_cost(model: str, content: str = "Hello") -> dict[str, Any]:
    """A 2024-style reply: usage without ``cost`` (see the llm-openrouter 2024-11 recording)."""
    return {
        "id": "gen-1732000000-abcdefghijklmnopqrst", "provider": "OpenAI", "model": model, "object": "chat.completion",
        "created": 1732000000,
        "choices": [{"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
    }


def test_price_usage_is_exact_and_prices_cached_tokens_at_the_cache_rate() -> None:
    pricing = Pricing(prompt=Decimal("0.0000025"), completion=Decimal("0.00001"), request=Decimal("0.001"),
                      input_cache_read=Decimal("0.00000125"))
    usage = Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500, cached_tokens=200)
    assert price_usage(pricing, usage) == Decimal("0.0000025") * 800 + Decimal("0.00000125") * 200 + Decimal(
        "0.00001") * 500 + Decimal("0.001")
    assert price_usage(pricing, usage) == Decimal("0.00825")
    assert price_usage(Pricing(prompt=Decimal("0.000001")), usage) is None  # no completion price: unknown


def test_cache_writes_are_priced_at_the_cache_write_rate() -> None:
    pricing = Pricing(prompt=Decimal("0.000003"), completion=Decimal("0.000015"),
                      input_cache_read=Decimal("0.0000003"), input_cache_write=Decimal("0.00000375"))
    usage = Usage(prompt_tokens=1400, completion_tokens=90, total_tokens=1490, cached_tokens=100, cache_write_tokens=1200)
    assert price_usage(pricing, usage) == (
        Decimal("0.000003") * 100 + Decimal("0.0000003") * 100 + Decimal("0.00000375") * 1200 + Decimal("0.000015") * 90
    )
    # without a cache-write price, writes cost the prompt price (never less than the tokens sent)
    plain = Pricing(prompt=Decimal("0.000003"), completion=Decimal("0.000015"))
    assert price_usage(plain, usage) == Decimal("0.000003") * 1400 + Decimal("0.000015") * 90


async def test_a_reply_without_usage_cost_is_priced_from_the_catalog(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=reply_without_cost("openai/gpt-4o")))
    async with make_service(server) as service:
        g = await service.generate("Say hello", model="openai/gpt-4o")
        api = await service.generate("Say hello", model="openai/gpt-4o")  # the local server reports usage.cost
    assert g.cost == Decimal("0.0000025") * 1200 + Decimal("0.00001") * 300 == Decimal("0.006")
    assert g.cost_source == "catalog" and g.to_dict()["cost_source"] == "catalog"
    assert api.cost_source == "api" and api.cost == Decimal(repr(server.generations[api.generation_id or ""]["total_cost"]))


async def test_without_a_price_the_cost_stays_unknown(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=reply_without_cost("acme/unlisted")))
    async with make_service(server) as service:
        g = await service.generate("Say hello", model="acme/unlisted")
    assert (g.cost, g.cost_source) == (None, None)


async def test_one_catalog_priced_attempt_makes_the_sum_a_catalog_cost(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(json=reply_without_cost("openai/gpt-4o", '{"city": "Paris"}')))  # invalid: re-asked
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris, France.", schema=CITY, model="openai/gpt-4o")
    assert g.attempts == 2 and g.cost_source == "catalog"
    billed = next(iter(server.generations.values()))["total_cost"]
    assert g.cost == Decimal("0.006") + Decimal(repr(billed))  # exact: Decimal money


async def test_estimate_cost_brackets_what_the_call_is_billed(server: FakeOpenRouter) -> None:
    model = "mistralai/mixtral-8x7b-instruct"
    async with make_service(server) as service:
        estimate = await service.estimate_cost("Extract the city from: Paris, France.", schema=CITY, model=model,
                                               max_tokens=200)
        g = await service.generate("Extract the city from: Paris, France.", schema=CITY, model=model, max_tokens=200)
    assert isinstance(estimate, CostEstimate)
    low, high = estimate
    assert isinstance(low, Decimal) and isinstance(high, Decimal)
    assert g.cost is not None and g.cost_source == "api"
    assert low <= Decimal(str(g.cost)) <= high
    # with max_reasks=1 the highest price covers a re-ask: two requests of at most 200 output tokens
    assert high > 2 * 200 * Decimal("0.00000024")


async def test_estimate_cost_without_max_tokens_uses_the_output_limit(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        low, high = await service.estimate_cost("hi", model="openai/gpt-4o") or (None, None)
    assert low is not None and high is not None
    assert low == 1 * Decimal("0.0000025") + Decimal("0.00001")  # "hi": at least one prompt token, one reply token
    assert high > 16_384 * Decimal("0.00001")  # a reply as long as gpt-4o's limit


async def test_estimate_cost_is_none_for_an_unpriced_model_and_never_sends(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        assert await service.estimate_cost(messages=[{"role": "user", "content": "hi"}], model="acme/x") is None
        with pytest.raises(ContextLengthError):
            await service.estimate_cost("word " * 60_000, model="mistralai/mixtral-8x7b-instruct")
    assert server.requests == []


CLAUDE = "anthropic/claude-3.7-sonnet"


def lookup_weather(city: str, unit: str = "celsius") -> str:
    """Look up today's weather for a city: sky, temperature and wind, in the unit asked for."""
    return f"sunny in {city}"


async def test_estimate_cost_counts_the_tool_definitions_and_brackets_the_call_that_sends_them(
    server: FakeOpenRouter,
) -> None:
    prompt = "What is the weather in Paris?"
    async with make_service(server) as service:
        bare = await service.estimate_cost(prompt, model="openai/gpt-4o", max_tokens=100)
        with_tools = await service.estimate_cost(prompt, model="openai/gpt-4o", max_tokens=100,
                                                 tools=[lookup_weather], tool_choice="auto")
        g = await service.generate(prompt, model="openai/gpt-4o", max_tokens=100, tools=[lookup_weather],
                                   tool_choice="auto")
    assert bare is not None and with_tools is not None
    sent = server.requests[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup_weather"] and sent["tool_choice"] == "auto"
    # the definitions are prompt tokens: the fewest (a token per 8 characters) and the most (one per UTF-8
    # byte) both grow by them
    definitions = len(json.dumps(sent["tools"], separators=(",", ":")))
    assert with_tools.low - bare.low >= (definitions // 8) * Decimal("0.0000025")
    assert with_tools.high - bare.high >= definitions * Decimal("0.0000025")
    assert g.tool_calls and g.cost is not None and with_tools.low <= g.cost <= with_tools.high


async def test_estimate_cost_checks_tools_and_reasoning_as_generate_does_and_sends_nothing(server: FakeOpenRouter) -> None:
    from openrouter_registry import ConfigurationError

    async with make_service(server) as service:
        for bad in ([lookup_weather, lookup_weather], [{"type": "function"}]):
            with pytest.raises(ConfigurationError) as estimated:
                await service.estimate_cost("hi", model="openai/gpt-4o", tools=bad)
            with pytest.raises(ConfigurationError) as generated:
                await service.generate("hi", model="openai/gpt-4o", tools=bad)
            assert str(estimated.value) == str(generated.value)
        with pytest.raises(ConfigurationError) as estimated:
            await service.estimate_cost("hi", model=CLAUDE, max_tokens=100, reasoning={"max_tokens": 500})
        with pytest.raises(ConfigurationError) as generated:
            await service.generate("hi", model=CLAUDE, max_tokens=100, reasoning={"max_tokens": 500})
        assert str(estimated.value) == str(generated.value)
    assert [r for r in server.requests if r.path.endswith("/chat/completions")] == []
