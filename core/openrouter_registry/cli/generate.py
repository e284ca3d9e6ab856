"""The CLI commands that generate: `generate` and `demo` (the main job). Imported only when they run,
so `plugins` and `resolve` never load the HTTP stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, OpenRouterError
from ..result import GenerationResult
from ..service import OpenRouterService
from ..settings import Settings
from .terminal import for_terminal

SEED_MODELS = (
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-sonnet",
    "meta-llama/llama-3.3-70b-instruct",
    "mistralai/mixtral-8x7b-instruct",  # no family plugin: the generic generator serves it
)

DEMO_SCHEMA: dict[str, Any] = {
    "title": "city_country",
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "the city named in the text"},
        "country": {"type": "string", "description": "the country that city is in"},
    },
    "required": ["city", "country"],
    "additionalProperties": False,
}
DEMO_PROMPT = "Extract the city and country from: 'We landed in Lyon at dawn; France was still asleep.'"


def load_schema(value: str | None) -> dict[str, Any] | None:
    """``--schema``: inline JSON, or the path of a JSON file."""
    if value is None:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise ConfigurationError(f"--schema must be inline JSON or the path of a JSON file; no file {value!r}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or type(exc).__name__
            raise ConfigurationError(f"--schema file {value!r} cannot be read: {reason}") from None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"--schema is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ConfigurationError("--schema must be a JSON object (a JSON Schema)")
    return schema


#: A ``--messages`` file larger than this is refused before it is read (a conversation, not a data set).
MAX_MESSAGES_BYTES = 16 * 1024 * 1024


def load_messages(value: str) -> list[Any]:
    """``--messages``: the path of a JSON file (``-``: standard input) holding a list of chat messages
    (``[{"role": "user", "content": "..."}]``); each message is checked when the call is made."""
    import sys

    where = "standard input" if value == "-" else repr(value)
    try:
        if value == "-":
            raw = sys.stdin.buffer.read(MAX_MESSAGES_BYTES + 1)
        else:
            with open(value, "rb") as handle:
                raw = handle.read(MAX_MESSAGES_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"--messages file {where} cannot be read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_MESSAGES_BYTES:
        raise ConfigurationError(f"--messages file {where} is larger than {MAX_MESSAGES_BYTES // (1024 * 1024)} MB")
    try:
        messages = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"--messages file {where} is not UTF-8 JSON: {exc}") from None
    if not isinstance(messages, list) or not messages:
        raise ConfigurationError(
            f"--messages file {where} must hold a non-empty JSON list of {{\"role\": ..., \"content\": ...}} objects"
        )
    return messages


def _conversation(args: argparse.Namespace) -> tuple[str | None, list[Any] | None]:
    """(prompt, messages) for the call: PROMPT or ``--messages``, with ``--system`` first."""
    if (args.prompt is None) == (args.messages is None):
        raise ConfigurationError("give either PROMPT or --messages FILE (not both)")
    if args.system is not None and not args.system.strip():
        raise ConfigurationError("--system must be a non-empty text")
    messages = load_messages(args.messages) if args.messages is not None else None
    if args.system is None:
        return args.prompt, messages
    system = {"role": "system", "content": args.system}
    if messages is None:
        return None, [system, {"role": "user", "content": args.prompt}]
    return None, [system, *messages]


def cmd_generate(args: argparse.Namespace) -> int:
    from .modelflag import check_model_flag

    if args.stream and (args.schema is not None or args.json):
        raise ConfigurationError("--stream prints the text as it comes: leave out --schema and --json")
    schema = load_schema(args.schema)
    if args.max_tokens is not None and args.max_tokens < 1:
        # Checked here so the message names the option, not OPENROUTER_MAX_TOKENS.
        raise ConfigurationError(f"--max-tokens must be a positive integer, got {args.max_tokens}")
    prompt, messages = _conversation(args)
    settings = Settings.from_env(max_tokens=args.max_tokens)
    check_model_flag(args.model, "--model", settings)  # named as the flag, with a did-you-mean
    settings = settings.replace(model=args.model)
    settings.require_api_key()
    if args.stream:
        return asyncio.run(_stream(settings, prompt, messages, args.temperature, args.raw))

    async def run() -> GenerationResult[Any]:
        async with OpenRouterService(settings) as service:
            return await service.generate(prompt, messages=messages, schema=schema, temperature=args.temperature)

    result = asyncio.run(run())
    show = for_terminal(sys.stdout, args.raw)
    if args.json:
        print(show(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)))
    elif isinstance(result.content, str):
        print(show(result.content))
    else:
        print(show(json.dumps(result.to_dict()["content"], indent=2, ensure_ascii=False, allow_nan=False)))
    return 0


async def _stream(
    settings: Settings, prompt: str | None, messages: list[Any] | None, temperature: float | None, raw: bool = False
) -> int:
    """``generate --stream``: each text delta printed (and flushed) as it arrives, then a line break;
    escaped for a terminal as `cmd_generate` prints (each character on its own, so a sequence split
    across deltas is escaped too)."""
    show = for_terminal(sys.stdout, raw)
    async with OpenRouterService(settings) as service:
        stream = service.stream(prompt, messages=messages, temperature=temperature)
        async for delta in stream:
            sys.stdout.write(show(delta))
            sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _shorten(text: str, limit: int = 100) -> str:
    """The raw reply on one line (as a JSON string), cut at ``limit`` characters."""
    shown = json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"


def _describe(model: str, result: GenerationResult[Any]) -> str:
    cost = "n/a" if result.cost is None else f"${result.cost:.6f}"
    usage = result.usage
    return (
        f"{model}\n"
        f"  plugin {result.plugin}, generator {result.generator}, mode {result.mode}, attempts {result.attempts}\n"
        f"  served by {result.model} via {result.provider} ({result.generation_id})\n"
        f"  reply   {_shorten(result.text)}\n"
        f"  content {json.dumps(result.to_dict()['content'], ensure_ascii=False, allow_nan=False)}\n"
        f"  usage {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, cost {cost}"
    )


def distance_km(city_a: str, city_b: str) -> float:
    """The great-circle distance between two cities, in kilometres (the demo's tool; a small table).

    Args:
        city_a: the first city
        city_b: the second city
    """
    places = {"lyon": (45.76, 4.84), "paris": (48.86, 2.35)}
    (lat1, lon1), (lat2, lon2) = (places.get(c.strip().lower(), (0.0, 0.0)) for c in (city_a, city_b))
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    cosine = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return round(6371.0 * math.acos(max(-1.0, min(1.0, cosine))), 1)


async def _tool_demo(service: OpenRouterService) -> bool:
    """One tool round trip: the model calls `distance_km`, the loop runs it and gives the result back."""
    model = SEED_MODELS[1]
    try:
        run = await service.run_tools("How far is Lyon from Paris?", tools=[distance_km], model=model, max_rounds=3)
    except OpenRouterError as exc:
        print(f"tool round trip ({model})\n  {type(exc).__name__}: {exc}")
        return False
    calls = [m for m in run.transcript if m.get("role") == "assistant" and m.get("tool_calls")]
    results = [m for m in run.transcript if m.get("role") == "tool"]
    print(f"tool round trip ({model})")
    for message in calls:
        for call in message["tool_calls"]:
            print(f"  called  {call['function']['name']}({call['function']['arguments']}) [{call['id']}]")
    for message in results:
        print(f"  result  {message['content']}")
    print(f"  answer  {_shorten(str(run.content))}")
    print(f"  {run.rounds} rounds, {run.attempts} requests, {run.usage.total_tokens} tokens, "
          "cost " + ("n/a" if run.cost is None else f"${run.cost:.6f}"))
    return True


async def _demo(settings: Settings, as_json: bool) -> int:
    failures = 0
    async with OpenRouterService(settings) as service:
        for model in SEED_MODELS:
            try:
                result = await service.generate(DEMO_PROMPT, schema=DEMO_SCHEMA, model=model, temperature=0)
            except OpenRouterError as exc:
                failures += 1
                from .terminal import safe

                print(f"{model}\n  {type(exc).__name__}: {safe(' '.join(str(exc).split()))}")
                continue
            if as_json:
                print(json.dumps({"requested": model, **result.to_dict()}, ensure_ascii=False, allow_nan=False))
            else:
                print(_describe(model, result))
        if not as_json and not await _tool_demo(service):
            failures += 1
    return 0 if failures == 0 else 3


def cmd_demo(args: argparse.Namespace) -> int:
    """One structured generation per seed model, through the whole path.

    With OPENROUTER_API_KEY set it talks to OpenRouter; without it, it says so and uses the local
    OpenRouter-compatible server of `openrouter_registry.testing`, which answers in each family's style.
    """
    if os.environ.get("OPENROUTER_API_KEY", "").strip():
        return asyncio.run(_demo(Settings.from_env(), args.json))
    from ..testing import FakeOpenRouter

    print(
        "OPENROUTER_API_KEY is not set: using the local OpenRouter-compatible server "
        "(openrouter_registry.testing). Set the key to talk to OpenRouter.\n"
    )
    with FakeOpenRouter() as server:
        server.set_reply("city_country", {"city": "Lyon", "country": "France"})
        server.set_reply("distance_km", {"city_a": "Lyon", "city_b": "Paris"})  # the tool call's arguments
        settings = Settings.from_env(base_url=server.base_url, api_key=server.api_key)
        return asyncio.run(_demo(settings, args.json))
