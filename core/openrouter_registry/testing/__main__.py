"""``python -m openrouter_registry.testing``: the local OpenRouter-compatible server, for another process.

    python -m openrouter_registry.testing [--host 127.0.0.1] [--port 0] [--api-key KEY]

It prints the two settings a client needs, one per line, ready for ``export``:

    OPENROUTER_BASE_URL=http://127.0.0.1:<port>/api/v1
    OPENROUTER_API_KEY=sk-or-v1-local-test-key

and serves until Ctrl-C or SIGTERM (then prints ``stopped`` and exits 0). Without a script it answers
like OpenRouter, each model family in its own style (the same server `openrouter-registry demo` uses
without a key): structured requests get a valid instance of their schema, ``GET /models`` lists the
catalog. ``--port 0`` (the default) takes a free port. A port already in use exits 2 with one line.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .server import DEFAULT_API_KEY, FakeOpenRouter

PROG = "python -m openrouter_registry.testing"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Run the local OpenRouter-compatible test server.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, a free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help=f"the one key it accepts (default: {DEFAULT_API_KEY})")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"{PROG}: --port must be between 0 and 65535, got {args.port}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    server = FakeOpenRouter(api_key=args.api_key, host=args.host, port=args.port)
    try:
        server.start()
    except OSError as exc:
        print(f"{PROG}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        print(f"OPENROUTER_BASE_URL={server.base_url}\nOPENROUTER_API_KEY={server.api_key}", flush=True)
        print("serving; Ctrl-C or SIGTERM stops it", file=sys.stderr, flush=True)
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
