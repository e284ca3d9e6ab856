"""A schema class's own validators (a pydantic ``field_validator``, an attrs validator, a dataclass's
``__post_init__``) that refuse a reply are handled like a JSON Schema failure: re-asked within
``max_reasks``, with the validator's message sent back; the final error keeps the text, model,
generation id, usage and cost of every attempt."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pydantic
import pytest

from openrouter_registry import OpenRouterService, Registry, Settings, StructuredOutputError
from openrouter_registry.testing import FakeOpenRouter, Scripted

MODEL = "openai/gpt-4o"


class PydanticCity(pydantic.BaseModel):
    city: str

    @pydantic.field_validator("city")
    @classmethod
    def capitalised(cls, value: str) -> str:
        if not value[:1].isupper():
            raise ValueError("the city must start with a capital letter")
        return value


def _capitalised(instance: Any, attribute: Any, value: str) -> None:
    if not value[:1].isupper():
        raise ValueError("the city must start with a capital letter")


@attrs.define
class AttrsCity:
    city: str = attrs.field(validator=_capitalised)


@dataclasses.dataclass
class DataclassCity:
    city: str

    def __post_init__(self) -> None:
        _capitalised(self, None, self.city)


SCHEMAS = [PydanticCity, AttrsCity, DataclassCity]


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as s:
        yield s


def make_service(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False, **overrides)
    return OpenRouterService(settings, registry=Registry(environ={}))


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
async def test_a_validator_failure_is_re_asked_with_its_message(server: FakeOpenRouter, schema: type[Any]) -> None:
    server.enqueue(Scripted.chat({"city": "paris"}, model=MODEL), Scripted.chat({"city": "Paris"}, model=MODEL))
    async with make_service(server) as service:  # OPENROUTER_MAX_REASKS defaults to 1
        g = await service.generate("Extract: paris.", schema=schema, model=MODEL)
    assert g.content == schema(city="Paris") and g.attempts == 2 and len(server.requests) == 2
    reask = server.requests[1].body["messages"]
    assert reask[-2] == {"role": "assistant", "content": '{"city":"paris"}'}
    assert "the city must start with a capital letter" in reask[-1]["content"]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
async def test_the_final_validator_error_keeps_what_was_spent(server: FakeOpenRouter, schema: type[Any]) -> None:
    first, last = Scripted.chat({"city": "paris"}, model=MODEL), Scripted.chat({"city": "lyon"}, model=MODEL)
    server.enqueue(first, last)
    async with make_service(server) as service:
        with pytest.raises(StructuredOutputError) as info:
            await service.generate("Extract: paris.", schema=schema, model=MODEL)
    error = info.value
    assert (error.text, error.model, error.attempts) == ('{"city":"lyon"}', MODEL, 2)
    assert error.generation_id == last.json["id"]
    spent = [s.json["usage"] for s in (first, last)]
    assert error.usage.total_tokens == sum(u["total_tokens"] for u in spent)
    assert error.cost == sum(Decimal(repr(u["cost"])) for u in spent)
    assert f"does not fit {schema.__name__}" in str(error)
    assert any("capital letter" in e for e in error.errors)


async def test_max_reasks_zero_raises_after_one_attempt(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted.chat({"city": "paris"}, model=MODEL))
    async with make_service(server, max_reasks=0) as service:
        with pytest.raises(StructuredOutputError) as info:
            await service.generate("Extract: paris.", schema=PydanticCity, model=MODEL)
    assert info.value.attempts == 1 and len(server.requests) == 1 and info.value.cost is not None
