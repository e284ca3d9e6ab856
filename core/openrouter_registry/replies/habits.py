"""Text fixes that undo real models' JSON habits, one function per habit. The generic reply parser
(`structured.parse_json_reply`) decodes a candidate block with them only after every exact decoding
of every candidate has failed, so a fix never shadows JSON that is really in the reply.

Each habit was seen in the wild (see README "Reply parsing" and tests/test_habits.py):

- `typographic_quotes`: ``“city”: “Paris”`` (quotes curled by the model or a word processor used as
  JSON delimiters; BoundaryML/baml#1074, circlecell/jsonlint.com#19).
- `invalid_escapes`: ``"price\\_usd"``, ``"it\\'s"`` (Markdown or Python escaping: the backslash is
  dropped) and ``"\\d+"`` (a regex: the backslash is kept as a character; mangiucugna/json_repair#19,
  codecoradev/cora-code#67).
- `after_unopened_reasoning`: a reasoning model's draft that ends in ``</think>`` without the opening
  tag (DeepSeek-R1 chat templates; deepseek-ai/DeepSeek-R1#352, open-webui/open-webui#9808).

Literal newlines and tabs inside strings (mem0ai/mem0#4420, instructor#75) need no text fix: the
parser's lenient decoder accepts them. Every function here is linear in the text (one regex pass).
"""

from __future__ import annotations

import re

__all__ = ["typographic_quotes", "invalid_escapes", "after_unopened_reasoning", "fix_habits"]

_CURLY_DOUBLE = "\u201c\u201d\u201e\u201f\u2033"  # “ ” „ ‟ ″
_CURLY_SINGLE = "\u2018\u2019\u201a\u201b\u2032"  # ‘ ’ ‚ ‛ ′
_OPENING_DOUBLE = re.compile(rf"(?<=[{{\[,:])(\s*)[{_CURLY_DOUBLE}]")
_CLOSING_DOUBLE = re.compile(rf"[{_CURLY_DOUBLE}](?=\s*[:,}}\]])")
_OPENING_SINGLE = re.compile(rf"(?<=[{{\[,:])(\s*)[{_CURLY_SINGLE}]")
_CLOSING_SINGLE = re.compile(rf"[{_CURLY_SINGLE}](?=\s*[:,}}\]])")
_ESCAPE = re.compile(r'\\(?:(["\\/bfnrt]|u[0-9a-fA-F]{4})|(.))', re.DOTALL)
_UNOPENED_REASONING = re.compile(r"</(think|thinking|reasoning)>")


def typographic_quotes(text: str) -> str:
    """``text`` with curly quotes that stand where JSON delimits a string (after ``{ [ , :``, before
    ``: , } ]``) made straight: double ones ``"``, single ones ``'`` (read as a Python literal).
    Curly quotes inside a string's words are left alone."""
    if not any(mark in text for mark in _CURLY_DOUBLE + _CURLY_SINGLE):
        return text
    text = _CLOSING_DOUBLE.sub('"', _OPENING_DOUBLE.sub(r'\1"', text))
    return _CLOSING_SINGLE.sub("'", _OPENING_SINGLE.sub(r"\1'", text))


def _escape(found: re.Match[str]) -> str:
    if found.group(1) is not None:
        return found.group(0)  # a valid JSON escape
    char = found.group(2)
    if char.isalnum():
        return "\\\\" + char  # \d, \s, \w: a regex or a Windows path: keep the backslash as a character
    if char.isspace():
        return char  # a line continuation: the backslash is noise
    return char  # \_ \* \# \' \$ ...: Markdown or Python escaping of a character JSON needs no escape for


def invalid_escapes(text: str) -> str:
    """``text`` with every backslash escape JSON does not know rewritten: an escaped punctuation
    mark or space loses its backslash, an escaped letter or digit keeps it as a character."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_escape, text)


def after_unopened_reasoning(text: str) -> str | None:
    """The text after a closing ``</think>`` (``</thinking>``, ``</reasoning>``) that no opening tag
    precedes, or None when there is no such tag."""
    closing = _UNOPENED_REASONING.search(text)
    if closing is None or f"<{closing.group(1)}>" in text[: closing.start()]:
        return None
    return text[closing.end() :]


def fix_habits(text: str) -> str:
    """``text`` with every text fix applied (quotes first: an escape fix must see real delimiters)."""
    return invalid_escapes(typographic_quotes(text))
