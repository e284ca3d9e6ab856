"""Where JSON may be in a model's reply: the reply's text cleaned up (control tokens, invisible
characters, a leading reasoning block, a "Here is the JSON:" preamble) and the candidate blocks
(fenced blocks, json-tagged first, then balanced ``{...}``/``[...]`` spans found by one string-aware
scan). Every function is linear in the text; `structured` decodes what they find.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = [
    "MAX_SCAN_CHARS",
    "MAX_CANDIDATES",
    "MAX_BLOCKS",
    "MAX_SCAN_DEPTH",
    "CLOSER_OF",
    "OPENER",
    "Replay",
    "json_candidates",
    "strip_control_tokens",
    "strip_preamble",
    "trim",
    "whole_then",
    "without_reasoning",
]

#: Replies longer than this are only tried as one exact JSON document (no scanning, no repair).
MAX_SCAN_CHARS = 2_000_000
#: At most this many candidate blocks are considered in one reply.
MAX_CANDIDATES = 32
#: The candidate scan stops after this many blocks found, repeated ones included.
MAX_BLOCKS = 4_096
#: Brackets nested deeper than this end the candidate scan.
MAX_SCAN_DEPTH = 500

_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u200e\u200f"
_INVISIBLE_CHARS = re.compile(f"[{_INVISIBLE}]+")  # a regex, not str.translate: ~20x faster on non-ASCII text
_TOKEN = (
    r"<\|start_header_id\|>[^<>|\n]{0,40}<\|end_header_id\|>"
    r"|<\|im_start\|>(?:assistant|user|system)?"
    r"|<\|[A-Za-z0-9_]{1,40}\|>"
    r"|</?s>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>|<eos>|<bos>|<pad>"
)
_CONTROL_TOKENS = re.compile(_TOKEN)
#: No control token is longer (the header one: 19 + 40 + 17 characters).
_LONGEST_TOKEN = 76
#: Long texts are cleaned in pieces of about this many characters (each a short C call).
_STEP_CHARS = 16_384
_LEADING_JUNK = re.compile(rf"(?:\s|[{_INVISIBLE}]|{_TOKEN})+")
_TRAILING_TOKEN = re.compile(rf"(?:{_TOKEN})\Z")
_TAIL = 128
_REASONING = re.compile(r"^\s*<(think|thinking|reasoning)>.*?</\1>", re.DOTALL)
_JSON_TAGS = frozenset({"json", "jsonc", "json5", "jsonl"})
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|okay|ok|of course|absolutely|great|alright)\b[^\n:{\[]{0,80}?[!.,]\s*)?"
    r"(?:here(?:'s|\u2019s| is| are)|below is|the (?:json|output|result|answer|response)(?: is)?)"
    r"\b[^\n{\[]{0,200}?:[ \t]*\n?",
    re.IGNORECASE,
)
OPENER = re.compile(r"[{\[]")
#: What the scan looks for, by which closers could close an open block (curly open?, square open?):
#: a stray closer is skipped by the regex engine, not by a Python step.
_SPECIAL = {
    (True, True): re.compile(r"""[{}\[\]"']"""),
    (True, False): re.compile(r"""[{}\["']"""),
    (False, True): re.compile(r"""[{\[\]"']"""),
    (False, False): re.compile(r"""[{\["']"""),
}
_DQ_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SQ_STRING = re.compile(r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'")
#: What may follow the opening quote of a string: the bodies of `_DQ_STRING` and `_SQ_STRING`.
_BODY = {'"': re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL), "'": re.compile(r"[^'\\\n]*(?:\\.[^'\\\n]*)*")}
CLOSER_OF = {"{": "}", "[": "]"}


# --- text clean-up ---------------------------------------------------------------------------------


def strip_control_tokens(text: str) -> str:
    """``text`` without model control tokens (``<|eot_id|>``, ``<|im_end|>``, ``</s>``, ``[/INST]``...)
    and invisible characters (BOM, zero-width spaces and joiners, direction marks)."""
    if len(text) <= _STEP_CHARS:
        return _CONTROL_TOKENS.sub("", _INVISIBLE_CHARS.sub("", text))
    visible = "".join(_INVISIBLE_CHARS.sub("", text[i : i + _STEP_CHARS]) for i in range(0, len(text), _STEP_CHARS))
    return "".join(_CONTROL_TOKENS.sub("", piece) for piece in _token_safe_pieces(visible))


def _crossed(text: str, cut: int) -> int | None:
    """The end of a control token that starts before ``cut`` and ends after it, or None."""
    start = max(0, cut - _LONGEST_TOKEN + 1)
    while True:
        token = _CONTROL_TOKENS.search(text, start, cut + _LONGEST_TOKEN)
        if token is None or token.start() >= cut:
            return None
        if token.end() > cut:
            return token.end()
        start = token.start() + 1


def _token_safe_pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of about `_STEP_CHARS` cut where no control token could lie across the
    cut (tokens hold no regex look-around and are at most `_LONGEST_TOKEN` long), so removing the
    tokens piece by piece gives what one ``sub`` over the whole text gives, in short C calls
    (one ``sub`` over a 1 MB reply holds the GIL ~20-60 ms)."""
    start = 0
    while len(text) - start > _STEP_CHARS:
        cut = start + _STEP_CHARS
        for _ in range(_STEP_CHARS):
            crossing = _crossed(text, cut)
            if crossing is None:
                break
            cut = crossing
        else:
            break  # no safe cut found (never seen): the rest in one piece, still exact
        yield text[start:cut]
        start = cut
    yield text[start:]


def strip_preamble(text: str) -> str:
    """``text`` without a leading "Here is the JSON:" / "Sure! Here's the output:" sentence."""
    return _PREAMBLE.sub("", text, count=1)


def trim(text: str) -> str:
    """``text`` without surrounding whitespace, invisible characters and control tokens."""
    leading = _LEADING_JUNK.match(text)
    start = leading.end() if leading is not None else 0
    end = len(text)
    while end > start:
        while end > start and (text[end - 1].isspace() or text[end - 1] in _INVISIBLE):
            end -= 1
        tail = text[max(start, end - _TAIL) : end]
        trailing = _TRAILING_TOKEN.search(tail)
        if trailing is None:
            break
        end -= len(tail) - trailing.start()
    return text[start:end]


def without_reasoning(text: str) -> str:
    """``text`` without a leading ``<think>...</think>`` block (reasoning models' drafts)."""
    return _REASONING.sub("", text, count=1)


# --- candidates ------------------------------------------------------------------------------------


class _Open(NamedTuple):
    start: int
    closer: str
    children: list[tuple[int, int]]


def _after_structural(text: str, index: int) -> bool:
    """True when the character before ``index`` (whitespace skipped) can precede a string value."""
    i = index - 1
    while i >= 0 and text[i].isspace():
        i -= 1
    return i < 0 or text[i] in "{[,:("


def _string_end(text: str, index: int, string: re.Pattern[str], step: int = _STEP_CHARS) -> int | None:
    """Where ``string.match(text, index)`` ends (None: no match), in C calls that each read at most
    ``step`` (at least 2) characters: a 1 MB unterminated string of escapes is one ~60 ms call.
    Exact: a string's body is read one way only (a backslash always takes the next character), so
    the match, when there is one, ends at the first quote that body reading stops at."""
    whole = string.match(text, index, index + step)
    if whole is not None or index + step >= len(text):
        return whole.end() if whole is not None else None
    quote, body, pos = text[index], _BODY[text[index]], index + 1
    while True:
        step_end = min(len(text), pos + step)
        walked = body.match(text, pos, step_end)  # always matches (a body may be empty)
        stop = walked.end() if walked is not None else pos
        if stop < len(text) and text[stop] == quote:
            return stop + 1
        if step_end == len(text) or stop < step_end - 1:
            return None  # the body stopped at the end, at a line break (single quotes) or a lone backslash
        pos = stop  # the step ended inside the body (perhaps between a backslash and what it escapes)


def _spans(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the balanced top-level ``{...}``/``[...]`` blocks of ``text``, in order.

    One pass, aware of double-quoted strings (and of single-quoted ones where a value can start).
    A closer that matches an outer opener closes the blocks opened inside it; a stray closer is
    ignored. Blocks completed inside an opener that never closes (a lone ``{`` in prose) follow.
    Linear: ``open_at`` keeps, per closer, the stack depths of the blocks it would close, so a
    closer finds its block at once, stray closers are never visited, and each block is dropped once.
    """
    stack: list[_Open] = []
    open_at: dict[str, list[int]] = {"}": [], "]": []}
    pos = 0
    while True:
        scan = _SPECIAL[bool(open_at["}"]), bool(open_at["]"])] if stack else OPENER
        found = scan.search(text, pos)
        if found is None:
            break
        char, index = found.group(), found.start()
        pos = index + 1
        if char == '"':
            if index and text[index - 1] == "\\":
                continue  # an escaped quote outside any string: JSON inside a JSON string
            end = _string_end(text, index, _DQ_STRING)
            if end is not None:  # an unterminated quote is prose (no later quote can close it)
                pos = end
        elif char == "'":
            end = _string_end(text, index, _SQ_STRING) if _after_structural(text, index) else None
            if end is not None:
                pos = end
        elif char in CLOSER_OF:
            if len(stack) >= MAX_SCAN_DEPTH:
                break
            closer = CLOSER_OF[char]
            open_at[closer].append(len(stack))
            stack.append(_Open(index, closer, []))
        else:
            depth = open_at[char][-1]
            opened = stack[depth]
            for dropped in stack[depth:]:
                open_at[dropped.closer].pop()
            del stack[depth:]
            if stack:
                stack[-1].children.append((opened.start, index + 1))
            else:
                yield opened.start, index + 1
    yield from sorted(span for opened in stack for span in opened.children)


def _at_line_start(text: str, index: int) -> bool:
    i = index - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i >= 0 and text[i] == "\n"


def _fences(text: str) -> list[str]:
    """The bodies of the fenced code blocks of ``text``: json-tagged first, then untagged, then others.

    An opening fence is ```` ``` ```` with an optional tag and a line end; the closing one starts a
    line (so a fence mark inside a one-line JSON string never closes a block). Linear in ``text``:
    each line end is looked up once, and a header is only read when it holds no backtick.
    """
    marks = [found.start() for found in re.finditer("```", text)]
    found: list[tuple[int, str]] = []
    line_end = -1
    i = 0
    while i < len(marks) and len(found) < MAX_CANDIDATES:
        if line_end < marks[i] + 3:
            line_end = text.find("\n", marks[i] + 3)
            if line_end < 0:
                break
        header_end = line_end
        if text.find("`", marks[i] + 3, header_end) >= 0:
            i += 1
            continue
        header = text[marks[i] + 3 : header_end].strip()
        j = i + 1
        while j < len(marks) and (marks[j] < header_end or not _at_line_start(text, marks[j])):
            j += 1
        if j == len(marks):
            break
        tag = header.split()[0].lower() if header else ""
        rank = 0 if tag in _JSON_TAGS else 1 if not tag else 2
        found.append((rank, text[header_end + 1 : marks[j]]))
        i = j + 1
    return [body for _, body in sorted(found, key=lambda item: item[0])]


def json_candidates(text: str) -> Iterator[str]:
    """The blocks of ``text`` that may hold a JSON value, best first, each once, at most
    `MAX_CANDIDATES`: fenced blocks (json-tagged first), then balanced ``{...}``/``[...]`` spans.
    The scan stops after `MAX_BLOCKS` blocks, repeated ones included (``{}{}{}...``)."""
    if len(text) > MAX_SCAN_CHARS:
        return
    seen: set[str] = set()
    blocks = (block.strip() for block in _fences(text)) if "```" in text else ()
    spans = (text[start:end] for start, end in _spans(text))
    for block in itertools.islice(itertools.chain(blocks, spans), MAX_BLOCKS):
        if block and block not in seen:
            seen.add(block)
            yield block
            if len(seen) >= MAX_CANDIDATES:
                return


class Replay:
    """An iterable over a generator's items that computes each item once, however often it is
    iterated (a reply's candidates serve the exact pass and the repair pass: one scan)."""

    def __init__(self, items: Iterator[str]) -> None:
        self._items = items
        self._seen: list[str] = []

    def __iter__(self) -> Iterator[str]:
        index = 0
        while True:
            if index == len(self._seen):
                item = next(self._items, None)
                if item is None:
                    return
                self._seen.append(item)
            yield self._seen[index]
            index += 1


def whole_then(text: str, blocks: Iterable[str]) -> Iterator[str]:
    """The whole (trimmed) text, then its ``blocks`` (`json_candidates`)."""
    whole = trim(text)
    if whole:
        yield whole
    yield from blocks
