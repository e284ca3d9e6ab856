"""The reply parsers' text passes that run in short C steps on long texts (so a worker thread
parsing a big reply hands the GIL back to the event loop often) give exactly what the one-call
expressions they replaced gave: `structured.nesting_depth` (brackets outside double-quoted strings,
an escaped quote opening none; the highest running level minus the lowest) and
`candidates.strip_control_tokens` (cut where no control token can lie across the cut)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from openrouter_registry.replies import candidates, structured
from openrouter_registry.replies.structured import nesting_depth
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


def _old_strip(text: str) -> str:
    return candidates._CONTROL_TOKENS.sub("", candidates._INVISIBLE_CHARS.sub("", text))


_TOKEN_PARTS = st.sampled_from(
    [
        "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|im_start|>", "<|im_start|>assistant", "</s>", "<s>", "[INST]", "[/INST]", "<<SYS>>", "<eos>",
        "<", "|", ">", "[", "/", "a", "_", " ", "\n", "\u200b", "\ufeff", "x" * 37, "y" * 500,
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_TOKEN_PARTS, min_size=1, max_size=4_000))
def test_strip_control_tokens_in_pieces_is_one_sub(parts: list[str]) -> None:
    """Texts longer than a piece, tokens and near-tokens lying across the piece boundaries."""
    text = "".join(parts)
    assert candidates.strip_control_tokens(text) == _old_strip(text)


def test_strip_control_tokens_on_hostile_shapes() -> None:
    for name, make in HOSTILE_REPLIES.items():
        text = make(100_000)
        assert candidates.strip_control_tokens(text) == _old_strip(text), name


def test_a_token_across_the_piece_boundary_is_removed() -> None:
    piece = candidates._STEP_CHARS
    for token in ("<|start_header_id|>" + "u" * 40 + "<|end_header_id|>", "<|" + "w" * 40 + "|>", "[/INST]"):
        for before in range(piece - len(token), piece + 1):
            text = "a" * before + token + "b" * piece
            assert candidates.strip_control_tokens(text) == "a" * before + "b" * piece, (token, before)


_STRING_PARTS = st.sampled_from(["\\", '"', "'", "\n", "a", "\\\\", '\\"', "\\'", "b" * 40])


@settings(max_examples=300, deadline=None)
@given(st.lists(_STRING_PARTS, max_size=60), st.integers(min_value=0, max_value=3))
def test_string_end_is_the_regex_match(parts: list[str], pad_step: int) -> None:
    """Across step boundaries (short steps here), for both quote kinds, wherever the text starts."""
    body = "".join(parts)
    for quote, string in (('"', candidates._DQ_STRING), ("'", candidates._SQ_STRING)):
        text = quote + body
        for index in (0, *(i for i, char in enumerate(text) if char == quote)):
            match = string.match(text, index)
            for step in (2 + pad_step, 7, candidates._STEP_CHARS):  # a step reads 2 characters at least
                assert candidates._string_end(text, index, string, step) == (match.end() if match else None)


def test_long_strings_end_where_the_regex_ends() -> None:
    texts = ['["' + '\\"' * 50_000 + '"]', '["' + '\\"' * 50_000, "['" + "\\'" * 50_000, "['" + "\\'" * 50_000 + "\n'"]
    texts.append('["' + "\\\\" * 30_000 + '"]')
    for text in texts:
        string = candidates._DQ_STRING if text[1] == '"' else candidates._SQ_STRING
        match = string.match(text, 1)
        assert candidates._string_end(text, 1, string) == (match.end() if match else None), text[:8]
