"""Batch behaviours a sampled mutation check found unguarded (issue 24, list h1): the output lock's message,
the bytes of an output row, the prompt bound of the template formatter, the AIMD limiter's window and its
once-per-round rule, a retried row not counting as calm, and the failure counts of the summary. Each test
fails on one small change of batch/files.py or batch/run.py and asserts what a user sees."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from openrouter_registry import ConfigurationError, OpenRouterService, Registry, Settings
from openrouter_registry.batch.files import OutputLock, RowWriter
from openrouter_registry.batch.run import MAX_PROMPT_CHARS, BatchRow, _Limiter, render
from openrouter_registry.testing import FakeOpenRouter, Scripted

# Judged equivalent, so left without a test:
# - batch/files.py:192 OutputLock.__enter__'s os.ftruncate(fd, 0) -> ftruncate(fd, 1): the pid written next at
#   offset 0 is at least one digit long, so it covers the one byte left (or the NUL added to an empty file):
#   the lock file holds exactly the pid either way, and that is all anyone reads of it.


def _settings(server: FakeOpenRouter) -> Settings:
    return Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)


# --- batch/files.py ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "shown"), [("7" * 32, "7" * 32), ("7" * 32 + "8", "7" * 32)])
def test_a_held_lock_names_at_most_the_first_32_characters_of_its_owner(tmp_path: Path, content: str, shown: str) -> None:
    """The refusal quotes what the held ``OUT.lock`` says its owner is, cut to 32 characters (a foreign or
    corrupt lock file never floods the message)."""
    out = tmp_path / "out.jsonl"
    lock = tmp_path / "out.jsonl.lock"
    lock.write_text(content)
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another holder of the lock
        with pytest.raises(ConfigurationError) as caught:
            OutputLock(out).__enter__()
    finally:
        os.close(fd)
    assert str(caught.value) == (f"another batch run (pid {shown}) is writing out.jsonl: wait for it to finish or "
                                 f"choose another --out")
    assert lock.read_text() == content  # the holder's lock file is left as it was


def test_a_row_of_unchecked_content_is_written_as_compact_utf8_json(tmp_path: Path) -> None:
    """Content not from a generation goes through the json module: compact, and non-ASCII text written as
    UTF-8 bytes, never as \\u escapes."""
    out = tmp_path / "out.jsonl"
    with RowWriter(out) as writer:
        writer.write(BatchRow(id="café", ok=True, content={"city": "Zürich", "tags": ["été"]}))
    raw = out.read_bytes()
    assert raw.startswith('{"id":"café","ok":true,"content":{"city":"Zürich","tags":["été"]},'.encode())
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1 and b"\\u" not in raw
    assert json.loads(raw)["content"] == {"city": "Zürich", "tags": ["été"]}


# --- batch/run.py: templates ---------------------------------------------------------------------------


def test_a_template_of_indexed_fields_renders_exactly_32_mib_and_refuses_one_more_character() -> None:
    """The bounded formatter (``{v[0]}`` is no plain key) counts from nothing: a prompt of exactly
    `MAX_PROMPT_CHARS` is rendered, one character more is refused."""
    fits = "x" * MAX_PROMPT_CHARS
    assert render("{v[0]}", {"v": [fits]}) == fits
    with pytest.raises(ValueError, match=f"^the prompt would pass {MAX_PROMPT_CHARS} characters$"):
        render("{v[0]}", {"v": [fits + "x"]})


# --- batch/run.py: the AIMD limiter -----------------------------------------------------------------------


def test_the_429_share_is_averaged_over_20_answers_so_one_61_answers_back_still_counts() -> None:
    """With 20 slots or fewer the share of 429s is a moving average over 20 answers: a 429, 61 clean answers,
    then a second 429 still passes 5% and halves the limit (over 21 answers it would no longer)."""
    now = [50.0]
    limiter = _Limiter(8, clock=lambda: now[0])
    limiter.rate_limited(sent_at=49.0, wait=1.0)  # 1/20: exactly the share, nothing happens
    for _ in range(61):
        limiter.completed()
    assert (limiter.slots, limiter.decreases) == (8, 0)
    limiter.rate_limited(sent_at=49.5, wait=1.0)  # 0.05 * 0.95**62 + 0.05 > 0.05
    assert (limiter.slots, limiter.decreases, limiter.pause_left()) == (4, 1, 1.0)


def test_a_429_for_a_request_sent_right_when_the_round_ends_halves_again() -> None:
    """A decrease opens a round lasting the wait; a request sent at its very end (not only after it) was
    sent under the new limit, so its 429 halves again, and one sent before does not."""
    now = [100.0]
    limiter = _Limiter(16, clock=lambda: now[0])
    for _ in range(2):
        limiter.rate_limited(sent_at=99.0, wait=2.0)  # the second passes 5%: 16 -> 8, the round ends at 102.0
    assert (limiter.slots, limiter.decreases) == (8, 1)
    now[0] = 103.0
    limiter.rate_limited(sent_at=101.999, wait=1.0)  # sent within the round: the old limit's doing
    assert (limiter.slots, limiter.decreases) == (8, 1)
    limiter.rate_limited(sent_at=102.0, wait=1.0)  # sent at the round's end: under the new limit
    assert (limiter.slots, limiter.decreases) == (4, 2)


async def test_rows_that_met_a_429_do_not_grow_the_limit_back(server: FakeOpenRouter) -> None:
    """Both first requests of a 2-slot run get a 429: the limit halves to 1, and the two rows, ok on their
    retry, are not calm completions, so the run ends at 1 slot without an increase."""
    limited = Scripted(status=429, json={"error": {"message": "Rate limit exceeded", "code": 429}},
                       headers={"Retry-After": "0.01"})
    server.enqueue(limited, limited)
    async with OpenRouterService(_settings(server), registry=Registry(environ={})) as service:
        run = service.batch([{"id": i, "prompt": "hi"} for i in range(2)], concurrency=2)
        rows = [row async for row in run]
    assert sorted((row.id, row.ok, row.attempts) for row in rows) == [(0, True, 2), (1, True, 2)]
    assert run.summary().concurrency.to_dict() == {"start": 2, "min": 1, "max": 2, "final": 1, "decreases": 1,
                                                   "increases": 0}


# --- batch/run.py: the summary ---------------------------------------------------------------------------


async def test_the_summary_counts_each_failed_row_once_by_its_error_type(server: FakeOpenRouter) -> None:
    """``failed`` maps each error type to the number of rows that failed with it: 2 input errors, 1 refusal."""
    server.enqueue(Scripted(status=400, json={"error": {"message": "bad request", "code": 400}}))
    items = [{"id": 1, "prompt": "hi"}, {"prompt": "no id"}, {"id": 3, "prompt": "hi"}, {"id": "", "prompt": "hi"}]
    async with OpenRouterService(_settings(server), registry=Registry(environ={})) as service:
        run = service.batch(items, concurrency=1)
        rows = [row async for row in run]
    assert sorted((row.line, row.ok) for row in rows) == [(1, False), (2, False), (3, True), (4, False)]
    summary = run.summary()
    assert summary.failed == {"BadRequestError": 1, "InputError": 2}
    assert (summary.rows, summary.ok) == (4, 1)
    assert summary.to_dict()["failed"] == {"BadRequestError": 1, "InputError": 2}
