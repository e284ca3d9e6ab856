"""Text from upstream (model ids and names, plugin names, API error messages) made safe for a terminal.

A catalog entry or an error message can hold escape sequences (``\\x1b[2J`` clears the screen, OSC 8
forges links, ``\\r`` overwrites a line and so forges table rows) and invisible or bidirectional
controls. `safe` shows each such character as its Python escape (``\\x1b``, ``\\u202e``), so what the
terminal prints is what was received, and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["safe", "safe_text", "for_terminal"]


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe(text: str) -> str:
    """``text`` with every non-printable character (control, format, separator other than the space,
    surrogate, unassigned) written as its escape; printable text unchanged."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def safe_text(text: str) -> str:
    """`safe` for multi-line text (a model's answer): line breaks and tabs are kept, every other
    non-printable character is written as its escape."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char in "\n\t" else _escape(char) for char in text)


def for_terminal(stream: object, raw: bool = False) -> Callable[[str], str]:
    """How to show a model's text on ``stream``: `safe_text` when it is a terminal (an escape sequence in
    an answer would drive the terminal: clear it, set its title, write the clipboard with OSC 52), as is
    when it is a file or a pipe, or when ``raw`` (``--raw``)."""
    isatty = getattr(stream, "isatty", None)
    if raw or not callable(isatty) or not isatty():
        return _as_is
    return safe_text


def _as_is(text: str) -> str:
    return text
