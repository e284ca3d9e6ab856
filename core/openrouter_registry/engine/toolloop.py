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

if TYPE_CHECKING:
    from ..schemas.tools import Tool
    from .calls import Engine, _Call
    from .observe import Watch

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


async def _run_one(call: ToolCall, tools: Mapping[str, Tool], timeout: float) -> str:
    """One call's result content; every failure is an ``error: ...`` content, never an exception."""
    tool = tools.get(call.name)
    if tool is None:
        return f"error: there is no tool named {call.name!r}; the tools are: {', '.join(tools)}"
    if call.errors:
        return "error: invalid arguments: " + "; ".join(call.errors)
    if not isinstance(call.arguments, dict):
        return f"error: the arguments must be a JSON object, got {call.arguments_text[:200]!r}"
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
    except asyncio.TimeoutError:
        return f"error: {call.name} did not finish within {timeout:g} seconds"
    except ConfigurationError as exc:
        return f"error: {exc}"
    except Exception as exc:  # a tool's failure is the model's to handle: it goes back as the result
        return f"error: {call.name} raised {type(exc).__name__}: {exc}"
    return _content(value)


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
    by_name = {tool.name: tool for tool in declared}
    conversation: list[dict[str, Any]] = normalize_messages(prompt, messages)
    usage, cost, source, attempts = Usage(), None, None, 0
    for round_number in range(1, max_rounds + 1):
        if round_number == 2 and options.get("tool_choice") not in (None, "auto", "none"):
            # a forced call ("required", a tool's name) is asked once: forced every round, it never ends
            options = {**options, "tool_choice": "auto"}
        # each round is one chat call, observed like `generate` (its span, its events)
        watch = engine._watch("chat", options.get("model"), engine.settings.model,
                              output_type="text" if schema is None else "json")
        try:
            call = await _prepared(engine, conversation, schema, declared, options, watch)
            result = await engine._run(call, schema, reask_tools=False)
        except BaseException as error:
            if watch is not None:
                watch.ended(error)
            raise
        usage, cost = usage + result.usage, add_costs(cost, result.cost)
        source, attempts = add_cost_sources(source, result.cost_source), attempts + result.attempts
        conversation = [*conversation, result.assistant_message()]
        if not result.tool_calls:
            return ToolRunResult(result.content, result, tuple(conversation), round_number, usage, cost, source, attempts)
        outputs = await asyncio.gather(*(_run_one(tool_call, by_name, tool_timeout) for tool_call in result.tool_calls))
        conversation += [tool_message(tool_call, output) for tool_call, output in zip(result.tool_calls, outputs)]
    raise ToolLoopError(
        f"the model still called tools after max_rounds={max_rounds} rounds; raise max_rounds, or read the "
        "transcript on this error to see what it kept asking for",
        transcript=conversation, rounds=max_rounds, usage=usage, cost=cost, attempts=attempts,
    )


_GENERATE_OPTIONS = frozenset(
    {"model", "temperature", "max_tokens", "extra_body", "max_reasks", "tool_choice", "parallel_tool_calls", "reasoning"}
)


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
