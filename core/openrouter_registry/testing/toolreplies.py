"""What `FakeOpenRouter` adds to a reply for tools and reasoning, in OpenRouter's real shapes.

Taken from the recordings in ``shared/reference/recordings`` (``llm-openrouter__gpt-4.1-mini-tool-calls-stream``,
``raix__llama-3.3-8b-free-parallel-tool-calls``, ``ruby_llm__claude-3.5-haiku-tool-call-roundtrip``,
``fantasy__claude-haiku-4.5-stream``) and OpenRouter's docs:

- A request with ``tools`` (and ``tool_choice`` not "none") whose last message is not a tool result is
  answered with tool calls: the forced function, else every declared tool (at most three) when
  ``parallel_tool_calls`` is not false, else the first. ``content`` is null, ``finish_reason``
  "tool_calls"; each call's arguments are a valid instance of its parameters schema. Ids look like the
  family's: ``call_...`` (OpenAI), ``toolu_bdrk_...`` (Anthropic), ``functions.<name>:<i>`` (others).
- A request whose last message is a tool result gets a text answer that quotes the results.
- A request with ``reasoning`` (not excluded, not disabled) gets ``message.reasoning`` and one
  ``reasoning.text`` entry in ``reasoning_details`` with a signature; with ``think_in_content`` the
  reasoning is a ``<think>`` block at the start of the content instead (``reasoning`` null).
- Streamed, tool calls come as fragments keyed by ``index`` (id and name first with ``arguments: ""``,
  then the argument pieces; ``""`` then ``"{}"`` for a tool without parameters), reasoning as
  ``delta.reasoning`` pieces before the text.
- Content parts with ``cache_control`` are billed as cache writes (``prompt_tokens_details.cache_write_tokens``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ToolPlan", "plan_tool_calls", "reasoning_parts", "tool_result_text", "call_fragments"]

ToolPlan = list[dict[str, Any]]

REASONING_TEXT = "The user asked a question; I work out the answer step by step before replying."


def _call_id(family: str, name: str, index: int, seed: str) -> str:
    digest = hashlib.sha256(f"{seed}:{name}:{index}".encode()).hexdigest()
    if family == "openai":
        return "call_" + digest[:24]
    if family == "anthropic":
        return "toolu_bdrk_" + digest[:24]
    return f"functions.{name}:{index}"


def _declared(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [t["function"] for t in tools if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)]


def plan_tool_calls(
    body: Mapping[str, Any], messages: Sequence[Any], family: str, instance: Callable[[Any, str], Any], seed: str
) -> ToolPlan | None:
    """The ``message.tool_calls`` to answer with, or None for a text answer. ``instance(schema, name)`` is
    a valid value of a parameters schema (the server's own, honouring `FakeOpenRouter.set_reply`)."""
    functions = _declared(body)
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return None
    last = messages[-1] if messages else None
    if isinstance(last, Mapping) and last.get("role") == "tool":
        return None
    forced = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
    if forced is not None:
        chosen = [f for f in functions if f.get("name") == forced][:1]
    elif body.get("parallel_tool_calls") is False:
        chosen = functions[:1]
    else:
        chosen = functions[:3]
    calls = []
    for index, function in enumerate(chosen):
        name = str(function.get("name"))
        parameters = function.get("parameters")
        empty = not isinstance(parameters, Mapping) or not parameters.get("properties")
        arguments = "{}" if empty else json.dumps(instance(parameters, name), separators=(",", ":"), ensure_ascii=False)
        calls.append({
            "id": _call_id(family, name, index, seed),
            "type": "function",
            "index": index,
            "function": {"name": name, "arguments": arguments},
        })
    return calls


def tool_result_text(messages: Sequence[Any]) -> str | None:
    """The text answer after tool results: the results of the last turn, quoted; None when the last
    message is not a tool result."""
    results = []
    for message in reversed(messages):
        if not isinstance(message, Mapping) or message.get("role") != "tool":
            break
        content = message.get("content")
        results.append(content if isinstance(content, str) else json.dumps(content))
    if not results:
        return None
    return "The tools answered: " + "; ".join(reversed(results))


def reasoning_parts(body: Mapping[str, Any], family: str) -> tuple[str, list[dict[str, Any]]] | None:
    """(reasoning text, reasoning_details) for a request that asks for reasoning, else None."""
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, Mapping) or reasoning.get("exclude") or reasoning.get("enabled") is False:
        return None
    if reasoning.get("effort") == "none":
        return None
    signature = hashlib.sha256(REASONING_TEXT.encode()).hexdigest()
    detail_format = {"anthropic": "anthropic-claude-v1", "google": "google-gemini-v1"}.get(family, "openai-responses-v1")
    details = [{"type": "reasoning.text", "text": REASONING_TEXT, "signature": signature,
                "format": detail_format, "index": 0}]
    return REASONING_TEXT, details


def call_fragments(calls: ToolPlan) -> list[list[dict[str, Any]]]:
    """The ``delta.tool_calls`` lists of a streamed reply: per call, its head (id, name, ``""``), then
    its arguments in pieces of 12 characters."""
    deltas: list[list[dict[str, Any]]] = []
    for call in calls:
        index, function = call["index"], call["function"]
        deltas.append([{"index": index, "id": call["id"], "type": "function",
                        "function": {"name": function["name"], "arguments": ""}}])
        arguments = function["arguments"]
        for start in range(0, len(arguments), 12):
            deltas.append([{"index": index, "type": "function", "function": {"arguments": arguments[start:start + 12]}}])
    return deltas
