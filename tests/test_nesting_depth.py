"""`structured.nesting_depth` works in short C steps (so a worker thread parsing a big reply hands
the GIL back to the event loop often) and still gives exactly what the one-call expression it
replaced gave: brackets outside double-quoted strings (an escaped quote opens none), then the
highest running level minus the lowest."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from openrouter_registry import structured
from openrouter_registry.structured import nesting_depth
from openrouter_registry.testing.hostile_replies import HOSTILE_REPLIES

#: The expression nesting_depth used before (one ``sub`` per regex over the whole text).
_OLD_STRING = re.compile(r'(?<!\\)"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OLD_NOT_BRACKET = re.compile(r"[^\[\]{}()]+")


def _old_skeleton(text: str) -> str:
    return _OLD_NOT_BRACKET.sub("", _OLD_STRING.sub("", text))


def _old_depth(text: str, limit: int) -> int:
    openers = text.count("[") + text.count("{") + text.count("(")
    if openers <= limit:
        return openers
    level = highest = lowest = 0
    for char in _old_skeleton(text):
        level += 1 if char in "[{(" else -1
        highest, lowest = max(highest, level), min(lowest, level)
    return highest - lowest


#: Quotes, escapes and brackets dense enough that strings open, close and hide brackets often.
_TEXTS = st.text(alphabet=st.sampled_from('""\\\\[]{}()a:, \n\u2028'), max_size=400)


@settings(max_examples=600, deadline=None)
@given(_TEXTS, st.integers(min_value=0, max_value=8))
def test_nesting_depth_is_the_old_expression(text: str, limit: int) -> None:
    assert structured._brackets_outside_strings(text) == _old_skeleton(text)
    assert nesting_depth(text, limit) == _old_depth(text, limit)


@settings(max_examples=50, deadline=None)
@given(st.lists(_TEXTS, min_size=1, max_size=8), st.integers(min_value=1, max_value=60_000))
def test_chunk_boundaries_change_nothing(parts: list[str], padding: int) -> None:
    """Texts longer than a chunk, with strings and escapes lying across the chunk boundaries."""
    text = ("[" * padding).join(parts) + '"\\"' * (padding % 7)
    assert structured._brackets_outside_strings(text) == _old_skeleton(text)
    assert nesting_depth(text, 8) == _old_depth(text, 8)


def test_hostile_shapes_give_the_old_depth() -> None:
    for name, make in HOSTILE_REPLIES.items():
        text = make(100_000)
        assert nesting_depth(text) == _old_depth(text, structured.MAX_DEPTH), name


def test_examples() -> None:
    assert nesting_depth('{"a": "[[[", "b": [1]}', 0) == 2  # brackets in a string do not count
    assert nesting_depth('[\\"[[", 1]', 0) == 3  # an escaped quote opens no string
    assert nesting_depth("]]][[", 0) == 3  # stray closers lower the floor: -3, back to -1
    assert nesting_depth("]]][[[[[", 0) == 3 + 2
