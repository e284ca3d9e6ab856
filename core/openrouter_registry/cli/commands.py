"""The `openrouter-registry` command (also `python -m openrouter_registry`).

    openrouter-registry plugins [--json]
    openrouter-registry resolve MODEL [--json] [--explain]
    openrouter-registry generate --model MODEL [--schema FILE_OR_JSON] [--json] PROMPT
    openrouter-registry models [QUERY] [--supports PARAM]... [--json] [--refresh]
    openrouter-registry batch INPUT.jsonl --out OUT.jsonl [--schema ...] [--concurrency N] [--max-cost USD] ...
    openrouter-registry demo
    openrouter-registry new-plugin NAME [--dir DIR] [--model MODEL]

Exit status: 0 success, 2 usage or configuration error, 3 API error, 4 invalid structured output
(batch adds 5: stopped by --max-cost, and 130 after Ctrl-C).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import batch as cli_batch
from ..errors import OpenRouterError
from .exits import EXIT_OK, EXIT_USAGE, exit_status

PROG = "openrouter-registry"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_plugins(args: argparse.Namespace) -> int:
    from ..plugins.registry import get_registry

    infos = get_registry().plugins()
    if args.json:
        _print_json([info.to_dict() for info in infos])
        return EXIT_OK
    from .terminal import safe

    def _say(line: str) -> None:  # plugin names and errors are a plugin's text: escaped for the terminal
        print(safe(line))

    for info in infos:
        where = f"{info.distribution} {info.version or ''}".strip() if info.distribution else "registered at run time"
        _say(f"{info.name}  [{info.status}]  {where}")
        if info.error:
            label = "error" if info.status in ("failed", "blocked") else "last error"
            _say(f"    {label}: {info.error}")
        if info.failures:
            _say(f"    failed hook calls: {info.failures}")
        if info.hooks:
            _say(f"    hooks: {', '.join(info.hooks)}")
        if info.models:
            _say(f"    models: {', '.join(info.models)}")
        if info.headers == "static":
            _say(f"    headers: the same for every model ({', '.join(info.header_names)}), checked at load")
        elif info.headers == "per-model":
            _say("    headers: depend on the model, checked at each request")
    return EXIT_OK


def cmd_resolve(args: argparse.Namespace) -> int:
    from ..models.catalog import load_catalog_blocking
    from ..plugins.registry import get_registry

    load_catalog_blocking(get_registry().default_settings(), network=False)  # the cached catalog's facts, offline
    resolution = get_registry().resolve(args.model)
    if args.json:
        data = resolution.to_dict()
        if args.explain:
            data["explanation"] = resolution.explain()
        _print_json(data)
    elif args.explain:
        print(resolution.explain())
    else:
        print(f"{resolution.model} -> {type(resolution.generator).__name__} ({resolution.plugin}, {resolution.match})")
    return EXIT_OK


def _command(name: str, module: str = "generate") -> Callable[[argparse.Namespace], int]:
    """Commands that live in their own module are imported only when they run."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f".{module}", __package__), name)
        return handler(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Resolve and call OpenRouter models through pluggable generators.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("plugins", help="list the plugins found, with status, hooks and claimed models")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("resolve", help="show which generator serves MODEL, and why")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--explain", action="store_true", help="list every candidate and how ties were broken")
    p.set_defaults(handler=cmd_resolve)

    p = sub.add_parser("generate", help="run one (structured) generation and print the result")
    p.add_argument("prompt", metavar="PROMPT")
    p.add_argument("--model", help="model id (default: OPENROUTER_MODEL or openai/gpt-4o)")
    p.add_argument("--schema", help="a JSON Schema: a file path or inline JSON")
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument("--temperature", type=float)
    p.add_argument("--json", action="store_true", help="print one JSON object with content, usage, cost...")
    p.set_defaults(handler=_command("cmd_generate"))

    p = sub.add_parser("demo", help="structured generation with the seed models (local server without a key)")
    p.add_argument("--json", action="store_true", help="print one JSON object per model")
    p.set_defaults(handler=_command("cmd_demo"))

    p = sub.add_parser("new-plugin", help="write a ready-to-install plugin distribution NAME/ with a passing test")
    p.add_argument("name", metavar="NAME", help="distribution name, e.g. acme-openrouter (module acme_openrouter)")
    p.add_argument("--dir", default=".", help="where to create NAME/ (default: the current directory)")
    p.add_argument("--model", help="the model id it serves (default: <first word of NAME>/example-1)")
    p.set_defaults(handler=_command("cmd_new_plugin", "plugin"))

    from . import models as cli_models

    cli_models.register(sub)
    cli_batch.register(sub)
    return parser


def _fail(code: int, message: str) -> int:
    # One line, whatever the message holds (API error messages can contain line breaks), and no escape
    # sequence from upstream reaches the terminal (see terminal.safe).
    from .terminal import safe

    print(f"{PROG}: {safe(' '.join(message.split()))}", file=sys.stderr)
    return code


def _show_warnings() -> None:
    """Library warnings (retries, learned mode fallbacks) as ``openrouter-registry: ...`` lines on
    stderr, unless the host program configured logging itself."""
    library = logging.getLogger("openrouter_registry")
    if logging.getLogger().handlers or library.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLine())
    library.addHandler(handler)


class _OneLine(logging.Formatter):
    """``openrouter-registry: message`` on one line; tracebacks only at DEBUG (never shown here)."""

    def format(self, record: logging.LogRecord) -> str:
        from .terminal import safe

        return f"{PROG}: {safe(' '.join(record.getMessage().split()))}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    _show_warnings()
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "handler", None):
            commands = "plugins, resolve, models, generate, batch, demo, new-plugin"
            return _fail(EXIT_USAGE, f"error: a command is required ({commands}); see --help")
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except _UsageError as exc:
        return _fail(EXIT_USAGE, f"error: {exc}")
    except OpenRouterError as exc:
        return _fail(exit_status(type(exc)), f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        return _fail(130, "interrupted")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
