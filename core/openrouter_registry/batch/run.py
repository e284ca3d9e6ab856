"""Batch runs: many generations through `OpenRouterService.generate`, as a stream of result rows.

    async with NLPServices.openrouter() as service:
        run = service.batch(items, schema=CITY, concurrency=64, max_cost="2.50")
        async for row in run:                  # BatchRow, in completion order; errors are rows too
            ...
        run.summary()                          # BatchSummary: counts, tokens, exact cost, latency, concurrency

Items are mappings ``{"id": ..., "prompt": "..."}``, ``{"id": ..., "messages": [...]}``, or any mapping
rendered through ``template`` (``"Extract the city from: {text}"``); a sync or an async iterable, read
lazily (only as many items are held as there are rows in flight). Every row goes through
`OpenRouterService.generate`: the batch adds scheduling, never a request path of its own.

Scheduling: at most ``concurrency`` rows in flight. When HTTP 429s (seen through `events` as the
transport retries, scoped to this run's tasks) pass 5% of the recent answers, the limit halves (at most
once per round of requests) and new launches pause for the ``Retry-After`` wait; each round of ``limit``
rows completed without a 429 adds ``max(1, concurrency // 32)`` slots back (additive increase, up to
``concurrency``). See `_Limiter`. ``max_cost`` (USD) stops launching when the finished rows' exact cost
plus a bound for each row in flight plus the next row's bound would pass it; until one row has come back
with its cost only one row is in flight, and a billed row without any known cost stops the run (see
`BatchRun._budget_allows`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import math
import operator
import re
import string
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import APIError, ConfigurationError, OpenRouterError, RateLimitError, StructuredOutputError
from ..http.events import RetryEvent, add_observer
from ..result import GenerationResult, Usage, money_json

if TYPE_CHECKING:
    from ..engine.calls import Engine
    from .shared import JobLedger

__all__ = [
    "BatchRow",
    "BatchError",
    "BatchRun",
    "BatchSummary",
    "ConcurrencyReport",
    "InputLine",
    "INPUT_ERROR",
    "NOT_STARTED",
    "in_input_order",
    "DUPLICATE_ID",
    "check_template",
    "money",
]

log = logging.getLogger("openrouter_registry")

#: ``error.type`` of a row whose input could not be used (not JSON, no id, nothing to send, template field missing).
INPUT_ERROR = "InputError"
#: ``error.type`` of an input item that was never sent: the run stopped (``max_cost``, ``cancel()``) first.
NOT_STARTED = "NotStarted"
#: ``error.type`` of a row whose id already came earlier in the same run (Python API with a one-shot iterator).
DUPLICATE_ID = "DuplicateIdError"
#: Seconds an in-flight request needs at least before its 429 can halve the limit again.
_MIN_ROUND = 0.05


def money(value: float | str | int | Decimal | None) -> Decimal | None:
    """A USD amount as `Decimal` (a float through its shortest repr: the digits OpenRouter sent)."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ConfigurationError(f"a USD amount must be a number, got {value!r}")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"a USD amount must be a number, got {value!r}") from None
    if not amount.is_finite():
        raise ConfigurationError(f"a USD amount must be finite, got {value!r}")
    return amount


# --- rows -------------------------------------------------------------------------------------------


@attrs.frozen
class BatchError:
    """Why a row failed: ``type`` is the error class name (``RateLimitError``, ``StructuredOutputError``,
    ``InputError``, ``DuplicateIdError``...), ``message`` its one-line text."""

    type: str
    message: str


@attrs.frozen
class BatchRow:
    """The result of one input item. ``ok`` rows have ``content`` (validated data, or the text without a
    schema); failed rows have ``error``. ``line`` is the input line (CLI) or the 1-based position of the
    item (Python). ``attempts`` counts HTTP requests (retries and re-asks included); ``usage`` and ``cost``
    (USD, exact `Decimal`, None when OpenRouter reported none) cover every billed attempt, failed rows
    included; ``latency_s`` runs from launch to the end of the row's last request."""

    id: Any
    ok: bool
    content: Any = None
    error: BatchError | None = None
    model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    mode: str | None = None
    attempts: int = 0
    usage: Usage = Usage()
    cost: Decimal | None = None
    latency_s: float = 0.0
    line: int | None = None
    _result: GenerationResult[Any] | None = attrs.field(default=None, repr=False, eq=False, alias="result")

    @property
    def result(self) -> GenerationResult[Any] | None:
        """The `GenerationResult` of an ok row that a generation produced (None otherwise)."""
        return self._result

    def to_dict(self) -> dict[str, Any]:
        """The output JSON object: ``id``, ``ok``, ``content`` or ``error``, then the facts of the call."""
        data: dict[str, Any] = {"id": self.id, "ok": self.ok}
        if self.ok:
            data["content"] = self._result.content_json() if self._result is not None else self.content
        else:
            assert self.error is not None
            data["error"] = {"type": self.error.type, "message": self.error.message}
        data.update(
            model=self.model,
            provider=self.provider,
            generation_id=self.generation_id,
            mode=self.mode,
            attempts=self.attempts,
            usage=self.usage.to_dict(),
            cost=money_json(self.cost),  # money in JSON: an exact decimal string
            latency_s=round(self.latency_s, 4),
            line=self.line,
        )
        return data


def _failed(id: Any, line: int | None, error_type: str, message: str, **facts: Any) -> BatchRow:
    return BatchRow(id=id, ok=False, error=BatchError(error_type, " ".join(message.split())), line=line, **facts)


def _error_row(id: Any, line: int | None, error: Exception, latency: float) -> BatchRow:
    """A failed generation as a row, with what the error knows about the call."""
    facts: dict[str, Any] = {"latency_s": latency, "attempts": getattr(error, "attempts", 0) or 0}
    if isinstance(error, (APIError, StructuredOutputError)):
        facts.update(model=error.model, generation_id=error.generation_id)
    if isinstance(error, APIError):
        facts["provider"] = error.provider
    if isinstance(error, StructuredOutputError):
        facts["cost"] = money(error.cost)
        if isinstance(error.usage, Usage):
            facts["usage"] = error.usage
    return _failed(id, line, type(error).__name__, str(error), **facts)


# --- input ------------------------------------------------------------------------------------------


@attrs.frozen
class InputLine:
    """An item with its input line number; ``problem`` set when the line could not be read as an object
    (the row then fails with ``InputError`` naming the line). The CLI's reader yields these."""

    line: int
    value: Any = None
    problem: str | None = None


@attrs.frozen
class _Request:
    id: Any
    line: int
    prompt: str | None
    messages: Sequence[Mapping[str, Any]] | None


#: The longest prompt a template may render (characters); a longer one is an `INPUT_ERROR` row, never built.
MAX_PROMPT_CHARS = 32 * 1024 * 1024
_SPEC_NUMBER = re.compile(r"\d+")


def _check_spec(format_spec: str) -> None:
    """Refuse a format spec whose width or precision alone would pass `MAX_PROMPT_CHARS` (``{text:>400000000}``)."""
    for number in _SPEC_NUMBER.findall(format_spec):
        if len(number) > 9 or int(number) > MAX_PROMPT_CHARS:
            raise ValueError(f"the field width or precision {number[:12]} would build a prompt over {MAX_PROMPT_CHARS} characters")


class _JSONFormatter(string.Formatter):
    """`str.format` where dicts and lists are rendered as JSON (not as Python reprs), and where no field,
    nor the whole prompt, may pass `MAX_PROMPT_CHARS` (a width read from the input included)."""

    def __init__(self) -> None:
        self.size = 0

    def format_field(self, value: Any, format_spec: str) -> str:
        _check_spec(format_spec)
        if isinstance(value, (dict, list)) and not format_spec:
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = str(super().format_field(value, format_spec))
        self.size += len(text)
        if self.size > MAX_PROMPT_CHARS:
            raise ValueError(f"the prompt would pass {MAX_PROMPT_CHARS} characters")
        return text


_FORMATTER = _JSONFormatter()


@functools.lru_cache(maxsize=64)
def _plain_fields(template: str) -> tuple[tuple[str, str, int], ...] | None:
    """The field names of ``template`` (once per occurrence) when every one is a plain input key with a
    fixed format spec (``{text}``, ``{n:>4}``), else None (``{a.b}``, ``{a[0]}``, ``{a:{width}}``: only
    `_JSONFormatter` renders those, with its bounds)."""
    try:
        fields = [(name, spec or "", conv) for _, name, spec, conv in _FORMATTER.parse(template) if name is not None]
    except ValueError:
        return None
    if not all(name.isidentifier() and "{" not in spec and conv is None for name, spec, conv in fields):
        return None  # a conversion ({s!a}: ten characters for one) is measured after it, by `_JSONFormatter`
    return tuple((name, spec, max(map(int, _SPEC_NUMBER.findall(spec)), default=0)) for name, spec, _ in fields)


def render(template: str, entry: Mapping[str, Any]) -> str:
    """``template`` filled from ``entry``, dicts and lists as JSON. A template of plain keys whose values
    are strings or numbers is rendered by ``str.format_map`` (in C; the Python ``string.Formatter``
    costs a tenth of a row's CPU) once the sum of their lengths is known to fit `MAX_PROMPT_CHARS`.
    Raises ValueError for a prompt that would be longer."""
    fields = _plain_fields(template)
    if fields is not None:
        size = len(template)
        for name, spec, width in fields:
            value = entry.get(name)
            if isinstance(value, str):
                size += max(len(value), width)
            elif isinstance(value, (int, float)) and width <= 64:
                size += len(format(value, spec))  # a number's text, measured ({n:b} of a 300-digit int: 997)
            else:
                break  # dicts, lists and others: the bounded formatter
        else:
            if size <= MAX_PROMPT_CHARS:
                return template.format_map(entry)
            raise ValueError(f"the prompt would pass {MAX_PROMPT_CHARS} characters")
    formatter = _JSONFormatter()
    formatter.size = _literal_size(template)  # the template's own text counts towards the bound too
    return formatter.vformat(template, (), entry)


def _literal_size(template: str) -> int:
    """The characters of ``template`` outside its fields (0 for a template `str.format` cannot parse: it
    fails the same way when rendered)."""
    try:
        return sum(len(literal) for literal, _, _, _ in _FORMATTER.parse(template))
    except ValueError:
        return 0


def check_template(template: str | None) -> None:
    """Raise `ConfigurationError` for a template that cannot render anything (checked before any request)."""
    if template is None:
        return
    if not isinstance(template, str) or not template.strip():
        raise ConfigurationError("template must be a non-empty string such as 'Extract the city from: {text}'")
    try:
        fields = [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigurationError(f"template {template!r} is not a valid format string: {exc}") from None
    if any(name == "" or name.isdigit() for name in fields):
        raise ConfigurationError("template fields must be named after input keys, e.g. {text}; not {} or {0}")
    try:
        for _, _, spec, _ in _FORMATTER.parse(template):
            _check_spec(spec or "")
    except ValueError as exc:
        raise ConfigurationError(f"template {template!r}: {exc}") from None


def _valid_id(value: Any) -> bool:
    return (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool))


def plain_id(value: Any) -> Any:
    """An id as the data engines give it, made plain: ``numpy.int64(7)`` and other integer types that
    support ``operator.index`` become ``7`` (an int), a ``str`` subclass such as ``numpy.str_`` becomes a
    ``str``; anything else is returned as it is (and refused later if it is no id)."""
    if type(value) is int or type(value) is str or value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    index = getattr(type(value), "__index__", None)
    if index is not None and not isinstance(value, (float, complex)):
        try:
            return operator.index(value)
        except TypeError:
            return value
    return value


def id_key(value: Any) -> str:
    """The text an id is compared by: 1 and "1" are different ids."""
    if type(value) is int:
        return str(value)  # what json.dumps writes, sooner
    return json.dumps(value, ensure_ascii=False)


def _request(entry: Any, position: int, template: str | None) -> _Request | BatchRow:
    """The request an input item asks for, or the `InputError` row that says why there is none."""
    line = position
    if isinstance(entry, InputLine):
        line = entry.line
        if entry.problem is not None:
            value = entry.value if isinstance(entry.value, Mapping) else {}
            return _failed(value.get("id"), line, INPUT_ERROR, f"line {line}: {entry.problem}")
        entry = entry.value
    if not isinstance(entry, Mapping):
        return _failed(None, line, INPUT_ERROR, f"line {line}: expected a JSON object, got {type(entry).__name__}")
    id = plain_id(entry.get("id"))
    if not _valid_id(id):
        shown = "no 'id'" if id is None else f"'id' {id!r}"
        return _failed(None, line, INPUT_ERROR,
                       f"line {line}: {shown}; every row needs an 'id' that is a non-empty string or an integer")
    if template is not None:
        try:
            return _Request(id, line, render(template, entry), None)
        except KeyError as exc:
            return _failed(id, line, INPUT_ERROR, f"line {line}: the template needs {exc.args[0]!r}, which this row lacks")
        except (IndexError, AttributeError, ValueError, TypeError, RecursionError, MemoryError) as exc:
            return _failed(id, line, INPUT_ERROR, f"line {line}: the template cannot render this row: {exc}")
    prompt, messages = entry.get("prompt"), entry.get("messages")
    if (prompt is None) == (messages is None):
        return _failed(id, line, INPUT_ERROR,
                       f"line {line}: a row needs 'prompt' (a string) or 'messages' (a list), or pass a template")
    if prompt is not None and not isinstance(prompt, str):
        return _failed(id, line, INPUT_ERROR, f"line {line}: 'prompt' must be a string")
    if messages is not None and not isinstance(messages, list):
        return _failed(id, line, INPUT_ERROR, f"line {line}: 'messages' must be a list of {{'role', 'content'}} objects")
    return _Request(id, line, prompt, messages)


async def _aiter(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def duplicate_ids(items: Iterable[Any]) -> list[Any]:
    """The ids that occur more than once among ``items`` (mappings or `InputLine`s), in first-repeat order."""
    seen: set[str] = set()
    repeated: dict[str, Any] = {}
    for item in items:
        value = item.value if isinstance(item, InputLine) else item
        id = plain_id(value.get("id")) if isinstance(value, Mapping) else None
        if _valid_id(id):
            key = id_key(id)
            if key in seen:
                repeated.setdefault(key, id)
            seen.add(key)
    return list(repeated.values())


# --- adaptive concurrency ---------------------------------------------------------------------------


@attrs.frozen
class ConcurrencyReport:
    """How the concurrency limit moved: where it started, its lowest, highest and final values, and how
    many times 429s halved it (``decreases``) or a calm round raised it (``increases``)."""

    start: int
    min: int
    max: int
    final: int
    decreases: int
    increases: int

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


class _Limiter:
    """AIMD on the share of 429s among recent answers.

    Every answer updates ``rate``, a moving average of "was it a 429" over about one round of
    requests (``max(slots, 20)`` answers). A 429 that lifts it above `RATE_LIMITED_SHARE` means the
    limit is too high: the limit halves (at most once per round: only a request sent after the last
    decrease can cause another) and launches pause for the ``Retry-After`` wait. A lone 429 among many
    answers is only retried by the transport after its own wait. Each round of clean completions
    (``slots`` rows) adds `step` slots back, up to the starting limit.
    """

    #: Share of 429s among recent answers above which the limit is too high.
    RATE_LIMITED_SHARE = 0.05

    def __init__(self, start: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = start
        self.limit = start
        self.step = max(1, start // 32)
        self.clock = clock
        self.low = self.high = start
        self.decreases = self.increases = 0
        self.paused_until = 0.0
        self.rate = 0.0
        self._last_decrease = -math.inf
        self._credit = 0

    @property
    def slots(self) -> int:
        return max(1, self.limit)

    def _answer(self, rate_limited: bool) -> None:
        self.rate += (float(rate_limited) - self.rate) / max(self.slots, 20)

    def _moved(self) -> None:
        self.low, self.high = min(self.low, self.slots), max(self.high, self.slots)

    def rate_limited(self, sent_at: float, wait: float) -> None:
        """A request sent at ``sent_at`` got a 429 asking to wait ``wait`` seconds."""
        self._answer(True)
        if self.rate <= self.RATE_LIMITED_SHARE:
            return
        now = self.clock()
        self.paused_until = max(self.paused_until, now + wait)
        if sent_at >= self._last_decrease and self.limit > 1:
            # only a request sent under the current limit says the current limit is too high
            self.limit = max(1, self.limit // 2)
            self.decreases += 1
            self._credit = 0
            self._last_decrease = now + max(wait, _MIN_ROUND)
            self._moved()

    def completed(self, clean: bool = True) -> None:
        """A row finished (``clean``: ok, without a 429): after a round of clean ones, `step` more slots."""
        self._answer(False)
        if clean and self.limit < self.ceiling:
            self._credit += 1
            if self._credit >= self.slots:
                self._credit = 0
                self.limit = min(self.ceiling, self.limit + self.step)
                self.increases += 1
                self._moved()

    def pause_left(self) -> float:
        return max(0.0, self.paused_until - self.clock())

    def report(self) -> ConcurrencyReport:
        return ConcurrencyReport(self.ceiling, self.low, self.high, self.slots, self.decreases, self.increases)


# --- statistics -------------------------------------------------------------------------------------


class _Latencies:
    """Quantiles in bounded memory: 1,701 log-spaced buckets 1% wide from 1 ms; the top one holds every
    latency from about 6.2 hours up."""

    RATIO = 1.01
    FLOOR = 0.001

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0

    def add(self, seconds: float) -> None:
        index = 0 if seconds <= self.FLOOR else min(1700, 1 + int(math.log(seconds / self.FLOOR, self.RATIO)))
        self.counts[index] = self.counts.get(index, 0) + 1
        self.n += 1

    def quantile(self, q: float) -> float | None:
        if not self.n:
            return None
        rank, seen = max(1, math.ceil(q * self.n)), 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return self.FLOOR if index == 0 else self.FLOOR * self.RATIO ** (index - 0.5)
        raise AssertionError("unreachable")  # pragma: no cover


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


@attrs.frozen
class BatchSummary:
    """What a run did. ``failed`` maps error type to rows; ``cost`` is the exact sum of the rows' costs
    (``rows_without_cost`` reported none); ``stopped`` is None, ``"budget"`` (``max_cost`` reached) or
    ``"interrupted"``; ``not_started`` counts items never sent (known when the input was counted)."""

    rows: int
    ok: int
    failed: dict[str, int]
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    rows_without_cost: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    wall_s: float
    rows_per_s: float
    concurrency: ConcurrencyReport
    max_cost: Decimal | None
    stopped: str | None
    not_started: int | None
    #: True when ``max_cost`` stopped the run because a billed row reported no cost and the catalog had no price.
    unpriced: bool = False
    #: Prompt tokens read from and written to the prompt cache, and what caching saved (USD, from the
    #: catalog's prices; rows without catalog prices add nothing).
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_saving: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON; money as exact decimal strings (``"cost_usd": "0.0123"``)."""
        return {
            "rows": self.rows,
            "ok": self.ok,
            "failed": dict(sorted(self.failed.items())),
            "requests": self.requests,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens,
                       "cached": self.cached_tokens, "cache_write": self.cache_write_tokens},
            "cache_saving_usd": str(self.cache_saving),
            "cost_usd": str(self.cost),
            "rows_without_cost": self.rows_without_cost,
            "latency_s": {"p50": _round(self.latency_p50_s), "p95": _round(self.latency_p95_s)},
            "wall_s": round(self.wall_s, 3),
            "rows_per_s": round(self.rows_per_s, 2),
            "concurrency": self.concurrency.to_dict(),
            "max_cost_usd": None if self.max_cost is None else str(self.max_cost),
            "stopped": self.stopped,
            "not_started": self.not_started,
            "unpriced": self.unpriced,
        }

    def text(self) -> str:
        """The human summary (several lines)."""
        failed = ", ".join(f"{name} {count}" for name, count in sorted(self.failed.items())) or "none"
        c = self.concurrency
        p50 = "n/a" if self.latency_p50_s is None else f"{self.latency_p50_s:.3f}s"
        p95 = "n/a" if self.latency_p95_s is None else f"{self.latency_p95_s:.3f}s"
        lines = [
            f"rows {self.rows}: ok {self.ok}, failed {self.rows - self.ok} ({failed})",
            f"requests {self.requests}, tokens {self.prompt_tokens} in / {self.completion_tokens} out, "
            f"cost ${self.cost}" + (f" ({self.rows_without_cost} rows reported no cost)" if self.rows_without_cost else ""),
            f"latency p50 {p50}, p95 {p95}; wall {self.wall_s:.2f}s, {self.rows_per_s:.1f} rows/s",
            f"concurrency start {c.start}, min {c.min}, max {c.max}, final {c.final} "
            f"({c.decreases} decreases on 429, {c.increases} increases)",
        ]
        if self.stopped == "budget":
            left = "" if self.not_started is None else f"; {self.not_started} rows not started"
            if self.unpriced:
                lines.append(f"stopped: a row reported no cost and the catalog has no price for the model, so "
                             f"max_cost ${self.max_cost} cannot be held{left}")
            else:
                lines.append(f"stopped: the next row could pass max_cost ${self.max_cost}{left}")
        elif self.stopped == "interrupted":
            left = "" if self.not_started is None else f"; {self.not_started} rows not finished"
            lines.append(f"stopped: interrupted{left}")
        return "\n".join(lines)


class _Stats:
    def __init__(self) -> None:
        self.rows = self.ok = self.requests = self.prompt_tokens = self.completion_tokens = 0
        self.rows_without_cost = self.cached_tokens = self.cache_write_tokens = 0
        self.failed: dict[str, int] = {}
        self.cost = self.cache_saving = Decimal(0)
        self.highest_cost: Decimal | None = None
        self.latencies = _Latencies()

    def add(self, row: BatchRow) -> None:
        self.rows += 1
        if row.ok:
            self.ok += 1
        else:
            assert row.error is not None
            self.failed[row.error.type] = self.failed.get(row.error.type, 0) + 1
        self.requests += row.attempts
        self.prompt_tokens += row.usage.prompt_tokens
        self.completion_tokens += row.usage.completion_tokens
        self.cached_tokens += row.usage.cached_tokens
        self.cache_write_tokens += row.usage.cache_write_tokens
        saving = row.result.cache_saving if row.result is not None else None
        if saving:
            self.cache_saving += saving
        if row.cost is None:
            self.rows_without_cost += row.attempts > 0
        else:
            self.cost += row.cost
            self.highest_cost = row.cost if self.highest_cost is None else max(self.highest_cost, row.cost)
        if row.attempts:
            self.latencies.add(row.latency_s)


# --- budget -----------------------------------------------------------------------------------------


async def _in_flight_bound(
    service: Engine,
    request: _Request,
    *,
    schema: Mapping[str, Any] | None,
    model: str | None,
    max_tokens: int | None,
    highest: Decimal | None,
    extra_body: Mapping[str, Any] | None = None,
) -> Decimal | None:
    """The most one row can cost, for the budget: the ``high`` end of `OpenRouterService.estimate_cost`
    (the catalog's prices: the whole ``max_tokens``, else the model's output limit, and every re-ask), never
    below the highest cost a finished row of this run had; when the catalog does not price the model, that
    highest cost alone; None when neither is known (the run then keeps one row in flight until a cost is)."""
    try:
        estimate = await service.estimate_cost(
            request.prompt, messages=request.messages, schema=schema, model=model, max_tokens=max_tokens,
            extra_body=extra_body,
        )
    except OpenRouterError:
        estimate = None  # the row itself will fail with this error (e.g. ContextLengthError)
    bound = None if estimate is None else money(estimate.high)
    if highest is not None:
        bound = highest if bound is None else max(bound, highest)
    return bound


# --- the run ----------------------------------------------------------------------------------------


class _Flight:
    """One row in flight: its request, its budget bound and when its current attempt was sent."""

    __slots__ = ("request", "bound", "sent_at", "rate_limited")

    def __init__(self, request: _Request, bound: Decimal | None, sent_at: float) -> None:
        self.request, self.bound, self.sent_at, self.rate_limited = request, bound, sent_at, False


class BatchRun:
    """One batch run: iterate it (once) for `BatchRow`s in completion order; `summary()` at any time.

    Built by `OpenRouterService.batch`. ``cancel()`` stops it: nothing more is launched, rows in flight
    are cancelled, rows already finished are still yielded, then the iteration ends (``stopped`` is
    ``"interrupted"``). Errors of a row are rows (``ok`` False), never raised; an invalid argument
    raises `ConfigurationError` when the run is created, before anything is sent.
    """

    def __init__(
        self,
        service: Engine,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        schema: Any = None,
        concurrency: int = 16,
        max_cost: float | str | Decimal | None = None,
        model: str | None = None,
        template: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        total: int | None = None,
        check_duplicates: bool = True,
        ledger: JobLedger | None = None,
    ) -> None:
        from ..schemas.schema import to_json_schema
        from ..schemas.inputs import check_call_options

        check_call_options(temperature, max_tokens)  # what every row would fail with: refused once, up front
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
        self.max_cost = money(max_cost)
        if self.max_cost is not None and self.max_cost <= 0:
            raise ConfigurationError(f"max_cost must be a positive amount of USD, got {max_cost!r}")
        check_template(template)
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, (Iterable, AsyncIterable)):
            raise ConfigurationError("items must be an iterable (or async iterable) of {'id': ..., 'prompt': ...} rows")
        if check_duplicates and isinstance(items, Sequence):
            # a sequence can be read twice: refuse its duplicates before anything is sent
            repeated = duplicate_ids(items)
            if repeated:
                shown = ", ".join(id_key(i) for i in repeated[:5])
                raise ConfigurationError(f"duplicate ids in the batch input: {shown}; every row needs its own id")
            check_duplicates = False
        service.settings.require_api_key()
        self.service = service
        self.items = items
        self.schema = schema
        self.json_schema = to_json_schema(schema)
        self.model = model
        self.template = template
        self.options: dict[str, Any] = {
            "temperature": temperature, "max_tokens": max_tokens, "extra_body": extra_body, "model": model,
        }
        self.total = total
        if ledger is not None and self.max_cost is None:
            raise ConfigurationError("a job ledger shares a budget: pass max_cost with it")
        self.ledger = ledger
        self.limiter = _Limiter(concurrency)
        self.stats = _Stats()
        self.stopped: str | None = None
        self.unpriced = False
        self.in_flight = 0
        self._check_duplicates = check_duplicates
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._iterated = False
        self._cancelled = False
        self._finished: deque[asyncio.Task[BatchRow]] = deque()  # tasks done, not yet yielded
        self._wake = asyncio.Event()  # a task finished, or cancel() was called

    def __repr__(self) -> str:
        return f"BatchRun(rows={self.stats.rows}, in_flight={self.in_flight}, limit={self.limiter.slots})"

    def cancel(self) -> None:
        """Stop launching, cancel the rows in flight, yield what already finished, then end."""
        self.stopped = self.stopped or "interrupted"
        self._cancelled = True
        self._wake.set()

    def summary(self) -> BatchSummary:
        stats = self.stats
        start = self._started_at if self._started_at is not None else time.monotonic()
        wall = (self._ended_at if self._ended_at is not None else time.monotonic()) - start
        not_started = None
        if self.total is not None and self.stopped is not None:
            not_started = max(0, self.total - stats.rows)
        return BatchSummary(
            rows=stats.rows,
            ok=stats.ok,
            failed=dict(stats.failed),
            requests=stats.requests,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            cost=stats.cost,
            rows_without_cost=stats.rows_without_cost,
            latency_p50_s=stats.latencies.quantile(0.5),
            latency_p95_s=stats.latencies.quantile(0.95),
            wall_s=wall,
            rows_per_s=stats.rows / wall if wall > 0 else 0.0,
            concurrency=self.limiter.report(),
            max_cost=self.max_cost,
            stopped=self.stopped,
            not_started=not_started,
            unpriced=self.unpriced,
            cached_tokens=stats.cached_tokens,
            cache_write_tokens=stats.cache_write_tokens,
            cache_saving=stats.cache_saving,
        )

    def __aiter__(self) -> AsyncIterator[BatchRow]:
        if self._iterated:
            raise RuntimeError("a BatchRun can be iterated only once")
        self._iterated = True
        return self._rows()

    # --- machinery -------------------------------------------------------------------------------

    async def _generate(self, flight: _Flight) -> BatchRow:
        request, started = flight.request, time.monotonic()
        try:
            result = await self.service.generate(
                request.prompt, messages=request.messages, schema=self.schema, **self.options
            )
        except Exception as error:  # errors are values: the row says what failed
            if isinstance(error, RateLimitError):
                self.limiter.rate_limited(flight.sent_at, 0.0)
            if not isinstance(error, OpenRouterError):
                log.warning("batch row %r failed unexpectedly: %r", request.id, error)
            return _error_row(request.id, request.line, error, time.monotonic() - started)
        return BatchRow(
            id=request.id,
            ok=True,
            content=result.content,
            model=result.model,
            provider=result.provider,
            generation_id=result.generation_id,
            mode=result.mode,
            attempts=result.attempts,
            usage=result.usage,
            cost=money(result.cost),
            latency_s=time.monotonic() - started,
            line=request.line,
            result=result,
        )

    def _launch(self, request: _Request, bound: Decimal | None) -> tuple[asyncio.Task[BatchRow], _Flight]:
        flight = _Flight(request, bound, time.monotonic())

        def on_retry(event: RetryEvent) -> None:
            if event.rate_limited:
                flight.rate_limited = True
                self.limiter.rate_limited(flight.sent_at, event.wait)
            flight.sent_at = time.monotonic() + event.wait

        context = contextvars.copy_context()
        add_observer(context, on_retry)
        task = asyncio.create_task(self._generate(flight), context=context)
        task.add_done_callback(self._on_done)
        return task, flight

    def _on_done(self, task: asyncio.Task[BatchRow]) -> None:
        self._finished.append(task)
        self._wake.set()

    async def _wait(self, timeout: float | None) -> None:
        """Until a row finishes, `cancel()` is called or ``timeout`` seconds pass (O(1), whatever is in flight)."""
        if self._finished or self._cancelled:
            return
        self._wake.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _committed(self, flights: Iterable[_Flight]) -> Decimal:
        """Spent plus what the rows in flight may cost: each at its estimate or at the highest cost a
        finished row of this run had, whichever is more (the observed cost corrects a wrong catalog);
        plus what the job committed elsewhere when a `JobLedger` is shared."""
        total, highest = self.stats.cost, self.stats.highest_cost or Decimal(0)
        for flight in flights:
            total += highest if flight.bound is None else max(flight.bound, highest)
        if self.ledger is not None:
            total += self.ledger.elsewhere()
        return total

    def _budget_allows(self, bound: Decimal | None, flights: Mapping[Any, _Flight]) -> bool:
        """The budget rule (``max_cost``): until a row of this run has come back with its cost, one row is
        in flight at a time (a catalog price may be wrong or missing: only an observed cost is trusted for
        parallel rows); then a row is launched only when the spend, plus every row in flight at
        max(its estimate, the highest observed cost), plus this row at the same, stays within
        ``max_cost``. A billed row that reports no cost while the catalog has no price stops the run
        (``unpriced``): the budget could not be held. Sets ``stopped`` when nothing more can start."""
        assert self.max_cost is not None
        if self.unpriced:
            self.stopped = self.stopped or "budget"
            return False
        highest = self.stats.highest_cost
        if highest is None and flights:
            return False  # no observed cost yet: one row at a time
        effective = bound if highest is None else highest if bound is None else max(bound, highest)
        if effective is not None and self._committed(flights.values()) + effective > self.max_cost:
            if not flights:
                self.stopped = "budget"
            return False
        return True

    def _note_cost(self, row: BatchRow) -> None:
        if self.max_cost is not None and row.ok and row.cost is None and row.attempts > 0:
            if not self.unpriced:
                log.warning("batch: row %r reported no cost and the catalog has no price for its model: "
                            "max_cost %s cannot be held; no more rows start", row.id, self.max_cost)
            self.unpriced = True

    def _publish(self, flights: Iterable[_Flight]) -> None:
        """Tell the job's other workers what this run has committed (spent, plus known in-flight bounds)."""
        if self.ledger is not None:
            own = self.stats.cost + sum((f.bound for f in flights if f.bound is not None), Decimal(0))
            self.ledger.publish(own)

    async def _rows(self) -> AsyncIterator[BatchRow]:
        self._started_at = time.monotonic()
        source = _aiter(self.items).__aiter__()
        flights: dict[asyncio.Task[BatchRow], _Flight] = {}
        seen: set[str] = set()
        held: tuple[_Request, Decimal | None] | None = None  # read, but waiting for budget
        position, exhausted = 0, False
        if self.ledger is not None and self.max_cost is not None and self.ledger.elsewhere() >= self.max_cost:
            self.stopped = "budget"  # the job's other runs spent it all: launch nothing

        try:
            while True:
                # launch while there is room, no pause, budget and input
                while not self._cancelled and self.stopped is None and len(flights) < self.limiter.slots:
                    if self.limiter.pause_left() > 0:
                        break
                    if held is None:
                        if exhausted:
                            break
                        try:
                            entry = await source.__anext__()
                        except StopAsyncIteration:
                            exhausted = True
                            break
                        position += 1
                        prepared = _request(entry, position, self.template)
                        if isinstance(prepared, _Request) and self._check_duplicates:
                            key = id_key(prepared.id)
                            if key in seen:
                                prepared = _failed(prepared.id, prepared.line, DUPLICATE_ID,
                                                   f"line {prepared.line}: id {key} already came earlier in this batch; not sent")
                            seen.add(key)
                        if isinstance(prepared, BatchRow):
                            self.stats.add(prepared)
                            yield prepared
                            continue
                        bound = None
                        if self.max_cost is not None:
                            bound = await _in_flight_bound(
                                self.service, prepared, schema=self.json_schema, model=self.model,
                                max_tokens=self.options["max_tokens"], highest=self.stats.highest_cost,
                                extra_body=self.options["extra_body"],
                            )
                        held = (prepared, bound)
                    request, bound = held
                    if self.max_cost is not None and not self._budget_allows(bound, flights):
                        break
                    held = None
                    task, flight = self._launch(request, bound)
                    flights[task] = flight
                    self.in_flight = len(flights)
                    self._publish(flights.values())

                if not flights:
                    if self.unpriced and held is not None:
                        self.stopped = self.stopped or "budget"
                    if self._cancelled or self.stopped is not None or (exhausted and held is None):
                        break
                    await self._wait(self.limiter.pause_left())  # a 429 pause
                    continue
                pause = self.limiter.pause_left()
                await self._wait(pause if pause > 0 else None)
                if self._cancelled:
                    for task in flights:
                        task.cancel()
                    await asyncio.gather(*flights, return_exceptions=True)
                while self._finished:
                    task = self._finished.popleft()
                    flight_done = flights.pop(task)
                    if task.cancelled():
                        continue
                    row = task.result()
                    self.limiter.completed(row.ok and not flight_done.rate_limited)
                    self.stats.add(row)
                    self._note_cost(row)
                    self.in_flight = len(flights)
                    self._publish(flights.values())
                    yield row
                if self._cancelled and not flights:
                    break
                if held is not None and self.max_cost is not None:
                    # a finished row may have lowered the bound (its exact cost replaced its estimate)
                    request, bound = held
                    if bound is not None and self.stats.highest_cost is not None:
                        bound = max(bound, self.stats.highest_cost)
                    elif bound is None:
                        bound = self.stats.highest_cost
                    held = (request, bound)
        finally:
            for task in flights:
                task.cancel()
            if flights:
                await asyncio.gather(*flights, return_exceptions=True)
            self.in_flight = 0
            self._ended_at = time.monotonic()
            if self.ledger is not None:
                self.ledger.finish(self.stats.cost)
            if self.stopped == "budget" and held is not None:
                log.info("batch stopped by max_cost %s after %d rows", self.max_cost, self.stats.rows)


async def in_input_order(run: BatchRun, items: Sequence[Any]) -> list[BatchRow]:
    """Every row of ``run`` over the sequence ``items``, one per item, in input order: an item the run
    never started (the budget or a stop came first) gets a row marked `NOT_STARTED`, never a gap."""
    placed: list[BatchRow | None] = [None] * len(items)
    async for row in run:
        if row.line is not None and 1 <= row.line <= len(items):
            placed[row.line - 1] = row
    why = "the budget (max_cost) was reached" if run.stopped == "budget" else "the run was stopped"
    return [
        row if row is not None else _failed(_id_of(items[i]), i + 1, NOT_STARTED, f"not started: {why} before this row")
        for i, row in enumerate(placed)
    ]


def _id_of(item: Any) -> Any:
    value = item.value if isinstance(item, InputLine) else item
    return plain_id(value.get("id")) if isinstance(value, Mapping) else None
