"""Bytes of a response body, bounded: `decoded` undoes gzip/deflate in steps of at most `STEP`
bytes (a gzip bomb never expands in memory), and `LineSplitter` cuts a server-sent-event stream into
lines exactly as the SSE specification says, at CR, LF or CRLF only (``str.splitlines`` would also cut
at U+2028, U+2029, U+0085 ..., which JSON allows raw inside strings), with a cap on one line."""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator

from ..errors import InvalidResponseError

__all__ = ["LineSplitter", "decoded", "STEP"]

#: Most bytes one decompression step produces.
STEP = 64 * 1024


async def decoded(raw: AsyncIterator[bytes], content_encoding: str) -> AsyncIterator[bytes]:
    """The body ``raw`` (as sent, ``Content-Encoding: content_encoding``) decompressed, in pieces of at
    most `STEP` bytes. An unknown encoding or a corrupt stream raises `InvalidResponseError`."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        async for piece in raw:
            yield piece
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise InvalidResponseError(f"Invalid upstream response: unsupported Content-Encoding {encoding[:40]!r}")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 32))
    try:
        async for data in raw:
            while data:
                out = inflater.decompress(data, STEP)
                data = inflater.unconsumed_tail
                if out:
                    yield out
        rest = inflater.flush()
    except zlib.error:
        raise InvalidResponseError("Invalid upstream response: the body could not be decompressed") from None
    if rest:
        yield rest

_EOL = re.compile(rb"\r\n|\r|\n")


class LineSplitter:
    """Feed it the bytes of a stream in any pieces; get back each complete line as text, without its
    terminator. A CRLF split across two pieces counts once. A line longer than ``max_line`` bytes, or
    a line that is not UTF-8, raises `InvalidResponseError`."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        # the start of a line still to come, in one growing buffer (a list of pieces cost about 1.3x a
        # refused line's size in allocator overhead; this holds the line and the buffer's slack)
        self._pending = bytearray()
        self._after_cr = False

    def feed(self, data: bytes) -> list[str]:
        """The lines that ``data`` completed (maybe none)."""
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        if not data:
            return []
        self._after_cr = data.endswith(b"\r")
        pieces = _EOL.split(data)
        rest = pieces.pop()  # after the last terminator: the start of a line still to come
        lines: list[str] = []
        for piece in pieces:
            if self._pending:
                self._check(len(self._pending) + len(piece))
                self._pending += piece
                line, self._pending = self._pending, bytearray()
                lines.append(self._text(line))
            else:
                lines.append(self._text(piece))
        if rest:
            self._check(len(self._pending) + len(rest))
            self._pending += rest
        return lines

    def flush(self) -> list[str]:
        """End of stream: the last line when it had no terminator."""
        if not self._pending:
            return []
        line, self._pending = self._pending, bytearray()
        return [self._text(line)]

    def _check(self, size: int) -> None:
        if size > self.max_line:
            raise InvalidResponseError(
                f"Invalid upstream response: a stream line is longer than {self.max_line} bytes "
                "(OPENROUTER_MAX_RESPONSE_BYTES)"
            )

    def _text(self, piece: bytes | bytearray) -> str:
        self._check(len(piece))
        try:
            return piece.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidResponseError("Invalid upstream response: a stream line is not UTF-8 text") from None
