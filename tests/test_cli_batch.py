"""`openrouter-registry batch` against the local server: output rows, exit statuses, resume after SIGKILL,
Ctrl-C, the output lock, duplicate ids, bad input lines, the summary and the progress modes. In-process
(``cli.main``) where possible; a real subprocess for the signals."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import OpenRouterService, Settings
from openrouter_registry.cli import batch as cli_batch
from openrouter_registry.batch.files import OutputLock
from openrouter_registry.cli import main
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS
from test_cli_generate import PROG, chat_requests, no_key, one_error_line, server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.dumps(CITY)


def write_input(path: Path, n: int, *, extra: list[str] | None = None) -> Path:
    lines = [json.dumps({"id": f"doc-{i}", "text": f"We landed in Paris, visit {i}"}) for i in range(n)]
    path.write_text("\n".join(lines + (extra or [])) + "\n", encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def batch(tmp_path: Path, *options: str, n: int = 12, extra: list[str] | None = None) -> list[str]:
    source = tmp_path / "in.jsonl"
    if not source.exists():
        write_input(source, n, extra=extra)
    return ["batch", str(source), "--out", str(tmp_path / "out.jsonl"), "--schema", SCHEMA,
            "--template", "Extract the city from: {text}", *options]


def test_one_row_per_input_row_and_an_exact_summary(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary_file = tmp_path / "summary.json"
    assert main(batch(tmp_path, "--concurrency", "4", "--summary-json", str(summary_file))) == 0
    rows = read_rows(tmp_path / "out.jsonl")
    assert sorted(row["id"] for row in rows) == sorted(f"doc-{i}" for i in range(12))
    assert all(row["ok"] and row["content"] == PARIS for row in rows)
    assert list(rows[0]) == ["id", "ok", "content", "model", "provider", "generation_id", "mode", "attempts",
                             "usage", "cost", "latency_s", "line"]
    sent = sorted(r.body["messages"][-1]["content"] for r in chat_requests(server))
    assert sent == sorted(f"Extract the city from: We landed in Paris, visit {i}" for i in range(12))
    summary = json.loads(summary_file.read_text())
    assert (summary["rows"], summary["ok"], summary["failed"], summary["requests"]) == (12, 12, {}, 12)
    assert Decimal(summary["cost_usd"]) == sum(Decimal(row["cost"]) for row in rows)
    assert summary["tokens"]["prompt"] == sum(row["usage"]["prompt_tokens"] for row in rows)
    assert summary["concurrency"] == {"start": 4, "min": 4, "max": 4, "final": 4, "decreases": 0, "increases": 0}
    assert summary["stopped"] is None and summary["latency_s"]["p50"] > 0 and summary["rows_per_s"] > 0
    err = capsys.readouterr().err
    assert "rows 12: ok 12, failed 0 (none)" in err and f"cost ${summary['cost_usd']}" in err
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_bad_lines_are_error_rows_naming_their_line(server: FakeOpenRouter, tmp_path: Path) -> None:
    extra = ["", "{not json", json.dumps({"id": "no-text"}), "[1, 2]", '{"id": "nan", "text": NaN}']
    assert main(batch(tmp_path, "--quiet", n=2, extra=extra)) == 2  # unusable input: exit 2
    errors = {row["line"]: (row["id"], row["error"]) for row in read_rows(tmp_path / "out.jsonl") if not row["ok"]}
    assert errors[4][0] is None and errors[4][1]["type"] == "InputError"
    assert errors[4][1]["message"].startswith("line 4: not JSON")
    assert errors[5] == ("no-text", {"type": "InputError", "message": "line 5: the template needs 'text', which this row lacks"})
    assert errors[6][1]["message"] == "line 6: expected a JSON object, got list"
    assert errors[7][1]["message"].startswith("line 7: not JSON (NaN is not JSON")
    assert len(chat_requests(server)) == 2


@pytest.mark.parametrize(
    ("script", "status", "error_type"),
    [
        (Scripted(status=400, json={"error": {"message": "Invalid model", "code": 400}}), 3, "BadRequestError"),
        (None, 4, "StructuredOutputError"),
    ],
)
def test_exit_status_follows_the_failed_rows(
    server: FakeOpenRouter, tmp_path: Path, script: Scripted | None, status: int, error_type: str
) -> None:
    if script is not None:
        server.enqueue(script)
    else:
        server.set_reply("city_country", {"city": 5})
    assert main(batch(tmp_path, "--quiet", "--concurrency", "1", n=3)) == status
    failed = [row for row in read_rows(tmp_path / "out.jsonl") if not row["ok"]]
    assert failed and {row["error"]["type"] for row in failed} == {error_type}


def test_duplicate_ids_are_refused_before_anything_is_sent(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_input(tmp_path / "in.jsonl", 4, extra=[json.dumps({"id": "doc-2", "text": "again"})])
    assert main(batch(tmp_path)) == 2
    err = one_error_line(capsys.readouterr().err, "ConfigurationError: duplicate ids in")
    assert f'{source}: "doc-2" on lines 3, 5; every row needs its own id. Nothing was sent' in err
    assert server.requests == [] and not (tmp_path / "out.jsonl").exists()


def test_a_second_run_on_the_same_output_is_refused(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with OutputLock(tmp_path / "out.jsonl"):
        assert main(batch(tmp_path)) == 2
    err = one_error_line(capsys.readouterr().err, "ConfigurationError: another batch run (pid ")
    assert f"pid {os.getpid()}) is writing out.jsonl" in err
    assert server.requests == []


def test_an_existing_output_needs_resume(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out.jsonl").write_text('{"id": "doc-0", "ok": true}\n')
    assert main(batch(tmp_path)) == 2
    one_error_line(capsys.readouterr().err, "ConfigurationError: ")
    assert server.requests == []


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-cost", "abc"], "--max-cost must be an amount of USD such as 2.50, got 'abc'"),
        (["--max-cost", "-1"], "--max-cost must be positive"),
        (["--concurrency", "0"], "--concurrency must be a positive integer, got 0"),
        (["--template", "{text"], "is not a valid format string"),
        (["--schema", "[1]"], "--schema must be inline JSON or the path of a JSON file"),
    ],
)
def test_bad_options_exit_2(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str) -> None:
    assert main([*batch(tmp_path), *option]) == 2
    assert message in one_error_line(capsys.readouterr().err, "ConfigurationError: ")
    assert server.requests == []


def test_resume_after_a_failed_row_runs_only_what_is_not_ok(server: FakeOpenRouter, tmp_path: Path) -> None:
    server.enqueue(Scripted(status=400, json={"error": {"message": "Invalid model", "code": 400}}))
    assert main(batch(tmp_path, "--quiet", "--concurrency", "1", n=5)) == 3
    out = tmp_path / "out.jsonl"
    with open(out, "a") as file:
        file.write('{"id": "doc-4", "ok": tr')  # a line cut short by a kill
    server.clear()
    server.set_reply("city_country", PARIS)
    assert main(batch(tmp_path, "--quiet", "--resume")) == 0
    rows = read_rows(out)
    assert Counter(row["id"] for row in rows) == Counter(f"doc-{i}" for i in range(5))
    assert all(row["ok"] for row in rows)
    assert len(chat_requests(server)) == 1  # only the failed row ran again


def test_budget_stop_says_how_far_it_got(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def highest_bound() -> Decimal:
        settings = Settings.from_env(base_url=server.base_url, api_key=server.api_key)
        async with OpenRouterService(settings) as service:
            estimate = await service.estimate_cost(
                "Extract the city from: We landed in Paris, visit 99", schema=CITY, max_tokens=60
            )
        assert estimate is not None  # the catalog prices openai/gpt-4o
        return estimate.high

    bound = asyncio.run(highest_bound())
    budget = bound * Decimal("3.5")
    summary_file = tmp_path / "summary.json"
    args = batch(tmp_path, "--max-cost", str(budget), "--max-tokens", "60", "--summary-json", str(summary_file), n=100)
    assert main(args) == cli_batch.EXIT_BUDGET
    summary = json.loads(summary_file.read_text())
    rows = read_rows(tmp_path / "out.jsonl")
    assert summary["stopped"] == "budget" and 3 <= summary["rows"] == len(rows) < 100
    assert summary["not_started"] == 100 - len(rows) and len(chat_requests(server)) == len(rows)
    assert Decimal(summary["cost_usd"]) == sum(Decimal(row["cost"]) for row in rows)
    assert Decimal(summary["cost_usd"]) <= budget < Decimal(summary["cost_usd"]) + bound
    assert summary["max_cost_usd"] == str(budget)
    assert "rows not started" in capsys.readouterr().err


def test_progress_modes(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(batch(tmp_path, "--quiet", n=3)) == 0
    assert capsys.readouterr().err == ""  # --quiet: nothing at all

    monkeypatch.setattr(cli_batch, "PROGRESS_INTERVAL", 0.0)  # stderr is not a terminal here: plain lines
    (tmp_path / "out.jsonl").unlink()
    assert main(batch(tmp_path)) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("batch: 1/3 rows (ok 1, failed 0, $") and "rows/s" in lines[0]
    assert any(line.startswith("batch: 3/3 rows (ok 3, failed 0, $") for line in lines)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    (tmp_path / "out.jsonl").unlink()
    assert main(batch(tmp_path)) == 0
    shown = terminal.getvalue()
    assert "\r" in shown and "3/3" in shown and "row/s" in shown and "ok 3, failed 0" in shown  # the tqdm bar


# --- signals, in a real process ------------------------------------------------------------------


def start_batch(tmp_path: Path, server: FakeOpenRouter, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENROUTER_API_KEY": server.api_key, "OPENROUTER_BASE_URL": server.base_url}
    return subprocess.Popen(
        [sys.executable, "-m", "openrouter_registry", *batch(tmp_path, *options)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def wait_for_rows(out: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} rows in {out} (exit {process.poll()})")


def settled_request_count(server: FakeOpenRouter) -> int:
    """The chat requests received, once requests the killed process had already sent stop arriving."""
    count, stable_since = len(chat_requests(server)), time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        time.sleep(0.05)
        if len(chat_requests(server)) != count:
            count, stable_since = len(chat_requests(server)), time.monotonic()
    return count


def test_sigkill_then_resume_writes_every_id_exactly_once(server: FakeOpenRouter, tmp_path: Path) -> None:
    server.latency = 0.05
    write_input(tmp_path / "in.jsonl", 120)
    process = start_batch(tmp_path, server, "--concurrency", "4", "--quiet")
    out = tmp_path / "out.jsonl"
    wait_for_rows(out, 20, process)
    process.kill()
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    text = out.read_text(encoding="utf-8")
    finished = [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]  # a kill may cut the last
    assert 20 <= len(finished) < 120
    sent_before = settled_request_count(server)
    assert main(batch(tmp_path, "--quiet", "--resume", "--concurrency", "8")) == 0
    rows = read_rows(out)
    assert Counter(row["id"] for row in rows) == Counter(f"doc-{i}" for i in range(120))
    assert all(row["ok"] for row in rows)
    # the resumed run sent only what had not finished (a kill cuts at most the 4 rows in flight)
    assert len(chat_requests(server)) - sent_before == 120 - len(finished)
    assert sent_before <= len(finished) + 4


def test_ctrl_c_writes_what_finished_and_exits_130(server: FakeOpenRouter, tmp_path: Path) -> None:
    server.latency = 0.05
    write_input(tmp_path / "in.jsonl", 400)
    summary_file = tmp_path / "summary.json"
    process = start_batch(tmp_path, server, "--concurrency", "4", "--summary-json", str(summary_file))
    out = tmp_path / "out.jsonl"
    wait_for_rows(out, 10, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "stopped: interrupted" in err
    rows = read_rows(out)  # every line complete JSON
    assert 10 <= len(rows) < 400 and all(row["ok"] for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    summary = json.loads(summary_file.read_text())
    assert summary["stopped"] == "interrupted" and summary["rows"] == len(rows)
    assert summary["not_started"] == 400 - len(rows)
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_unusable_paths_are_one_line_errors(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = batch(tmp_path)
    args[3] = str(tmp_path / "missing" / "out.jsonl")
    assert main(args) == 2
    assert "no directory" in one_error_line(capsys.readouterr().err, "ConfigurationError: --out ")
    (tmp_path / "out.jsonl").mkdir()  # an OUT that cannot be read as a file
    assert main([*batch(tmp_path), "--resume"]) == 2
    assert "it is a directory" in one_error_line(capsys.readouterr().err, "UnsafeFileError: refusing to write")
    assert server.requests == []


def test_the_command_collects_garbage_for_throughput_and_puts_the_collector_back(
    server: FakeOpenRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from openrouter_registry.batch import files as batch_files

    seen: list[tuple[tuple[int, int, int], int]] = []

    original = batch_files.RowWriter.write

    def write(self: Any, row: Any) -> None:  # what the collector looks like while rows are written
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        original(self, row)

    monkeypatch.setattr(batch_files.RowWriter, "write", write)
    before = gc.get_threshold()
    assert main(batch(tmp_path, n=3)) == 0
    assert len(seen) == 3
    assert all(threshold[0] == cli_batch.GC_THRESHOLD and frozen > 0 for threshold, frozen in seen)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
