"""Reply texts built to be slow or dangerous for a reply parser, each a function of a size in
characters (roughly): the worst shapes found for `openrouter_registry.replies.structured`. Used by the
linear-work tests (tests/test_parse_bounds.py) and by benchmarks/bench_parse.py; a plugin author can
run a parser of their own over them.

    from openrouter_registry.testing.hostile_replies import HOSTILE_REPLIES

    for name, make in HOSTILE_REPLIES.items():
        my_parser(make(100_000), schema)  # must return in time linear in the size, and never raise
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["HOSTILE_REPLIES"]

HOSTILE_REPLIES: dict[str, Callable[[int], str]] = {
    "open-then-stray-closers": lambda n: "{" * 499 + "]" * n,  # issue 12.1: a walk over the open stack per closer
    "opens-then-mixed-closers": lambda n: "[{" * 240 + "}]" * (n // 2),
    "open-brackets": lambda n: "[" * n,  # issue 8.1: RecursionError in json.loads
    "nested-keys": lambda n: '{"a":' * (n // 5),
    "fence-marks-one-line": lambda n: "```" * (n // 3) + "\nx",
    "fence-marks-lines": lambda n: "```x\n" * (n // 5),
    "python-literals": lambda n: "{'a': [1, 2, 3], 'b': None}, " * (n // 30),
    "repairable-objects": lambda n: "{'a': 1,} " * (n // 10),
    "escaped-quotes": lambda n: '"' + '\\"' * (n // 2),
    "open-strings": lambda n: '{"' * (n // 2),
    "single-quotes": lambda n: "['" + "\\'" * (n // 2),
    "spaces-then-quote": lambda n: "{" + " " * n + "'",
    "typographic": lambda n: "{\u201ca\u201d: \u201cb\u201d, " * (n // 11),
    "tokens": lambda n: "<|eot_id|>" * (n // 10),
    "operator-chain": lambda n: "[" + "1+" * (n // 2) + "1]",  # Python's parser recurses per operator
    "sign-chain": lambda n: "[" + "-" * n + "1]",
}
