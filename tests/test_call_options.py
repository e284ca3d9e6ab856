"""Per-call options: ``timeout=`` and ``max_attempts=`` on every call, OpenRouter's routing options as
types (``provider=``, ``models=``, ``plugins=``, ``session_id=``): checked before anything is sent,
and sent in OpenRouter's shapes. Against the local server, on a real socket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from openrouter_registry import (
    ConfigurationError,
    FileParser,
    MaxPrice,
    OpenRouterService,
    Provider,
    ProviderError,
    Registry,
    ResponseHealing,
    Settings,
    TimeoutError,
    WebSearch,
)
from openrouter_registry.testing import FakeOpenRouter, Scripted

UNAVAILABLE = Scripted(status=503, json={"error": {"code": 503, "message": "No instances available"}})


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(text_reply="Hello") as s:
        yield s


def make_service(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, **overrides)
    service = OpenRouterService(settings, registry=Registry(environ={}))
    service.transport.base_delay = service.transport.max_delay = 0.01  # retries without the real waits
    return service


async def test_routing_options_go_out_in_openrouters_shapes(server: FakeOpenRouter) -> None:
    provider = Provider(
        order=["openai", "azure"], only=["openai", "azure"], ignore=["deepinfra"], sort="throughput",
        allow_fallbacks=False, require_parameters=True, data_collection="deny", zdr=True,
        max_price=MaxPrice(prompt="1.5", completion=Decimal("6"), request=0.01), quantizations=["fp8", "bf16"],
    )
    async with make_service(server) as service:
        await service.generate(
            "Say hello", model="openai/gpt-4o", provider=provider, models=["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"],
            plugins=[WebSearch(max_results=3, search_prompt="Sources:"), FileParser(pdf_engine="pdf-text"), ResponseHealing()],
            session_id="conversation-42", extra_body={"reasoning": {"effort": "low"}},
        )
    body = server.requests[0].body
    assert body["provider"] == {
        "order": ["openai", "azure"], "only": ["openai", "azure"], "ignore": ["deepinfra"], "sort": "throughput",
        "allow_fallbacks": False, "require_parameters": True, "data_collection": "deny", "zdr": True,
        "max_price": {"prompt": 1.5, "completion": 6.0, "request": 0.01}, "quantizations": ["fp8", "bf16"],
    }
    assert body["models"] == ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"]
    assert body["plugins"] == [
        {"id": "web", "max_results": 3, "search_prompt": "Sources:"}, {"id": "file-parser", "pdf": {"engine": "pdf-text"}},
        {"id": "response-healing"},
    ]
    assert body["session_id"] == "conversation-42" and body["reasoning"] == {"effort": "low"}
    assert body["model"] == "openai/gpt-4o"


async def test_a_provider_dict_is_checked_like_the_type_and_only_set_fields_are_sent(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        await service.generate("Say hello", provider={"sort": "price"})
        stream = service.stream("Say hello", provider=Provider(order=["openai"]), session_id="s")
        await stream.collect()
    assert server.requests[0].body["provider"] == {"sort": "price"}
    assert server.requests[1].body["provider"] == {"order": ["openai"]} and server.requests[1].body["session_id"] == "s"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"provider": {"sorting": "price"}}, "provider has no option 'sorting'; its options are: order, only"),
        ({"provider": {"sort": "cheapest"}}, "provider sort must be one of 'price', 'throughput', 'latency'"),
        ({"provider": {"order": "openai"}}, "provider order must be a list of provider names"),
        ({"provider": {"zdr": "yes"}}, "provider zdr must be True or False"),
        ({"provider": {"quantizations": ["fp7"]}}, "provider quantizations must be among int4"),
        ({"provider": {"max_price": {"prompt": -1}}}, "max_price prompt must be a finite number >= 0"),
        ({"provider": {"max_price": {"prompt": "cheap"}}}, "max_price prompt must be a number of USD"),
        ({"provider": "openai"}, "provider must be a Provider(...) or a dict"),
        ({"models": "openai/gpt-4o"}, "models must be a non-empty list of model ids"),
        ({"models": ["gpt 4o"]}, "models must hold model ids"),
        ({"plugins": [{"id": "web"}]}, "plugins must hold WebSearch(...), FileParser(...) or ResponseHealing()"),
        ({"session_id": "x" * 257}, "session_id must be a non-empty string of at most 256 characters"),
        ({"session_id": ""}, "session_id must be a non-empty string"),
        ({"provider": Provider(sort="price"), "extra_body": {"provider": {}}}, "provider is given both as provider= and in extra_body"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"timeout": float("nan")}, "timeout must be a positive number of seconds"),
        ({"max_attempts": 0}, "max_attempts must be a positive integer, got 0"),
        ({"max_attempts": True}, "max_attempts must be a positive integer, got True"),
    ],
)
async def test_bad_options_are_refused_before_anything_is_sent(
    server: FakeOpenRouter, options: dict[str, Any], message: str
) -> None:
    async with make_service(server) as service:
        with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            await service.generate("Say hello", **options)
        with pytest.raises(ConfigurationError):
            service.stream("Say hello", **options)
    assert server.requests == []


def test_plugin_values_are_checked_when_built() -> None:
    with pytest.raises(ConfigurationError, match="WebSearch max_results must be a positive integer"):
        WebSearch(max_results=0)
    with pytest.raises(ConfigurationError, match="FileParser pdf_engine must be one of"):
        FileParser(pdf_engine="ocr")  # type: ignore[arg-type]


async def test_max_attempts_per_call_bounds_the_requests(server: FakeOpenRouter) -> None:
    async with make_service(server, max_attempts=3) as service:
        server.enqueue(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
        with pytest.raises(ProviderError) as once:
            await service.generate("Say hello", max_attempts=1)
        assert once.value.attempts == 1 and len(server.requests) == 1
        server.clear()
        server.enqueue(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
        with pytest.raises(ProviderError) as five:
            await service.generate("Say hello", max_attempts=5)
        assert five.value.attempts == 5 and len(server.requests) == 5
        server.clear()
        server.enqueue(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
        with pytest.raises(ProviderError) as default:
            await service.generate("Say hello")  # the service's setting again
        assert default.value.attempts == 3 and len(server.requests) == 3
        server.clear()
        server.enqueue(UNAVAILABLE, UNAVAILABLE)
        with pytest.raises(ProviderError):
            await service.embed("text", max_attempts=2)
        assert len(server.requests) == 2
        server.clear()
        server.enqueue(UNAVAILABLE)
        with pytest.raises(ProviderError):
            await service.stream("Say hello", max_attempts=1).collect()
        assert len(server.requests) == 1


async def test_timeout_per_call_ends_the_attempt_and_names_the_option(server: FakeOpenRouter) -> None:
    async with make_service(server, timeout=30) as service:
        server.enqueue(Scripted.chat("late", delay=2.0))
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"within 0\.3s \(timeout=\)") as info:
            await service.generate("Say hello", timeout=0.3, max_attempts=1)
        assert time.monotonic() - started < 1.5 and info.value.attempts == 1
        server.clear()
        assert (await service.generate("Say hello", timeout=5)).content == "Hello"  # a timely answer is kept
        server.enqueue(Scripted(json={}, delay=2.0))
        with pytest.raises(TimeoutError, match=r"within 0\.3s"):
            await service.embed("text", timeout=0.3, max_attempts=1)
