"""A bounded tool loop: ask, run the functions the model calls, give their results back, until it answers.

    result = await service.run_tools("What is 2 + 3?", tools=[add], max_rounds=4)
    result.content, result.rounds, result.usage, result.cost, result.transcript

Each round is one `Engine.generate` call (its retries, mode fallbacks and re-asks included) with the
conversation so far. The functions of one round run concurrently (sync ones on worker threads), each
within ``tool_timeout`` seconds. A function that raises, a call to an unknown tool, arguments that do
not validate and a function that takes too long all go back to the model as that call's result
(``"error: ..."``); none of them escapes. The loop stops when a reply holds no tool calls (with
``schema``, that answer is validated like any structured reply); past ``max_rounds`` rounds it raises
`ToolLoopError` with the transcript, usage and cost. A forcing ``tool_choice`` ("required", a tool's
name) holds for the first round only; later rounds use "auto", so the model can answer.

With a tracer provider set, the loop is one ``invoke_agent`` span (the rounds' totals on it) whose
children are each round's chat span and an ``execute_tool {name}`` span per tool call, current while
the function runs; see `openrouter_registry.engine.otel`.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError, ToolLoopError
from ..result import CostSource, GenerationResult, ToolCall, Usage, add_cost_sources, add_costs, tool_message
from . import observe
from .options import check_transport_options

if TYPE_CHECKING:
    from ..schemas.tools import Tool
    from .calls import Engine, _Call
    from .observe import Watch
    from .otel import LoopSpan

__all__ = ["ToolRunResult", "run_tools", "DEFAULT_TOOL_TIMEOUT", "MAX_RESULT_CHARS"]

#: Seconds one tool function may run before its call is answered with a timeout error.
DEFAULT_TOOL_TIMEOUT = 60.0
#: A tool result longer than this is cut (its start is kept, with a marker) before it is sent.
MAX_RESULT_CHARS = 100_000


@attrs.frozen
class ToolRunResult:
    """What `run_tools` returns: the final answer's ``content`` (validated data with a schema, else
    the text), the last `GenerationResult` (``final``), the ``transcript`` (every message of the
    conversation, the tool calls and their results included), the ``rounds`` run, and ``usage``,
    ``cost``, ``cost_source`` and ``attempts`` summed over every round."""

    content: Any
    final: GenerationResult[Any]
    transcript: tuple[Mapping[str, Any], ...]
    rounds: int
    usage: Usage
    cost: Decimal | None
    cost_source: CostSource | None
    attempts: int


def _content(value: Any) -> str:
    """A function's return value as a tool message's content: text as it is, else JSON (else str())."""
    if isinstance(value, str):
        text = value
    else:
        from ..schemas.schema import unstructure

        try:
            text = json.dumps(unstructure(value), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > MAX_RESULT_CHARS:
        text = f"{text[:MAX_RESULT_CHARS]}\n[... {len(text) - MAX_RESULT_CHARS} characters left out ...]"
    return text


async def _run_one(call: ToolCall, tools: Mapping[str, Tool], timeout: float, loop: LoopSpan | None) -> str:
    """One call's result content; every failure is an ``error: ...`` content, never an exception.
    Traced (``loop``), the call is an ``execute_tool`` span, current while the function runs."""
    if loop is None:
        return (await _execute(call, tools, timeout))[0]
    tool = tools.get(call.name)
    span = loop.tool(call.name, call.id, None if tool is None else tool.description, call.arguments_text)
    span.attach()  # this task's context: the function (and a sync one's worker thread) runs under the span
    try:
        content, failure = await _execute(call, tools, timeout)
    except BaseException as error:  # cancelled: the loop was
        span.failed(type(error).__name__, error, str(error))
        raise
    if failure is None:
        span.succeeded(content)
    else:
        span.failed(failure[0], failure[1], content)
    return content


async def _execute(
    call: ToolCall, tools: Mapping[str, Tool], timeout: float
) -> tuple[str, tuple[str, BaseException | None] | None]:
    """The call's result content, and what failed (its ``error.type`` and exception) or None."""
    tool = tools.get(call.name)
    if tool is None:
        known = ", ".join(tools)
        return f"error: there is no tool named {call.name!r}; the tools are: {known}", ("unknown_tool", None)
    if call.errors:
        return "error: invalid arguments: " + "; ".join(call.errors), ("invalid_arguments", None)
    if not isinstance(call.arguments, dict):
        got = call.arguments_text[:200]
        return f"error: the arguments must be a JSON object, got {got!r}", ("invalid_arguments", None)
    function = tool.function
    assert function is not None  # run_tools takes callables only
    try:
        kwargs = tool.arguments(call.arguments)
        if inspect.iscoroutinefunction(function):
            value = await asyncio.wait_for(function(**kwargs), timeout)
        else:
            value = await asyncio.wait_for(asyncio.to_thread(function, **kwargs), timeout)
            if inspect.isawaitable(value):
                value = await asyncio.wait_for(value, timeout)
    except asyncio.TimeoutError as exc:
        return f"error: {call.name} did not finish within {timeout:g} seconds", ("TimeoutError", exc)
    except ConfigurationError as exc:
        return f"error: {exc}", (type(exc).__name__, exc)
    except Exception as exc:  # a tool's failure is the model's to handle: it goes back as the result
        return f"error: {call.name} raised {type(exc).__name__}: {exc}", (type(exc).__name__, exc)
    return _content(value), None


async def run_tools(
    engine: Engine,
    prompt: str | None = None,
    *,
    messages: Sequence[Mapping[str, Any]] | None = None,
    tools: Sequence[Any],
    max_rounds: int = 8,
    schema: Any = None,
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
    **options: Any,
) -> ToolRunResult:
    """Run the tool loop (see the module docstring). ``tools`` must be Python callables (sync or
    async); ``options`` go to every `Engine.generate` call (``model``, ``temperature``, ``max_tokens``,
    ``extra_body``, ``tool_choice``, ``parallel_tool_calls``, ``reasoning``, ``max_reasks``)."""
    from ..schemas.tools import check_tools
    from .calls import normalize_messages

    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ConfigurationError(f"max_rounds must be a positive integer, got {max_rounds!r}")
    if isinstance(tool_timeout, bool) or not isinstance(tool_timeout, (int, float)) or not 0 < tool_timeout < 86_400:
        raise ConfigurationError(f"tool_timeout must be a number of seconds above 0, got {tool_timeout!r}")
    declared = check_tools(tools)
    if not declared:
        raise ConfigurationError("run_tools() needs tools=[...]: the functions the model may call")
    for tool in declared:
        if tool.function is None:
            raise ConfigurationError(
                f"tool {tool.name} is a function dict: run_tools() runs the tools itself, so give the Python function"
            )
    unknown = sorted(set(options) - _GENERATE_OPTIONS)
    if unknown:
        raise ConfigurationError(f"run_tools() got unknown options {unknown}; it takes {sorted(_GENERATE_OPTIONS)}")
    options = _request_options(engine, options)
    by_name = {tool.name: tool for tool in declared}
    conversation: list[dict[str, Any]] = normalize_messages(prompt, messages)
    # traced, the loop is one invoke_agent span: its rounds' chat spans and its execute_tool spans are children
    loop = observe.tool_loop(
        options["model"] if isinstance(options.get("model"), str) and options["model"] else engine.settings.model,
        engine.settings, output_type="text" if schema is None else "json", conversation_id=_session(options),
    )
    tally = _Tally()
    limits = (max_rounds, tool_timeout)
    if loop is None:
        return await _loop(engine, conversation, schema, declared, by_name, limits, options, tally, None)
    try:
        done = await _loop(engine, conversation, schema, declared, by_name, limits, options, tally, loop)
    except BaseException as error:
        # what the finished rounds spent, and what the failed round's call spent before it raised
        usage, cost = tally.usage, tally.cost
        spent, used = getattr(error, "cost", None), getattr(error, "usage", None)
        if not isinstance(error, ToolLoopError):  # (that one carries the rounds' totals, already counted)
            usage = usage + used if isinstance(used, Usage) else usage
            cost = add_costs(cost, spent if isinstance(spent, Decimal) else None)
        loop.fail(error, observe.loop_totals(usage, cost, tally.source, tally.attempts, tally.rounds))
        raise
    loop.finish(observe.loop_totals(
        done.usage, done.cost, done.cost_source, done.attempts, done.rounds, done.final.finish_reason
    ))
    return done


async def _loop(
    engine: Engine, conversation: list[dict[str, Any]], schema: Any, declared: tuple[Tool, ...],
    by_name: Mapping[str, Tool], limits: tuple[int, float], options: dict[str, Any], tally: _Tally,
    loop: LoopSpan | None,
) -> ToolRunResult:
    max_rounds, tool_timeout = limits
    for round_number in range(1, max_rounds + 1):
        if round_number == 2 and options.get("tool_choice") not in (None, "auto", "none"):
            # a forced call ("required", a tool's name) is asked once: forced every round, it never ends
            options = {**options, "tool_choice": "auto"}
        # each round is one chat call, observed like `generate` (its span, its events)
        watch = engine._watch("chat", options.get("model"), engine.settings.model,
                              output_type="text" if schema is None else "json")
        try:
            call = await _prepared(engine, conversation, schema, declared, options, watch)
            call.timeout, call.max_attempts = options.get("timeout"), options.get("max_attempts")
            result = await engine._run(call, schema, reask_tools=False)
        except BaseException as error:
            if watch is not None:
                watch.ended(error)
            raise
        tally.add(result)
        conversation = [*conversation, result.assistant_message()]
        if not result.tool_calls:
            return ToolRunResult(result.content, result, tuple(conversation), round_number,
                                 tally.usage, tally.cost, tally.source, tally.attempts)
        outputs = await asyncio.gather(
            *(_run_one(tool_call, by_name, tool_timeout, loop) for tool_call in result.tool_calls)
        )
        conversation += [tool_message(tool_call, output) for tool_call, output in zip(result.tool_calls, outputs)]
    raise ToolLoopError(
        f"the model still called tools after max_rounds={max_rounds} rounds; raise max_rounds, or read the "
        "transcript on this error to see what it kept asking for",
        transcript=conversation, rounds=max_rounds, usage=tally.usage, cost=tally.cost, attempts=tally.attempts,
    )


@attrs.define
class _Tally:
    """What the loop's rounds used and cost so far, summed."""

    usage: Usage = attrs.field(factory=Usage)
    cost: Decimal | None = None
    source: CostSource | None = None
    attempts: int = 0
    rounds: int = 0

    def add(self, result: GenerationResult[Any]) -> None:
        self.usage, self.cost = self.usage + result.usage, add_costs(self.cost, result.cost)
        self.source, self.attempts = add_cost_sources(self.source, result.cost_source), self.attempts + result.attempts
        self.rounds += 1


def _session(options: Mapping[str, Any]) -> str | None:
    """OpenRouter's ``session_id`` in the options' ``extra_body``: the loop's ``gen_ai.conversation.id``."""
    extra = options.get("extra_body")
    session = extra.get("session_id") if isinstance(extra, Mapping) else None
    return session if isinstance(session, str) and session else None


_GENERATE_OPTIONS = frozenset({
    "model", "temperature", "max_tokens", "extra_body", "max_reasks", "tool_choice", "parallel_tool_calls", "reasoning",
    "timeout", "max_attempts", "provider", "models", "plugins", "session_id",
})


def _request_options(engine: Engine, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with ``provider``, ``models``, ``plugins`` and ``session_id`` (else the settings'
    ``OPENROUTER_SESSION_ID``) folded into ``extra_body`` as `generate` sends them, once for every
    round; ``timeout`` and ``max_attempts`` checked as `generate` checks them."""
    check_transport_options(options.get("timeout"), options.get("max_attempts"))
    extra_body = options.get("extra_body")
    rest = {k: v for k, v in options.items() if k not in ("provider", "models", "plugins", "session_id")}
    rest["extra_body"] = engine._request_fields(
        extra_body, options.get("provider"), options.get("models"), options.get("plugins"), options.get("session_id")
    )
    return rest


async def _prepared(
    engine: Engine, conversation: list[dict[str, Any]], schema: Any, declared: tuple[Tool, ...], options: Mapping[str, Any],
    watch: Watch | None = None,
) -> _Call:
    return await engine._prepare(
        None, conversation, schema, options.get("model"),
        temperature=options.get("temperature"), max_tokens=options.get("max_tokens"),
        extra_body=options.get("extra_body"), max_reasks=options.get("max_reasks"),
        tools=declared, tool_choice=options.get("tool_choice"),
        parallel_tool_calls=options.get("parallel_tool_calls"), reasoning=options.get("reasoning"), watch=watch,
    )
