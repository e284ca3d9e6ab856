"""The typos `mypy --strict` must catch at the front door (`tests/test_front_door.py` expects an error on
each line marked ``# error``, the revealed type on each ``# reveal`` line, and nothing elsewhere)."""

from __future__ import annotations

import pydantic

from openrouter_registry import NLPServices, Provider


class City(pydantic.BaseModel):
    city: str


async def main() -> None:
    service = NLPServices.openrouter(model_name="openai/gpt-4o")
    reveal_type(service)  # reveal: openrouter_registry.service.OpenRouterService
    NLPServices.openrouter(model_nam="openai/gpt-4o")  # error
    await service.generate("Where is Lyon?", scheme=City)  # error
    await service.generate("Where is Lyon?", schema=City, timeout="5")  # error
    await service.generate("Where is Lyon?", provider=Provider(sort="cheapest"))  # error
    text = await service.generate("Where is Lyon?")
    reveal_type(text.content)  # reveal: str
    city = await service.generate("Where is Lyon?", schema=City)
    reveal_type(city.content)  # reveal: mistyped_app.City
    reveal_type(city.cost)  # reveal: decimal.Decimal | None
    client = NLPServices.openrouter_sync(model_name="openai/gpt-4o")
    NLPServices.openrouter_sync(timout=2)  # error
    client.generate("hi", max_attempt=2)  # error
    reveal_type(client.generate("hi", schema=City).content)  # reveal: mistyped_app.City
    reveal_type(client.stream("hi"))  # reveal: openrouter_registry.service.SyncTextStream
