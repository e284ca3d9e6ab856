"""The CLI commands that generate: `generate` and `demo` (the main job). Imported only when they run,
so `plugins` and `resolve` never load the HTTP stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, OpenRouterError
from ..result import GenerationResult
from ..service import OpenRouterService
from ..settings import Settings

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


def cmd_generate(args: argparse.Namespace) -> int:
    schema = load_schema(args.schema)
    if args.max_tokens is not None and args.max_tokens < 1:
        # Checked here so the message names the option, not OPENROUTER_MAX_TOKENS.
        raise ConfigurationError(f"--max-tokens must be a positive integer, got {args.max_tokens}")
    settings = Settings.from_env(model=args.model, max_tokens=args.max_tokens)
    settings.require_api_key()

    async def run() -> GenerationResult[Any]:
        async with OpenRouterService(settings) as service:
            return await service.generate(args.prompt, schema=schema, temperature=args.temperature)

    result = asyncio.run(run())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False))
    elif isinstance(result.content, str):
        print(result.content)
    else:
        print(json.dumps(result.to_dict()["content"], indent=2, ensure_ascii=False, allow_nan=False))
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
        settings = Settings.from_env(base_url=server.base_url, api_key=server.api_key)
        return asyncio.run(_demo(settings, args.json))
