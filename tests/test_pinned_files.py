"""Behaviours of the ``batch`` command's files (batch/files.py) pinned for surviving mutants (issue 24): the
resume skip count, the lock file's mode, the 8-byte id hashes, deep input lines with escapes, and the rows
whose text is not valid Unicode."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from openrouter_registry.batch import files
from openrouter_registry.batch.files import OutputLock, RowWriter, read_input, resume_done, scan_input
from openrouter_registry.batch.run import BatchRow, id_key
from openrouter_registry.cli import main
from openrouter_registry.testing import FakeOpenRouter

from test_cli_batch import batch, read_rows, write_input
from test_cli_generate import no_key, server  # noqa: F401  (fixtures)

# Judged equivalent, so left without a test:
# - batch/files.py:223 `_row_line`'s second dump `allow_nan=False` -> True: the content is gone and every other
#   field of a row the batch run makes is finite (validated ids, integer usage, a decimal string for the cost,
#   a latency from the monotonic clock), so there is no NaN left to write either way (batch/files is internal).
# - batch/files.py:227 `_row_line`'s ASCII dump `allow_nan=False` -> True: the same data was just dumped with
#   allow_nan=False at line 218 or 223 without an error, so it holds no NaN and both dumps give the same bytes.


def _ok_line(id: object) -> str:
    return json.dumps({"id": id, "ok": True, "content": {"x": 1}}) + "\n"


def test_scan_input_counts_each_id_already_ok_in_the_output_once_as_skipped(tmp_path: Path) -> None:
    """``--resume``: a row whose id is ok in OUT is one skipped row, not counted among the rows to run."""
    out = tmp_path / "out.jsonl"
    out.write_text(_ok_line("a"))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": id, "prompt": "p"}) + "\n" for id in ["a", "b", "c"]))
    assert scan_input(source, resume_done(out)) == files.InputScan(rows=2, skipped=1)
    out.write_text(_ok_line("a") + _ok_line("c"))
    assert scan_input(source, resume_done(out)) == files.InputScan(rows=1, skipped=2)


def test_a_resumed_batch_reports_how_many_rows_were_already_ok(
    server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    """The CLI says ``batch: 1 rows already ok in the output; skipped`` and ``skipped_done`` is 1."""
    write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    out.write_text(_ok_line("doc-1"))
    summary = tmp_path / "summary.json"
    assert main([*batch(tmp_path, "--resume", "--summary-json", str(summary))]) == 0
    assert "batch: 1 rows already ok in the output; skipped" in capsys.readouterr().err
    assert json.loads(summary.read_text())["skipped_done"] == 1
    assert sorted(row["id"] for row in read_rows(out)) == ["doc-0", "doc-1", "doc-2"]


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")
@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_lock_file_is_created_read_write_for_its_owner_only(tmp_path: Path, umask: int) -> None:
    """``OUT.lock`` is made with mode 0o600 (whatever the umask lets through): nobody else reads the pid, and
    nobody executes it."""
    old = os.umask(umask)
    try:
        with OutputLock(tmp_path / "out.jsonl") as lock:
            assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
            assert lock.path.read_text() == str(os.getpid())
    finally:
        os.umask(old)
    assert not lock.path.exists()


def test_resume_remembers_each_ok_id_as_its_8_byte_blake2b_hash(tmp_path: Path) -> None:
    """docs/guides/batch.md: the ids are kept "as 8-byte hashes, about 60 bytes a row"."""
    out = tmp_path / "out.jsonl"
    ids = ["a", 7, "café", "doc-" + "x" * 200]
    out.write_text("".join(_ok_line(id) for id in ids))
    done = resume_done(out)
    expected = {int.from_bytes(hashlib.blake2b(id_key(id).encode(), digest_size=8).digest(), "big") for id in ids}
    assert done == expected
    assert all(0 <= key < 2**64 for key in done)
    assert all(files.is_done(done, id) for id in ids) and not files.is_done(done, "b")


def test_a_deep_line_with_an_escape_that_the_json_module_cannot_write_back_is_not_called_a_lone_surrogate(
    tmp_path: Path,
) -> None:
    """A line with a ``\\u`` escape nested 1,010 deep is read by orjson; the lone-surrogate check cannot dump it
    again (RecursionError) and lets it through as a value, not as an input error about a lone surrogate."""
    depth = 1010
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "caf\\u00e9", "x": ' + "[" * depth + "]" * depth + "}\n")
    [item] = read_input(path)
    assert (item.line, item.problem) == (1, None)
    assert item.value["id"] == "café"
    with pytest.raises(RecursionError):  # what the check meets: below the interpreter's recursion limit
        json.dumps(item.value, ensure_ascii=False)


def test_a_row_with_a_lone_surrogate_is_written_with_its_json_escape_in_ascii(tmp_path: Path) -> None:
    """Content holding a lone surrogate (not UTF-8) is written as strict ASCII JSON, ``\\ud800`` escaped, so the
    row is never lost."""
    out = tmp_path / "out.jsonl"
    with RowWriter(out) as writer:
        writer.write(BatchRow(id="café", ok=True, content={"x": "\ud800"}))
    raw = out.read_bytes()
    assert raw.startswith(b'{"id":"caf\\u00e9","ok":true,"content":{"x":"\\ud800"},') and raw.endswith(b"\n")
    assert json.loads(raw)["content"] == {"x": "\ud800"}
