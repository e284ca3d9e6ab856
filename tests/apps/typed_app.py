"""A small app as a user writes it: `tests/test_front_door.py` runs `mypy --strict` over it, and it must
pass with every type known (no `Any` leaking from the front door)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pydantic

from openrouter_registry import (
    GenerationResult,
    NLPServices,
    OpenRouterService,
    OpenRouterSyncService,
    Provider,
    WebSearch,
)


class City(pydantic.BaseModel):
    city: str
    country: str


CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def main() -> None:
    service: OpenRouterService = NLPServices.openrouter(model_name="openai/gpt-4o-mini", timeout=30)
    async with service:
        g = await service.generate("Where is Lyon?", schema=City, provider=Provider(sort="price"), timeout=5)
        city: City = g.content
        print(city.country.upper())
        text: GenerationResult[str] = await service.generate("Say hi", max_attempts=1, session_id="s-1")
        print(text.content.upper())
        data = await service.generate("Where?", schema=CITY_SCHEMA, plugins=[WebSearch(max_results=2)])
        print(data.content["city"])
        cost: Decimal | None = g.cost
        print(cost)
        async for delta in service.stream("Count to 3", models=["openai/gpt-4o"]):
            print(delta.upper())


def sync_main() -> None:
    with NLPServices.openrouter_sync(model_name="openai/gpt-4o-mini") as client:
        sync: OpenRouterSyncService = client
        g = sync.generate("Where is Lyon?", schema=City)
        print(g.content.city.upper())
        for delta in sync.stream("Count to 3"):
            print(delta.upper())
        vectors = sync.embed(["a", "b"])
        print(len(vectors), vectors.cost)


asyncio.run(main())
sync_main()
