"""`openrouter-registry batch INPUT.jsonl --out OUT.jsonl ...`: a batch run from the command line.

Registered by `cli.build_parser` through `register`; importing this module costs only argparse: the
generation stack, the file helpers and the progress bar (tqdm) load when the command runs.

Exit status: 0 every row ok; 3 a row failed with an API error; 4 a row had invalid structure; 2 a usage
or configuration error (nothing sent) or a row whose input was unusable; 5 stopped by ``--max-cost``
before every row ran; 130 after Ctrl-C, once every finished row is written.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..batch.run import BatchRow, BatchRun, BatchSummary

EXIT_BUDGET, EXIT_INTERRUPTED = 5, 130
#: Seconds between two plain progress lines when stderr is not a terminal.
PROGRESS_INTERVAL = 10.0


def register(sub: Any) -> None:
    """Add the ``batch`` command to the CLI's subparsers."""
    p = sub.add_parser("batch", help="run many (structured) generations from a JSONL file into a JSONL file")
    p.add_argument("input", metavar="INPUT.jsonl", type=Path,
                   help='one object per line: {"id", "prompt"}, {"id", "messages"} or any object with --template')
    p.add_argument("--out", required=True, type=Path, metavar="OUT.jsonl", help="result rows, appended as they finish")
    p.add_argument("--schema", help="a JSON Schema: a file path or inline JSON")
    p.add_argument("--model", help="model id (default: OPENROUTER_MODEL or openai/gpt-4o)")
    p.add_argument("--template", help="render each input object into the prompt, e.g. 'Extract the city from: {text}'")
    p.add_argument("--concurrency", type=int, default=16, help="most rows in flight (lowered on 429s; default 16)")
    p.add_argument("--max-cost", dest="max_cost", metavar="USD", help="stop launching rows before the spend could pass this")
    p.add_argument("--max-tokens", type=int, dest="max_tokens")
    p.add_argument("--temperature", type=float)
    p.add_argument("--resume", action="store_true", help="skip ids already ok in OUT (failed rows run again)")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary on stderr")
    p.add_argument("--summary-json", dest="summary_json", type=Path, metavar="FILE", help="write the summary as JSON")
    p.set_defaults(handler=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    import logging

    from ..batch.run import check_template, money
    from ..batch.files import OutputLock, resume_done, scan_input
    from ..models.safefiles import check_regular
    from .generate import load_schema
    from ..errors import ConfigurationError
    from ..settings import Settings

    schema = load_schema(args.schema)
    check_template(args.template)
    if args.concurrency < 1:
        raise ConfigurationError(f"--concurrency must be a positive integer, got {args.concurrency}")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise ConfigurationError(f"--max-tokens must be a positive integer, got {args.max_tokens}")
    try:
        max_cost = money(args.max_cost)
    except ConfigurationError:
        raise ConfigurationError(f"--max-cost must be an amount of USD such as 2.50, got {args.max_cost!r}") from None
    if max_cost is not None and max_cost <= 0:
        raise ConfigurationError(f"--max-cost must be positive, got {args.max_cost!r}")
    if not args.input.is_file():
        raise ConfigurationError(f"no input file {str(args.input)!r}")
    if args.out.resolve() == args.input.resolve():
        raise ConfigurationError("--out must not be the input file")
    from .modelflag import check_model_flag

    settings = Settings.from_env(max_tokens=args.max_tokens)
    check_model_flag(args.model, "--model", settings)  # named as the flag, with a did-you-mean
    settings = settings.replace(model=args.model)
    settings.require_api_key()
    if not args.out.parent.is_dir():
        raise ConfigurationError(f"--out {str(args.out)!r}: no directory {str(args.out.parent)!r}")
    # retries show in the summary (requests) and the progress; one warning line per retry would drown them
    library = logging.getLogger("openrouter_registry")
    level = library.level
    library.setLevel(logging.ERROR)
    try:
        with OutputLock(args.out):
            check_regular(args.out)  # a planted symlink, FIFO or device: refused, never written or replaced
            if args.summary_json is not None:
                check_regular(args.summary_json)
            if args.out.exists() and args.out.stat().st_size > 0 and not args.resume:
                raise ConfigurationError(
                    f"{args.out} already holds rows: pass --resume to continue that run, or choose another --out"
                )
            done = resume_done(args.out) if args.resume else set()
            scan = scan_input(args.input, done)
            import asyncio

            return asyncio.run(_run(args, settings, schema, max_cost, done, scan.rows, scan.skipped))
    except OSError as exc:  # unreadable input, unwritable output, a full disk: one line, exit 2
        where = f" {exc.filename}" if exc.filename else ""
        raise ConfigurationError(f"cannot read or write{where}: {exc.strerror or exc}") from None
    finally:
        library.setLevel(level)


#: The batch command's first-generation garbage-collection threshold (Python's default is 700).
GC_THRESHOLD = 20_000


@contextlib.asynccontextmanager
async def _throughput_gc() -> AsyncIterator[None]:
    """The command's own process collects garbage for throughput while the rows run: what start-up made
    is frozen out of every collection (``gc.freeze``) and young objects are collected after
    `GC_THRESHOLD` allocations instead of 700. With hundreds of requests in flight the default
    collected objects still in use over and over, and a full collection walked every module: a sixth
    of the run's time went to it, now a fiftieth (timed with ``gc.callbacks`` on bench_batch's rows). Cyclic garbage is still collected, so
    memory stays flat. The library itself never changes the collector of a process it runs in."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def _run(
    args: argparse.Namespace, settings: Any, schema: Any, max_cost: Any, done: set[int], total: int, skipped: int
) -> int:
    import asyncio
    import signal

    from ..batch.files import RowWriter, is_done, read_input
    from ..service import OpenRouterService

    items = (item for item in read_input(args.input) if not (done and is_done(done, _id_of(item))))
    async with OpenRouterService(settings) as service, _throughput_gc():
        run = service.batch(
            items, schema=schema, concurrency=args.concurrency, max_cost=max_cost, template=args.template,
            temperature=args.temperature, total=total, check_duplicates=False,
        )
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            run.cancel()  # finish writing what finished; a second Ctrl-C stops at once
            loop.remove_signal_handler(signal.SIGINT)

        try:
            loop.add_signal_handler(signal.SIGINT, interrupted)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - no signal handlers here (Windows)
            pass
        progress = _Progress(run, total, skipped, "off" if args.quiet else "bar" if sys.stderr.isatty() else "lines")
        try:
            with RowWriter(args.out) as writer:
                async for row in run:
                    writer.write(row)
                    progress.row(row)
        finally:
            progress.close()
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
    summary = run.summary()
    if not args.quiet:
        print(summary.text(), file=sys.stderr)
    if args.summary_json is not None:
        import json
        import os

        from ..models.safefiles import open_regular

        data = {**summary.to_dict(), "skipped_done": skipped, "out": str(args.out)}
        fd = open_regular(args.summary_json, os.O_WRONLY | os.O_CREAT, 0o644, truncate=True)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
    return _exit_status(summary)


def _id_of(item: Any) -> Any:
    value = getattr(item, "value", None)
    return value.get("id") if isinstance(value, dict) else None


def _exit_status(summary: BatchSummary) -> int:
    """130 interrupted; else 3 for an API error, 4 for invalid structure, 2 for unusable input; else 5
    when the budget stopped the run; else 0."""
    from .. import errors
    from ..batch.run import DUPLICATE_ID, INPUT_ERROR
    from .exits import EXIT_API, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE, exit_status

    if summary.stopped == "interrupted":
        return EXIT_INTERRUPTED
    statuses = set()
    for name in summary.failed:
        kind = getattr(errors, name, None)
        if name in (INPUT_ERROR, DUPLICATE_ID):
            statuses.add(EXIT_USAGE)
        elif isinstance(kind, type) and issubclass(kind, errors.OpenRouterError):
            statuses.add(exit_status(kind))
        else:
            statuses.add(EXIT_API)  # an unexpected failure on the way to the API
    for status in (EXIT_API, EXIT_OUTPUT, EXIT_USAGE):
        if status in statuses:
            return status
    return EXIT_BUDGET if summary.stopped == "budget" else EXIT_OK


class _Progress:
    """Progress on stderr: a tqdm bar on a terminal, a plain line every `PROGRESS_INTERVAL` seconds
    otherwise, nothing when quiet."""

    def __init__(self, run: BatchRun, total: int, skipped: int, mode: str) -> None:
        self.run, self.total, self.mode = run, total, mode
        self.started = self.last = time.monotonic()
        self.bar: Any = None
        if skipped and mode != "off":
            print(f"batch: {skipped} rows already ok in the output; skipped", file=sys.stderr)
        if mode == "bar":
            from tqdm import tqdm  # type: ignore[import-untyped]

            self.bar = tqdm(total=total, unit="row", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def _facts(self) -> str:
        stats = self.run.stats
        return f"ok {stats.ok}, failed {stats.rows - stats.ok}, ${stats.cost}, limit {self.run.limiter.slots}"

    def row(self, row: BatchRow) -> None:
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(1)
            if now - self.last >= 0.2:
                self.last = now
                self.bar.set_postfix_str(self._facts(), refresh=False)
        elif self.mode == "lines" and now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        done = self.run.stats.rows
        rate = done / (now - self.started) if now > self.started else 0.0
        eta = f", ETA {max(0.0, (self.total - done) / rate):.0f}s" if rate > 0 and self.total >= done else ""
        print(f"batch: {done}/{self.total} rows ({self._facts()}), {rate:.1f} rows/s{eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self._facts(), refresh=False)
            self.bar.close()
        elif self.mode == "lines" and self.run.stats.rows:
            self._line(time.monotonic())
