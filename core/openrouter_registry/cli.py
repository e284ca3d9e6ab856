"""The `openrouter-registry` command (also `python -m openrouter_registry`).

    openrouter-registry plugins [--json]
    openrouter-registry resolve MODEL [--json] [--explain]
    openrouter-registry generate --model MODEL [--schema FILE_OR_JSON] [--json] PROMPT
    openrouter-registry demo

Exit status: 0 success, 2 usage or configuration error, 3 API error, 4 invalid structured output.
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import cli_batch
from .errors import ConfigurationError, OpenRouterError, StructuredOutputError

EXIT_OK, EXIT_USAGE, EXIT_API, EXIT_OUTPUT = 0, 2, 3, 4
PROG = "openrouter-registry"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import get_registry

    infos = get_registry().plugins()
    if args.json:
        _print_json([info.to_dict() for info in infos])
        return EXIT_OK
    for info in infos:
        where = f"{info.distribution or '-'} {info.version or ''}".strip()
        print(f"{info.name}  [{info.status}]  {where}")
        if info.error:
            print(f"    error: {info.error}")
        if info.hooks:
            print(f"    hooks: {', '.join(info.hooks)}")
        if info.models:
            print(f"    models: {', '.join(info.models)}")
    return EXIT_OK


def cmd_resolve(args: argparse.Namespace) -> int:
    from .registry import get_registry

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


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """Commands that need the generation stack are imported only when they run."""

    def run(args: argparse.Namespace) -> int:
        from . import cli_generate

        handler: Callable[[argparse.Namespace], int] = getattr(cli_generate, name)
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

    cli_batch.register(sub)
    return parser


def exit_status(error: type[BaseException]) -> int:
    """The exit status for an error class: 2 configuration, 4 invalid structured output, 3 API (and any other)."""
    if issubclass(error, ConfigurationError):
        return EXIT_USAGE
    if issubclass(error, StructuredOutputError):
        return EXIT_OUTPUT
    return EXIT_API


def _fail(code: int, message: str) -> int:
    # One line, whatever the message holds (API error messages can contain line breaks).
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
    return code


def _show_warnings() -> None:
    """Library warnings (retries, learned mode fallbacks) as ``openrouter-registry: ...`` lines on
    stderr, unless the host program configured logging itself."""
    import logging

    library = logging.getLogger("openrouter_registry")
    if logging.getLogger().handlers or library.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    library.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    _show_warnings()
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "handler", None):
            return _fail(EXIT_USAGE, "error: a command is required (plugins, resolve, generate, demo); see --help")
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
