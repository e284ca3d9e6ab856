"""Text from upstream (model ids and names, plugin names, API error messages) made safe for a terminal.

A catalog entry or an error message can hold escape sequences (``\\x1b[2J`` clears the screen, OSC 8
forges links, ``\\r`` overwrites a line and so forges table rows) and invisible or bidirectional
controls. `safe` shows each such character as its Python escape (``\\x1b``, ``\\u202e``), so what the
terminal prints is what was received, and nothing more.
"""

from __future__ import annotations

__all__ = ["safe"]


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe(text: str) -> str:
    """``text`` with every non-printable character (control, format, separator other than the space,
    surrogate, unassigned) written as its escape; printable text unchanged."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)
