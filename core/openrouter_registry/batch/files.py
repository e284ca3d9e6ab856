"""The files of a `batch` run: streamed JSONL input, the output file's lock, resume, and the row writer.

Nothing here holds a whole file: the input is read line by line (twice: a first pass collects the ids,
as 8-byte hashes, to refuse duplicates before anything is sent and to count the rows; the second pass
feeds the run), and the output is appended and flushed one row at a time, so a crash, a kill or Ctrl-C
loses nothing that finished. Ids are remembered as 8-byte BLAKE2b hashes (about 60 bytes per row in
memory); a duplicate found by hash is confirmed against the real ids before the run is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import orjson

from .run import BatchRow, InputLine, id_key
from ..errors import ConfigurationError
from ..models.safefiles import check_regular, open_regular, replace_keeping
from ..schemas.fastjson import MISS, fast_loads

__all__ = ["MAX_LINE_BYTES", "read_input", "scan_input", "InputScan", "OutputLock", "resume_done", "RowWriter"]

#: Longest input line read (a longer one is an error row, read past in pieces, never held whole).
MAX_LINE_BYTES = 32 * 1024 * 1024


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: bytes) -> Any:
    """Strict JSON (NaN and Infinity refused); orjson for the usual line (see fastjson)."""
    value = fast_loads(text)
    return json.loads(text, parse_constant=_reject_constant) if value is MISS else value


def read_input(path: Path) -> Iterator[InputLine]:
    """Each non-blank line of ``path`` as an `InputLine`: its JSON value, or the problem that stops it
    from being one (not UTF-8, not JSON, not an object, too long). Streams: one line in memory at a time."""
    with open(path, "rb") as file:
        number = 0
        while True:
            raw = file.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line, piece by piece
                    raw = file.readline(MAX_LINE_BYTES)
                yield InputLine(number, problem=f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB; not read")
                continue
            if not raw.strip():
                continue
            try:
                value = _loads(raw)
            except UnicodeDecodeError:
                yield InputLine(number, problem="not UTF-8 text")
                continue
            except ValueError as exc:
                yield InputLine(number, problem=f"not JSON ({str(exc)[:200]})")
                continue
            except (RecursionError, MemoryError):
                yield InputLine(number, problem="nested too deeply to read")
                continue
            if not isinstance(value, dict):
                yield InputLine(number, problem=f"expected a JSON object, got {type(value).__name__}")
                continue
            if _has_lone_surrogate(raw, value):
                yield InputLine(number, problem="holds a lone surrogate escape (such as \\ud800), which is not text")
                continue
            yield InputLine(number, value)


def _has_lone_surrogate(raw: bytes, value: Any) -> bool:
    """True when the JSON line decodes to text that is not valid Unicode (``"\\ud800"`` alone): such a row
    could be sent but never written. Only a line with a ``\\u`` escape can hold one."""
    if b"\\u" not in raw.lower():
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def _line_id(item: InputLine) -> Any:
    value = item.value
    if item.problem is None and isinstance(value, dict):
        id = value.get("id")
        if (isinstance(id, str) and id) or (isinstance(id, int) and not isinstance(id, bool)):
            return id
    return None


@attrs.frozen
class InputScan:
    """What the first pass over the input found: ``rows`` to run (blank lines and, on resume, ids
    already ok are not counted) and ``skipped`` (ids already ok in the output)."""

    rows: int
    skipped: int


def scan_input(path: Path, done: set[int]) -> InputScan:
    """First pass: count the rows and refuse duplicate ids (`ConfigurationError` naming them and their
    lines) before anything is sent."""
    seen: set[int] = set()
    repeated: set[int] = set()
    rows = skipped = 0
    for item in read_input(path):
        id = _line_id(item)
        if id is None:
            rows += 1
            continue
        key = _hash(id_key(id))
        if key in seen:
            repeated.add(key)
        seen.add(key)
        if key in done:
            skipped += 1
        else:
            rows += 1
    del seen
    if repeated:
        _refuse_duplicates(path, repeated)
    return InputScan(rows=rows, skipped=skipped)


def _refuse_duplicates(path: Path, repeated: set[int]) -> None:
    """Confirm hash matches against the real ids; raise for the real duplicates."""
    lines: dict[str, list[int]] = {}
    for item in read_input(path):
        id = _line_id(item)
        if id is not None and _hash(id_key(id)) in repeated:
            lines.setdefault(id_key(id), []).append(item.line)
    duplicates = [(key, numbers) for key, numbers in lines.items() if len(numbers) > 1]
    if not duplicates:
        return  # two different ids with the same 8-byte hash: no duplicate after all
    shown = "; ".join(f"{key} on lines {', '.join(map(str, numbers[:5]))}" for key, numbers in duplicates[:5])
    more = f" (and {len(duplicates) - 5} more)" if len(duplicates) > 5 else ""
    raise ConfigurationError(f"duplicate ids in {path}: {shown}{more}; every row needs its own id. Nothing was sent")


def is_done(done: set[int], id: Any) -> bool:
    return id is not None and _hash(id_key(id)) in done


class OutputLock:
    """An exclusive lock on ``OUT.lock`` (``flock``; released by the kernel if the process dies, so a
    killed run never leaves a stale lock). A second run on the same OUT gets `ConfigurationError`."""

    def __init__(self, out: Path) -> None:
        self.path = out.with_name(out.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        if sys.platform == "win32":  # pragma: no cover
            raise ConfigurationError("the batch command's output lock needs a POSIX system (flock)")
        import fcntl

        while True:
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # never through a planted symlink
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
                os.close(fd)
                raise ConfigurationError(
                    f"another batch run (pid {owner}) is writing {self.path.name[:-5]}: wait for it to finish or "
                    f"choose another --out"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its previous owner unlinked while we were opening it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.path)  # while still holding it: the next run creates a fresh one
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None


def _row_line(data: dict[str, Any], *, checked: bool) -> bytes:
    """One output line. When the row's ``content`` is ``checked`` strict JSON (`GenerationResult.content_json`)
    orjson writes it: the other fields are finite numbers, strings and None (orjson would write NaN as null,
    but there is none). What orjson cannot write (an integer beyond 64 bits, a lone surrogate) and unchecked
    content go through the json module; content holding NaN or Infinity makes the row say so instead."""
    if checked:
        try:
            return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            pass
    try:
        line = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # content holding NaN or Infinity: not JSON; the row says so instead
        data.pop("content", None)
        data["ok"] = False
        data["error"] = {"type": "StructuredOutputError", "message": "the content holds NaN or Infinity, not JSON"}
        line = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return (line + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: written as its JSON escape, so the row is never lost
        return (json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + "\n").encode("ascii")


def resume_done(out: Path) -> set[int]:
    """For ``--resume``: rewrite OUT keeping only its ``ok`` rows, once each (failed rows are run
    again; a line cut short by a kill is dropped), and return the hashes of their ids. The rewrite goes
    to a new file made beside OUT (``O_EXCL``, a random name) with OUT's mode and owner, which replaces
    OUT atomically, so a crash here leaves OUT as it was. A symlink, a device or any other non-regular
    OUT is refused (`UnsafeFileError`), never replaced."""
    done: set[int] = set()
    check_regular(out)
    if not out.exists():
        return done

    def keep(kept: IO[bytes]) -> None:
        with os.fdopen(open_regular(out, os.O_RDONLY), "rb") as source:
            for raw in source:
                if not raw.endswith(b"\n"):
                    continue  # the last line, cut short by a kill
                try:
                    row = _loads(raw)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(row, dict) or row.get("ok") is not True or "id" not in row:
                    continue
                key = _hash(id_key(row["id"]))
                if key in done:
                    continue
                done.add(key)
                kept.write(raw)

    replace_keeping(out, keep)
    return done


class RowWriter:
    """Appends one JSON line per row to OUT and flushes it at once (strict JSON, UTF-8)."""

    def __init__(self, out: Path) -> None:
        # never through a planted symlink, into a FIFO or a device (UnsafeFileError)
        self._file: IO[bytes] = os.fdopen(open_regular(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), "ab")

    def write(self, row: BatchRow) -> None:
        # content from a generation is strict JSON already (content_json checks it); other content is not
        checked = not row.ok or row.result is not None
        self._file.write(_row_line(row.to_dict(), checked=checked))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
