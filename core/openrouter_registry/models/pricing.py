"""Prices from the model catalog: the cost of a reply OpenRouter did not price, and the lowest and
highest price of a call before it is made.

    price_usage(pricing, usage)          # Decimal USD, or None when a needed price is unknown
    priced(reply, generator)             # the reply, with a catalog cost when it carried no usage.cost
    estimate(generator, body, reasks=1)  # CostEstimate(low, high), or None

A reply's cost: uncached prompt tokens at ``prompt``, cached ones at ``input_cache_read`` (else
``prompt``), tokens written to the cache at ``input_cache_write`` (else ``prompt``), completion tokens (reasoning tokens are part of them) at ``completion``, plus ``request``.

An estimate bounds one `OpenRouterService.generate` call. ``low``: the prompt at its fewest tokens
(`preflight.MAX_CHARS_PER_TOKEN` characters each) and a one-token reply. ``high``: the prompt at one
token per UTF-8 byte (a byte-level tokenizer never needs more) plus a few tokens per message, a reply
of the whole ``max_tokens`` (else the model's output limit, else the rest of its context window), and,
with a schema, every re-ask (each one resends the conversation with the previous reply).
Mode fallbacks are not counted: a refused mode is not billed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from .catalog import Pricing
from .modes import MODE_MEMORY, route_of
from .preflight import MAX_CHARS_PER_TOKEN, body_characters
from ..result import Reply, Usage

if TYPE_CHECKING:
    from .generator import Generator, Mode

__all__ = [
    "CostEstimate", "price_usage", "priced", "cache_saving", "estimate", "estimate_call", "MESSAGE_OVERHEAD_TOKENS",
    "REASK_OVERHEAD_TOKENS",
]

#: Tokens a chat template adds around each message (role markers, separators), counted in ``high``.
MESSAGE_OVERHEAD_TOKENS = 8
#: Tokens of the re-ask message (the validation errors and the instruction), counted in ``high``.
REASK_OVERHEAD_TOKENS = 1024


class CostEstimate(NamedTuple):
    """The lowest and highest price of a call, in USD (``low, high = await service.estimate_cost(...)``)."""

    low: Decimal
    high: Decimal


def price_usage(pricing: Pricing, usage: Usage) -> Decimal | None:
    """What ``usage`` costs at ``pricing``; None when the prompt or completion price is unknown."""
    if pricing.prompt is None or pricing.completion is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    cache_read = pricing.input_cache_read if pricing.input_cache_read is not None else pricing.prompt
    cache_write = pricing.input_cache_write if pricing.input_cache_write is not None else pricing.prompt
    return (
        (usage.prompt_tokens - cached - written) * pricing.prompt
        + cached * cache_read
        + written * cache_write
        + usage.completion_tokens * pricing.completion
        + (pricing.request or 0)
    )


def cache_saving(pricing: Pricing | None, usage: Usage) -> Decimal | None:
    """What prompt caching saved on ``usage``, in USD, against the same prompt tokens at the uncached
    input price: cached tokens save ``prompt - input_cache_read`` each, written ones cost
    ``input_cache_write - prompt`` more (a cold write is a negative saving; a model the catalog lists
    no write price for bills writes at the input price). Zero when the reply touched no cache; None
    when the catalog has no prompt price, or no cache-read price for tokens that were read."""
    if pricing is None or pricing.prompt is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    if not cached and not written:
        return Decimal(0)
    if cached and pricing.input_cache_read is None:
        return None
    cache_read = pricing.input_cache_read if pricing.input_cache_read is not None else pricing.prompt
    cache_write = pricing.input_cache_write if pricing.input_cache_write is not None else pricing.prompt
    return cached * (pricing.prompt - cache_read) - written * (cache_write - pricing.prompt)


def priced(reply: Reply, generator: Generator) -> Reply:
    """``reply`` as is when OpenRouter reported its cost; else with the cost from the catalog's prices
    (``cost_source`` "catalog") when the catalog prices the model."""
    if reply.cost is not None:
        return reply
    pricing = generator.facts().pricing
    cost = price_usage(pricing, reply.usage) if pricing is not None else None
    if cost is None:
        return reply
    return attrs.evolve(reply, cost=cost, cost_source="catalog")


def _utf8_bytes(body: Mapping[str, Any]) -> int:
    messages = body.get("messages") or []
    text = json.dumps([m.get("content") for m in messages if isinstance(m, Mapping)], ensure_ascii=False)
    size = len(text.encode())
    if body.get("response_format") is not None:
        size += len(json.dumps(body["response_format"], ensure_ascii=False).encode())
    if body.get("tools"):
        size += len(json.dumps(body["tools"], ensure_ascii=False).encode())
    return size + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)


def estimate(generator: Generator, body: Mapping[str, Any], *, reasks: int = 0) -> CostEstimate | None:
    """The price range of sending ``body`` (and up to ``reasks`` re-asks) to ``generator``'s model;
    None when the catalog has no price for it or no output bound is known."""
    facts = generator.facts()
    pricing = facts.pricing
    if pricing is None or pricing.prompt is None or pricing.completion is None:
        return None
    fewest = math.ceil(body_characters(body) / MAX_CHARS_PER_TOKEN)
    most = _utf8_bytes(body)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        output = max_tokens
    elif facts.max_output_tokens is not None:
        output = facts.max_output_tokens
    elif facts.context_window is not None:
        output = max(1, facts.context_window - fewest)
    else:
        return None
    request = pricing.request or Decimal(0)
    low = fewest * pricing.prompt + pricing.completion + request
    high = Decimal(0)
    for attempt in range(reasks + 1):
        prompt = most + attempt * (output + REASK_OVERHEAD_TOKENS)
        high += prompt * pricing.prompt + output * pricing.completion + request
    return CostEstimate(low, high)


def estimate_call(
    generator: Generator,
    conversation: Sequence[Mapping[str, Any]],
    schema: Any,
    max_tokens: int | None,
    extra_body: Mapping[str, Any] | None,
    reasks: int,
) -> CostEstimate | None:
    """`estimate` for the request `OpenRouterService.generate` would send first: the mode it would use
    (learned, else the generator's first), the same body; re-asks only with a schema."""
    from ..schemas.schema import to_json_schema

    json_schema = to_json_schema(schema)
    mode: Mode = "prompt"
    if json_schema is not None:
        modes = generator.facts().structured_modes
        learned = MODE_MEMORY.get(generator.model, route_of(extra_body), generator.settings)
        mode = learned if learned in modes else modes[0]
    body = generator.build_body(conversation, mode=mode, schema=json_schema, max_tokens=max_tokens, extra_body=extra_body)
    return estimate(generator, body, reasks=reasks if json_schema is not None else 0)
