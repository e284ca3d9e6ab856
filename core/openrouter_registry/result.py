"""Value types a generation returns: `Usage`, `Reply` (one decoded HTTP answer) and `GenerationResult`."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Literal, TypeVar

import attrs

from .schemas.fastjson import MAPPING

__all__ = [
    "Usage", "Reply", "ReplyParts", "NO_PARTS", "GenerationResult", "EmbeddingResult", "CostSource", "ToolCall", "add_costs", "add_cost_sources",
    "check_json", "tool_message", "money_json",
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


def _add_numbers(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Two usage detail objects summed key by key where both hold numbers (the right one wins for the rest)."""
    if not left or not right:
        only = left or right
        return dict(only) if only else None
    total = dict(left)
    for key, value in right.items():
        mine = total.get(key)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (mine, value))
        total[key] = mine + value if numbers else value if value is not None else mine
    return total


def _details(value: Any) -> Mapping[str, Any] | None:
    """A usage sub-object (``cost_details``, ``server_tool_use``) as received (decoded JSON), or None."""
    if value is None:  # the usual case for each of them but one; isinstance(None, Mapping) runs the ABC check
        return None
    return value if type(value) is dict else dict(value) if isinstance(value, MAPPING) else None


@attrs.frozen
class Usage:
    """Token counts, summed over every attempt of a generation.

    ``cached_tokens`` were read from the prompt cache, ``cache_write_tokens`` written to it (both are part
    of ``prompt_tokens``); ``reasoning_tokens`` are part of ``completion_tokens`` (some providers report
    more reasoning than completion tokens: both are kept as sent). ``cost_details`` (e.g.
    ``upstream_inference_cost``), ``is_byok`` and ``server_tool_use`` (e.g. ``web_search_requests``) are
    OpenRouter's, as sent (numbers summed over attempts), None when it sent none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cost_details: Mapping[str, Any] | None = attrs.field(default=None, eq=False)
    is_byok: bool | None = attrs.field(default=None, eq=False)
    server_tool_use: Mapping[str, Any] | None = attrs.field(default=None, eq=False)

    def __add__(self, other: Usage) -> Usage:
        return Usage(  # field by field: attrs.astuple costs more than the whole sum
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            _add_numbers(self.cost_details, other.cost_details),
            None if self.is_byok is None and other.is_byok is None else bool(self.is_byok or other.is_byok),
            _add_numbers(self.server_tool_use, other.server_tool_use),
        )

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None) -> Usage:
        """Read OpenRouter's ``usage`` object; missing or null parts count as 0 (None for the details)."""
        if not isinstance(usage, MAPPING):
            return cls()
        get = usage.get
        prompt_details = get("prompt_tokens_details")
        completion_details = get("completion_tokens_details")
        # each count: a plain int in range as is, anything else through `_int` (the usual reply's
        # counts are all plain ints: one type test each instead of a call)
        prompt, completion, total = get("prompt_tokens"), get("completion_tokens"), get("total_tokens")
        if type(prompt) is not int or not 0 <= prompt <= _MAX_COUNT:
            prompt = _int(prompt)
        if type(completion) is not int or not 0 <= completion <= _MAX_COUNT:
            completion = _int(completion)
        if type(total) is not int or not 0 < total <= _MAX_COUNT:
            total = _int(total) or prompt + completion
        cached = written = reasoning = 0
        if prompt_details is not None and isinstance(prompt_details, MAPPING):
            cached, written = _int(prompt_details.get("cached_tokens")), _int(prompt_details.get("cache_write_tokens"))
        if completion_details is not None and isinstance(completion_details, MAPPING):
            reasoning = _int(completion_details.get("reasoning_tokens"))
        byok = get("is_byok")
        return cls(
            prompt,
            completion,
            total,
            cached,
            reasoning,
            written,
            _details(get("cost_details")),
            byok if byok is True or byok is False else None,
            _details(get("server_tool_use")),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {  # field by field: attrs.asdict costs several times more (batch writes one per row)
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }
        if self.cost_details is not None:
            out["cost_details"] = dict(self.cost_details)
        if self.is_byok is not None:
            out["is_byok"] = self.is_byok
        if self.server_tool_use is not None:
            out["server_tool_use"] = dict(self.server_tool_use)
        return out


@attrs.frozen
class ToolCall:
    """One function call the model asked for.

    ``id`` as the provider sent it (``call_...``, ``toolu_...``, ``functions.add:0``, ...), ``name`` the
    function, ``arguments_text`` the raw JSON string, ``arguments`` the parsed value (``{}`` for an empty
    string; locally repaired when the JSON was malformed; None when it could not be read) and
    ``errors`` what is wrong with it: arguments that do not validate against the tool's parameters, or
    a tool the call did not declare (empty when it validates, and for tools given only in ``extra_body``,
    which are not checked)."""

    id: str
    name: str
    arguments: Any
    arguments_text: str
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "arguments_text": self.arguments_text}


def tool_message(call: ToolCall | str, content: Any) -> dict[str, Any]:
    """The message that gives a tool's result back: ``{"role": "tool", "tool_call_id": ..., "content": ...}``.
    ``call`` is the `ToolCall` (or its id); ``content`` a string as it is, anything else as JSON text."""
    from .errors import ConfigurationError

    call_id = call.id if isinstance(call, ToolCall) else call
    if not isinstance(call_id, str) or not call_id:
        raise ConfigurationError(f"tool_message() needs a ToolCall or its id (a non-empty string), got {call!r}")
    if not isinstance(content, str):
        import json

        check_json(content, "the tool's result")
        content = json.dumps(content, ensure_ascii=False, allow_nan=False)
    return {"role": "tool", "tool_call_id": call_id, "content": content}


#: The largest ``usage.cost`` of one reply taken as a cost (USD); a larger one (1e303) is not a price
#: anyone was billed, and summing it would reach infinity: it is ignored with a warning.
MAX_REPLY_COST = Decimal(1_000_000)
_MAX_FLOAT_COST = float(MAX_REPLY_COST)  # exactly a float: a float cost compares with it as with the Decimal


def cost_from_api(usage: Mapping[str, Any] | None) -> Decimal | None:
    """``usage.cost`` in USD as a `Decimal` (from a number, through its shortest repr: the digits
    OpenRouter sent, or a numeric string), or None when OpenRouter gave none or gave something that is
    not a cost (negative, not finite, not a number, above `MAX_REPLY_COST`; all but a missing one with
    a warning)."""
    if not isinstance(usage, MAPPING):
        return None
    cost = usage.get("cost")
    if type(cost) is float and 0.0 <= cost <= _MAX_FLOAT_COST:  # the usual case (NaN and infinities fail it)
        return Decimal(repr(cost))  # within the bounds: the repr of a float in them is in them too
    if cost is None:
        return None
    value: Decimal | None = None
    if isinstance(cost, bool) or not isinstance(cost, (int, float, str)) or (isinstance(cost, str) and len(cost) > 64):
        value = None
    elif isinstance(cost, int) and not -(10**309) < cost < 10**309:  # Decimal would keep every digit
        value = None
    else:
        try:
            value = Decimal(repr(cost) if isinstance(cost, float) else cost.strip() if isinstance(cost, str) else cost)
        except (InvalidOperation, ValueError):
            value = None
    if value is not None and value.is_finite() and 0 <= value <= MAX_REPLY_COST:
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


#: A cost of 10**309 USD or more is not a cost (beyond a float's range, as costs were read before).


def money_json(cost: Decimal | None) -> str | None:
    """A cost as JSON writes it: an exact decimal string (``"0.000123"``), or null (also for a cost
    that is not a finite amount)."""
    return None if cost is None or not cost.is_finite() else str(cost)


def add_costs(total: Decimal | None, more: Decimal | None) -> Decimal | None:
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
class ReplyParts:
    """What a reply carries besides its text and totals: one value, shared by `Reply` and
    `GenerationResult` (most replies carry none of it: they share `NO_PARTS`)."""

    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    reasoning_details: tuple[Mapping[str, Any], ...] = attrs.field(default=(), eq=False)
    annotations: tuple[Mapping[str, Any], ...] = attrs.field(default=(), eq=False)
    images: tuple[Mapping[str, Any], ...] = attrs.field(default=(), eq=False)
    #: The assistant message as received (``tool_calls`` and ``reasoning_details`` untouched), or None.
    message: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)


#: The parts of a reply of text alone.
NO_PARTS = ReplyParts()


class _WithParts:
    """A reply's `ReplyParts` read as its own attributes (one field to set, not six, on the hot path)."""

    __slots__ = ()
    parts: ReplyParts

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.parts.tool_calls

    @property
    def reasoning(self) -> str | None:
        return self.parts.reasoning

    @property
    def reasoning_details(self) -> tuple[Mapping[str, Any], ...]:
        return self.parts.reasoning_details

    @property
    def annotations(self) -> tuple[Mapping[str, Any], ...]:
        return self.parts.annotations

    @property
    def images(self) -> tuple[Mapping[str, Any], ...]:
        return self.parts.images

    @property
    def message(self) -> Mapping[str, Any] | None:
        return self.parts.message


@attrs.frozen
class Reply(_WithParts):
    """One decoded chat completion: what the model said and what it cost."""

    text: str
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    usage: Usage = Usage()
    cost: Decimal | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    #: "api" when OpenRouter reported the cost, "catalog" when it was computed from catalog prices.
    cost_source: CostSource | None = attrs.field(
        default=attrs.Factory(_api_when_reported, takes_self=True), kw_only=True
    )
    parts: ReplyParts = attrs.field(default=NO_PARTS, kw_only=True)


@attrs.frozen
class GenerationResult(_WithParts, Generic[T]):
    """A finished generation.

    ``content`` is the validated data (dict/list for a JSON Schema, an instance for a class schema,
    the text when no schema was given); ``text`` the model's raw reply; ``model``, ``provider`` and
    ``generation_id`` as OpenRouter reported them; ``mode`` how the structure was obtained;
    ``attempts`` the HTTP requests spent (retries and re-asks included); ``usage`` and ``cost`` summed
    over every billed attempt (``cost`` a `decimal.Decimal` in USD); ``cost_source`` says where the cost came from: ``"api"`` (OpenRouter's
    ``usage.cost``), ``"catalog"`` (a reply without ``usage.cost``, priced from the model catalog), or
    None with ``cost`` None (neither was available).

    What else the reply carried: ``finish_reason`` (``"stop"``, ``"length"``, ``"tool_calls"``, ...),
    ``tool_calls`` (`ToolCall` values; a reply of only tool calls has ``text`` "" and ``finish_reason``
    "tool_calls"), ``reasoning`` (the model's reasoning text, or None; a ``<think>`` block at the start
    of the content is moved here when no reasoning field came), ``reasoning_details``, ``annotations``
    (URL citations, file annotations) and ``images`` (output images), each exactly as received.
    `assistant_message` is the message to append to the conversation for the next turn.
    """

    content: T
    text: str
    model: str | None
    provider: str | None
    generation_id: str | None
    mode: str | None
    attempts: int
    usage: Usage
    cost: Decimal | None
    generator: str = ""
    plugin: str = ""
    cost_source: CostSource | None = None
    #: The plugin whose ``parse_structured`` produced ``content`` (``"openrouter_registry"`` for the
    #: core's generic parser); None for a text reply (no schema).
    parser: str | None = None
    finish_reason: str | None = attrs.field(default=None, kw_only=True)
    #: What prompt caching saved in USD against the uncached input price, from the model catalog's
    #: prices (negative for a first, cold write; 0 when nothing was read or written; None without catalog
    #: prices for a call that used the cache).
    cache_saving: Decimal | None = attrs.field(default=None, kw_only=True)
    #: ``tool_calls``, ``reasoning``, ``reasoning_details``, ``annotations``, ``images`` (read them as attributes).
    parts: ReplyParts = attrs.field(default=NO_PARTS, kw_only=True, repr=False)

    def assistant_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation before the next turn: the reply's
        content, and its ``tool_calls`` and ``reasoning_details`` exactly as received (providers that
        sign their reasoning, such as Gemini 3, refuse a tool turn without them)."""
        return assistant_message_of(self.message, self.text, self.tool_calls, self.reasoning_details)

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
            "cost": money_json(self.cost),
            "cost_source": self.cost_source,
            "generator": self.generator,
            "plugin": self.plugin,
            "parser": self.parser,
            "finish_reason": self.finish_reason,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "reasoning": self.reasoning,
            "reasoning_details": [dict(detail) for detail in self.reasoning_details],
            "annotations": [dict(item) for item in self.annotations],
            "images": [dict(item) for item in self.images],
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


def assistant_message_of(
    message: Mapping[str, Any] | None,
    text: str,
    tool_calls: tuple[ToolCall, ...] = (),
    reasoning_details: tuple[Mapping[str, Any], ...] = (),
) -> dict[str, Any]:
    """An assistant message for the next turn: from the message as received when there is one (its
    ``tool_calls`` and ``reasoning_details`` untouched), else built from the reply's parts."""
    out: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
    raw_calls = message.get("tool_calls") if message is not None else None
    if isinstance(raw_calls, list) and raw_calls:
        out["tool_calls"] = raw_calls
    elif tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_text}}
            for c in tool_calls
        ]
    raw_details = message.get("reasoning_details") if message is not None else None
    if isinstance(raw_details, list) and raw_details:
        out["reasoning_details"] = raw_details
    elif reasoning_details:
        out["reasoning_details"] = list(reasoning_details)
    return out


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
    cost: Decimal | None
    attempts: int

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0

    def __len__(self) -> int:
        """The number of vectors (one per input text)."""
        return len(self.vectors)

    def __getitem__(self, index: int) -> list[float]:
        return self.vectors[index]

    def __iter__(self) -> Iterator[list[float]]:
        return iter(self.vectors)
