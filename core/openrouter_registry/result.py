"""Value types a generation returns: `Usage`, `Reply` (one decoded HTTP answer) and `GenerationResult`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

import attrs

from .schemas.fastjson import MAPPING

__all__ = [
    "Usage", "Reply", "GenerationResult", "EmbeddingResult", "CostSource", "add_costs", "add_cost_sources", "check_json",
]

T = TypeVar("T")

#: Where a cost came from: OpenRouter's ``usage.cost`` ("api") or the model catalog's prices ("catalog").
CostSource = Literal["api", "catalog"]

#: Content nested deeper than this is refused by `check_json` (``json.dumps`` recurses per level).
MAX_JSON_DEPTH = 256


#: Larger token counts are not counts (a 64-bit signed maximum).
_MAX_COUNT = 2**63 - 1


def _int(value: Any) -> int:
    """A token count from the API: a non-negative integer (an integral float counts too); anything
    else (missing, null, text, negative, fractional, absurdly large) is 0, i.e. "not reported"."""
    if type(value) is int:  # the usual case, first
        return value if 0 <= value <= _MAX_COUNT else 0
    count: int
    if isinstance(value, float) and value.is_integer():
        count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        return 0
    return count if 0 <= count <= _MAX_COUNT else 0


@attrs.frozen
class Usage:
    """Token counts, summed over every attempt of a generation."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(  # field by field: attrs.astuple costs more than the whole sum
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None) -> Usage:
        """Read OpenRouter's ``usage`` object; missing or null parts count as 0."""
        if not isinstance(usage, MAPPING):
            return cls()
        get = usage.get
        prompt_details = get("prompt_tokens_details")
        completion_details = get("completion_tokens_details")
        prompt, completion = _int(get("prompt_tokens")), _int(get("completion_tokens"))
        return cls(
            prompt,
            completion,
            _int(get("total_tokens")) or prompt + completion,
            _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, MAPPING) else 0,
            _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, MAPPING) else 0,
        )

    def to_dict(self) -> dict[str, int]:
        return {  # field by field: attrs.asdict costs several times more (batch writes one per row)
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


#: The largest ``usage.cost`` of one reply taken as a cost (USD); a larger one (1e303) is not a price
#: anyone was billed, and summing it would reach infinity: it is ignored with a warning.
MAX_REPLY_COST = 1_000_000.0


def cost_from_api(usage: Mapping[str, Any] | None) -> float | None:
    """``usage.cost`` in USD (a number or a numeric string), or None when OpenRouter gave none or
    gave something that is not a cost (negative, not finite, not a number, above `MAX_REPLY_COST`;
    all but a missing one with a warning)."""
    if not isinstance(usage, MAPPING):
        return None
    cost = usage.get("cost")
    if cost is None:
        return None
    value = None
    if not isinstance(cost, bool) and isinstance(cost, (int, float, str)) and not (isinstance(cost, str) and len(cost) > 64):
        try:
            value = float(cost)
        except (ValueError, OverflowError):  # OverflowError: an integer beyond a float's range
            value = None
    if value is not None and math.isfinite(value) and 0 <= value <= MAX_REPLY_COST:
        return value
    import logging

    if isinstance(cost, str):
        shown = ascii(cost)[:40]
    elif isinstance(cost, int) and not isinstance(cost, bool) and cost.bit_length() > 64:
        shown = f"(an integer of {cost.bit_length()} bits)"
    else:
        shown = repr(cost)[:40] if isinstance(cost, (int, float)) else f"(a {type(cost).__name__})"
    logging.getLogger("openrouter_registry").warning(
        "Ignoring the reply's usage.cost %s: not a cost between 0 and %s USD", shown, MAX_REPLY_COST
    )
    return None


def add_costs(total: float | None, more: float | None) -> float | None:
    """Sum costs where None means "not reported" (None + None stays None)."""
    if more is None:
        return total
    return more if total is None else total + more


def add_cost_sources(total: CostSource | None, more: CostSource | None) -> CostSource | None:
    """The source of a summed cost: "catalog" as soon as one part came from the catalog."""
    if total is None or more is None:
        return total or more
    return "catalog" if "catalog" in (total, more) else "api"


def _api_when_reported(reply: Reply) -> CostSource | None:
    return "api" if reply.cost is not None else None


@attrs.frozen
class Reply:
    """One decoded chat completion: what the model said and what it cost."""

    text: str
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    usage: Usage = Usage()
    cost: float | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    #: "api" when OpenRouter reported the cost, "catalog" when it was computed from catalog prices.
    cost_source: CostSource | None = attrs.field(
        default=attrs.Factory(_api_when_reported, takes_self=True), kw_only=True
    )


@attrs.frozen
class GenerationResult(Generic[T]):
    """A finished generation.

    ``content`` is the validated data (dict/list for a JSON Schema, an instance for a class schema,
    the text when no schema was given); ``text`` the model's raw reply; ``model``, ``provider`` and
    ``generation_id`` as OpenRouter reported them; ``mode`` how the structure was obtained;
    ``attempts`` the HTTP requests spent (retries and re-asks included); ``usage`` and ``cost`` summed
    over every billed attempt; ``cost_source`` says where the cost came from: ``"api"`` (OpenRouter's
    ``usage.cost``), ``"catalog"`` (a reply without ``usage.cost``, priced from the model catalog), or
    None with ``cost`` None (neither was available).
    """

    content: T
    text: str
    model: str | None
    provider: str | None
    generation_id: str | None
    mode: str | None
    attempts: int
    usage: Usage
    cost: float | None
    generator: str = ""
    plugin: str = ""
    cost_source: CostSource | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `generate --json` object (``content`` as JSON data). Always strict JSON:
        ``json.dumps(result.to_dict(), allow_nan=False)`` never fails. Content that JSON cannot hold
        (NaN or Infinity, a datetime or set left by a class schema's own conversion) raises
        `ConfigurationError` naming where it is, instead of producing invalid JSON."""
        return {
            "content": self.content_json(),
            "text": self.text,
            "model": self.model,
            "provider": self.provider,
            "generation_id": self.generation_id,
            "mode": self.mode,
            "attempts": self.attempts,
            "usage": self.usage.to_dict(),
            "cost": self.cost if self.cost is None or math.isfinite(self.cost) else None,
            "cost_source": self.cost_source,
            "generator": self.generator,
            "plugin": self.plugin,
        }

    def content_json(self) -> Any:
        """``content`` as strict JSON data (what `to_dict` puts under ``content``); raises
        `ConfigurationError` for content JSON cannot hold, as `to_dict` does."""
        content: Any = self.content
        if attrs.has(type(content)):
            from .schemas.schema import unstructure

            content = unstructure(content)
        elif hasattr(content, "model_dump"):
            content = content.model_dump(mode="json")
        elif not isinstance(content, (dict, list, str, int, float, bool, type(None))):
            from .schemas.schema import unstructure

            content = unstructure(content)
        check_json(content, "content")
        return content


def check_json(value: Any, where: str = "value") -> None:
    """Raise `ConfigurationError` naming the first part of ``value`` that strict JSON cannot hold
    (NaN, Infinity, a non-string key, any type but dict, list, str, int, float, bool and None,
    nesting deeper than `MAX_JSON_DEPTH`). Iterative: no recursion whatever the input."""
    from .errors import ConfigurationError

    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        if item is None or isinstance(item, (str, bool, int)):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise ConfigurationError(f"{path} is nested deeper than {MAX_JSON_DEPTH} levels, more than JSON encoders write")
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ConfigurationError(f"{path} is {item}, which JSON cannot hold; use a finite number or null")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise ConfigurationError(f"{path} has the key {key!r}; JSON object keys are strings")
                pending.append((inner, f"{path}.{key}", depth + 1))
        elif isinstance(item, (list, tuple)):
            pending.extend((inner, f"{path}[{index}]", depth + 1) for index, inner in enumerate(item))
        else:
            raise ConfigurationError(
                f"{path} is a {type(item).__name__}, which JSON cannot hold; give the schema's field a JSON type "
                "(str, int, float, bool, list, dict) or convert it before serializing"
            )


@attrs.frozen
class EmbeddingResult:
    """Vectors in input order, with the model that ran, usage and cost."""

    vectors: list[list[float]]
    model: str | None
    provider: str | None
    generation_id: str | None
    usage: Usage
    cost: float | None
    attempts: int

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0
