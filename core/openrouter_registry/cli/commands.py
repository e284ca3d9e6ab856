"""The `openrouter-registry` command (also `python -m openrouter_registry`).

    openrouter-registry plugins [--json]
    openrouter-registry resolve MODEL [--json] [--explain]
    openrouter-registry generate [--model MODEL] [--schema FILE_OR_JSON] [--json | --stream] [--system TEXT]
                                 (PROMPT | --messages FILE.json)
    openrouter-registry models [QUERY] [--supports PARAM]... [--json] [--refresh]
    openrouter-registry batch INPUT.jsonl --out OUT.jsonl [--schema ...] [--concurrency N] [--max-cost USD] ...
    openrouter-registry demo
    openrouter-registry new-plugin NAME [--dir DIR] [--model MODEL]

Exit status: 0 success, 1 an unexpected error (a bug, in a plugin or here), 2 usage or configuration
error, 3 API error, 4 invalid structured output (batch adds 5: stopped by --max-cost, and 130 after Ctrl-C);
a reader that closes the pipe early (``| head -1``) ends the command quietly with 141, as a program stopped
by SIGPIPE does. Errors are one line on stderr, never a traceback; ``--debug`` (``-v``, before or after the
command) shows the library's DEBUG log lines with their tracebacks (a failing plugin's included).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import batch as cli_batch
from ..errors import OpenRouterError
from .exits import EXIT_BUG, EXIT_OK, EXIT_USAGE, exit_status

PROG = "openrouter-registry"
#: The exit status after the reader of stdout went away (128 + SIGPIPE, as the shell reports it).
EXIT_PIPE = 141


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
            _say(f"    failed calls since load, all hooks and generator methods: {info.failures}")
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

    from .modelflag import vendor_hint

    settings = get_registry().default_settings()
    load_catalog_blocking(settings, network=False)  # the cached catalog's facts, offline
    if "/" not in args.model:
        print(f"{PROG}: note: {vendor_hint(args.model, settings, network=False)}", file=sys.stderr)
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
    from .. import __version__

    parser = _Parser(prog=PROG, description="Resolve and call OpenRouter models through pluggable generators.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
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
    p.add_argument("prompt", metavar="PROMPT", nargs="?", help="the user message (or give --messages)")
    p.add_argument("--messages", metavar="FILE", help='a JSON file ("-": stdin) with [{"role": ..., "content": ...}, ...]')
    p.add_argument("--system", metavar="TEXT", help="a system message sent first")
    p.add_argument("--model", help="model id (default: OPENROUTER_MODEL or openai/gpt-4o)")
    p.add_argument("--schema", help="a JSON Schema: a file path or inline JSON")
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument("--temperature", type=float)
    p.add_argument("--json", action="store_true", help="print one JSON object with content, usage, cost...")
    p.add_argument("--stream", action="store_true", help="print the text as it arrives (no --schema, no --json)")
    p.add_argument("--raw", action="store_true",
                   help="print control characters as received even on a terminal (escaped there by default)")
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
    for command in [parser, *sub.choices.values()]:  # accepted before the command and after it
        command.add_argument(
            "-v", "--debug", action="store_true", default=argparse.SUPPRESS,
            help="show DEBUG log lines on stderr, with tracebacks (a failing plugin's included)",
        )
    return parser


def _fail(code: int, message: str) -> int:
    # One line, whatever the message holds (API error messages can contain line breaks), and no escape
    # sequence from upstream reaches the terminal (see terminal.safe).
    from .terminal import safe

    print(f"{PROG}: {safe(' '.join(message.split()))}", file=sys.stderr)
    return code


def _show_warnings() -> logging.Handler | None:
    """Library warnings (retries, learned mode fallbacks) as ``openrouter-registry: ...`` lines on
    stderr, unless the host program configured logging itself. Returns the handler it added."""
    library = logging.getLogger("openrouter_registry")
    if logging.getLogger().handlers or library.handlers:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLine())
    library.addHandler(handler)
    return handler


def _show_debug(handler: logging.Handler | None) -> None:
    """``--debug``: every library log line from DEBUG up, tracebacks included."""
    library = logging.getLogger("openrouter_registry")
    library.setLevel(logging.DEBUG)
    if handler is not None:
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(_OneLine(tracebacks=True))


class _OneLine(logging.Formatter):
    """``openrouter-registry: message`` on one line; a traceback (after it) only with ``--debug``."""

    def __init__(self, *, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        from .terminal import safe

        line = f"{PROG}: {safe(' '.join(record.getMessage().split()))}"
        if self.tracebacks and record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _drop_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null, so that the interpreter's final flush
    of what is still buffered does not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (captured, closed): nothing will be flushed to it anyway
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    log_handler = _show_warnings()
    debug = False
    try:
        args = build_parser().parse_args(argv)
        debug = bool(getattr(args, "debug", False))
        if debug:
            _show_debug(log_handler)
        if not getattr(args, "handler", None):
            commands = "plugins, resolve, models, generate, batch, demo, new-plugin"
            return _fail(EXIT_USAGE, f"error: a command is required ({commands}); see --help")
        handler: Callable[[argparse.Namespace], int] = args.handler
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handling below, not at interpreter exit
        return status
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_PIPE
    except _UsageError as exc:
        return _fail(EXIT_USAGE, f"error: {exc}")
    except OpenRouterError as exc:
        return _fail(exit_status(type(exc)), f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    except Exception as exc:  # a bug (a plugin's or ours): one line; the traceback only with --debug
        logging.getLogger("openrouter_registry").debug("unexpected error", exc_info=exc)
        hint = "" if debug else "; run again with --debug to see the traceback"
        return _fail(EXIT_BUG, f"unexpected {type(exc).__name__}: {exc}{hint}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
