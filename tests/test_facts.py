"""A generator's facts: its plugin's statements merged with the model catalog, with their sources, as
resolution, `resolve --json` / `--explain` and the generation path see them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY
from test_service import make_service
from test_service import server  # noqa: F401  (the fixture: a local server, modes forgotten)


async def test_a_model_no_plugin_claims_gets_every_fact_from_the_catalog(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        await service.load_catalog()
        facts = service.resolve("google/gemini-pro-1.5").generator.facts()
    assert (facts.context_window, facts.max_output_tokens) == (2_000_000, 8_192)
    assert facts.structured_modes == ("json_schema", "json_object", "prompt")
    assert facts.pricing is not None and facts.pricing.prompt == Decimal("0.00000125")
    assert dict(facts.sources) == {
        "context_window": "catalog", "max_output_tokens": "catalog", "structured_modes": "catalog", "pricing": "catalog"
    }


async def test_a_plugin_fact_wins_and_the_catalog_fills_the_gaps(server: FakeOpenRouter) -> None:
    server.refuse_modes["openai/gpt-4o"] = {"json_schema"}  # the catalog then lists no structured_outputs...
    async with make_service(server) as service:
        await service.load_catalog()
        gpt = service.resolve("openai/gpt-4o").generator.facts()
        haiku = service.resolve("anthropic/claude-3.5-haiku").generator.facts()  # Claude family: no numbers
    assert gpt.structured_modes == ("json_schema", "json_object", "prompt")  # ...but the plugin's statement wins
    assert gpt.sources["structured_modes"] == "plugin" and gpt.sources["context_window"] == "plugin"
    assert gpt.sources["pricing"] == "catalog"
    assert (haiku.context_window, haiku.max_output_tokens) == (200_000, 8_192)
    assert haiku.sources["context_window"] == "catalog" and haiku.structured_modes == ("json_schema", "prompt")


async def test_without_a_catalog_the_facts_are_the_plugins_alone(server: FakeOpenRouter) -> None:
    async with make_service(server, catalog=False) as service:
        await service.load_catalog()
        facts = service.resolve("google/gemini-pro-1.5").generator.facts()
    assert (facts.context_window, facts.max_output_tokens, facts.pricing) == (None, None, None)
    assert facts.structured_modes == ("json_schema", "json_object", "prompt")
    assert facts.sources["structured_modes"] == "plugin" and facts.sources["context_window"] is None
    assert server.catalog_requests == []


async def test_the_first_structured_generation_of_an_unclaimed_model_needs_one_request(server: FakeOpenRouter) -> None:
    """Mixtral refuses both JSON modes; without the catalog that costs three requests (see test_service)."""
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris, France.", schema=CITY, model="mistralai/mixtral-8x7b-instruct")
    assert (g.mode, g.attempts) == ("prompt", 1)
    (request,) = server.requests
    assert "response_format" not in request.body
    assert len(server.catalog_requests) == 1


async def test_catalog_modes_follow_the_listing(server: FakeOpenRouter) -> None:
    server.refuse_modes["google/gemini-pro-1.5"] = {"json_schema"}  # listed without structured_outputs
    async with make_service(server) as service:
        g = await service.generate("Extract: Paris, France.", schema=CITY, model="google/gemini-pro-1.5")
    assert (g.mode, g.attempts) == ("json_object", 1)
    assert server.requests[0].body["response_format"] == {"type": "json_object"}


async def test_no_catalog_and_no_network_works_as_before(server: FakeOpenRouter) -> None:
    """The catalog fetch fails (nothing answers /models), the generation goes on exactly as without it."""
    server.catalog_answer = Scripted(status=404, json={"error": {"message": "Not Found", "code": 404}})
    async with make_service(server) as service:
        g = await service.generate("x", schema=CITY, model="mistralai/mixtral-8x7b-instruct")
    assert (g.mode, g.attempts) == ("prompt", 3)  # learned the old way: json_schema, json_object, prompt
    assert len(server.catalog_requests) == 1


def run_cli(server: FakeOpenRouter, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.update(OPENROUTER_BASE_URL=server.base_url, OPENROUTER_API_KEY=server.api_key,
               OPENROUTER_CACHE_DIR=os.environ["OPENROUTER_CACHE_DIR"])
    return subprocess.run([sys.executable, "-m", "openrouter_registry", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_resolve_json_and_explain_show_facts_and_sources(server: FakeOpenRouter) -> None:
    done = run_cli(server, "resolve", "mistralai/mixtral-8x7b-instruct", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sources"]["context_window"] is None  # resolve never fetches: no catalog yet
    assert server.catalog_requests == []
    assert run_cli(server, "models").returncode == 0  # fetches and caches it
    done = run_cli(server, "resolve", "mistralai/mixtral-8x7b-instruct", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["context_window"], data["max_output_tokens"], data["structured_modes"]) == (32_768, 16_384, ["prompt"])
    assert data["pricing"]["prompt"] == "0.00000024" and data["pricing"]["completion"] == "0.00000024"
    assert data["sources"] == {
        "context_window": "catalog", "max_output_tokens": "catalog", "structured_modes": "catalog", "pricing": "catalog"
    }
    done = run_cli(server, "resolve", "openai/gpt-4o", "--explain")
    assert done.returncode == 0, done.stderr
    assert (
        "facts: context 128000 (plugin), max output 16384 (plugin), modes json_schema > json_object > prompt (plugin), "
        "USD 2.5 / 10 per million input / output tokens (catalog)"
    ) in done.stdout
    assert len(server.catalog_requests) == 1  # resolve read the disk cache
