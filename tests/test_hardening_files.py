"""Hardening: the files the library writes (batch OUT, its lock, the resume rewrite, the summary, caches)
and reads (the cache dir), attacked the way the security review did: symlinks, FIFOs and hard links
planted beside them, files of another user, oversized and malformed caches, timestamps in the future."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.cli import main
from openrouter_registry.models import catalog as catalog_module
from openrouter_registry.models.catalog import cache_file, load_catalog
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.models.safefiles import UnsafeFileError, open_regular, read_trusted
from openrouter_registry.settings import Settings
from openrouter_registry.testing import FakeOpenRouter

from test_cli_batch import batch, read_rows
from test_cli_generate import PROG, chat_requests, no_key, one_error_line, server  # noqa: F401  (fixtures)


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


# -- files the batch command writes ----------------------------------------------------------------


@pytest.mark.parametrize("planted", ["out.jsonl", "out.jsonl.lock", "summary.json"])
def test_a_planted_symlink_is_refused_and_its_target_untouched(
    server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str], planted: str
) -> None:
    target = victim(tmp_path)
    (tmp_path / planted).symlink_to(target)
    assert main(batch(tmp_path, "--quiet", "--summary-json", str(tmp_path / "summary.json"))) == 2
    err = capsys.readouterr().err
    assert "it is a symlink" in one_error_line(err, "UnsafeFileError: refusing to write")
    assert target.read_text() == "precious\n" and (tmp_path / planted).is_symlink()
    assert chat_requests(server) == []


def test_resume_refuses_a_symlinked_out_and_never_replaces_it(
    server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = victim(tmp_path)
    (tmp_path / "out.jsonl").symlink_to(target)
    assert main(batch(tmp_path, "--quiet", "--resume")) == 2
    assert "it is a symlink" in capsys.readouterr().err
    assert (tmp_path / "out.jsonl").is_symlink() and target.read_text() == "precious\n"


def test_a_fifo_at_out_is_refused_without_blocking(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "out.jsonl")
    started = time.monotonic()
    assert main(batch(tmp_path, "--quiet", "--resume")) == 2
    assert time.monotonic() - started < 5
    assert "it is a FIFO" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "out.jsonl").st_mode)


def test_a_hard_linked_lock_is_refused(server: FakeOpenRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = victim(tmp_path)
    os.link(target, tmp_path / "out.jsonl.lock")
    assert main(batch(tmp_path, "--quiet")) == 2
    assert "a hard link" in capsys.readouterr().err and target.read_text() == "precious\n"


def test_resume_keeps_outs_mode_and_ignores_a_planted_temporary_file(server: FakeOpenRouter, tmp_path: Path) -> None:
    assert main(batch(tmp_path, "--quiet", n=4)) == 0
    out = tmp_path / "out.jsonl"
    os.chmod(out, 0o600)
    before = os.stat(out)
    target = victim(tmp_path)
    (tmp_path / "out.jsonl.resume-tmp").symlink_to(target)  # the old fixed name of the rewrite
    with out.open("a") as handle:
        handle.write('{"id": "doc-9", "ok": false}\n')
    assert main(batch(tmp_path, "--quiet", "--resume", n=4)) == 0
    after = os.stat(out)
    assert stat.S_IMODE(after.st_mode) == 0o600 and (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert sorted(row["id"] for row in read_rows(out)) == [f"doc-{i}" for i in range(4)]
    assert target.read_text() == "precious\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl.")]  # no temporary left behind


@pytest.mark.skipif(os.geteuid() != 0, reason="giving OUT to another user needs root")
def test_resume_keeps_outs_owner(server: FakeOpenRouter, tmp_path: Path) -> None:
    assert main(batch(tmp_path, "--quiet", n=3)) == 0
    out = tmp_path / "out.jsonl"
    os.chown(out, 65534, 65534)
    assert main(batch(tmp_path, "--quiet", "--resume", n=3)) == 0
    assert (os.stat(out).st_uid, os.stat(out).st_gid) == (65534, 65534)


def test_open_regular_refuses_a_device(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="a character device"):
        open_regular("/dev/null", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    fd = open_regular(tmp_path / "plain", os.O_WRONLY | os.O_CREAT, truncate=True)
    os.close(fd)


# -- files read from the cache dir -----------------------------------------------------------------


@pytest.fixture
def fake() -> Any:
    with FakeOpenRouter() as server:
        yield server


def settings_for(fake: FakeOpenRouter, cache: Path) -> Settings:
    return Settings.from_env({}, base_url=fake.base_url, api_key=fake.api_key, cache_dir=str(cache))


async def fresh_load(settings: Settings) -> Any:
    catalog_module.reset()
    return await asyncio.wait_for(load_catalog(settings), 10)


async def test_the_cache_dir_is_created_private(fake: FakeOpenRouter, tmp_path: Path) -> None:
    cache = tmp_path / "new" / "cache"
    assert await fresh_load(settings_for(fake, cache)) is not None
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache_file(settings_for(fake, cache), "catalog")).st_mode) == 0o600  # type: ignore[arg-type]


def poison(path: Path, fetched_at: float | None = None) -> None:
    """A catalog cache claiming the model has a 10-token window (the review's ContextLengthError poison)."""
    entry = {"id": "openai/gpt-4o", "context_length": 10, "pricing": {"prompt": "1", "completion": "1"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": 1, "source": "x", "fetched_at": time.time() if fetched_at is None else fetched_at, "models": [entry]}
    path.write_text(json.dumps(payload))
    os.chmod(path, 0o600)


@pytest.mark.parametrize(
    "attack, reason",
    [
        ("fifo", "it is a FIFO"),
        ("group-writable", "writable by other users"),
        ("symlink", "it is a symlink"),
        ("oversized", "over the"),
        ("other-user", "owned by uid 65534"),
        ("future", "written in the future"),
    ],
)
async def test_an_untrusted_cache_file_is_ignored_with_one_warning_and_refetched(
    fake: FakeOpenRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    attack: str, reason: str,
) -> None:
    if attack == "other-user" and os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    settings = settings_for(fake, tmp_path / "cache")
    path = cache_file(settings, "catalog")
    assert path is not None
    if attack == "fifo":
        path.parent.mkdir(parents=True)
        os.mkfifo(path)
    elif attack == "symlink":
        poison(tmp_path / "elsewhere.json")
        path.parent.mkdir(parents=True)
        path.symlink_to(tmp_path / "elsewhere.json")
    elif attack == "future":
        poison(path, fetched_at=time.time() + 10 * 365 * 86400)
    else:
        poison(path)
        if attack == "group-writable":
            os.chmod(path, 0o664)
        elif attack == "oversized":
            monkeypatch.setattr(catalog_module, "MAX_CACHE_BYTES", 100)
        elif attack == "other-user":
            os.chown(path, 65534, 65534)
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        catalog = await fresh_load(settings)
    assert catalog is not None and catalog.get("openai/gpt-4o").context_length == 128000  # refetched, not poisoned
    assert len(fake.catalog_requests) == 1
    warnings = [r.getMessage() for r in caplog.records if reason in r.getMessage()]
    assert len(warnings) == 1, caplog.text


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"]" * 100_000, b'{"format": 1, "modes": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
     b'{"format": 1, "modes": [{"model": "m", "route": "", "mode": "prompt", "learned_at": "nan"}]}', b"\xff\xfe"],
)
def test_a_malformed_modes_file_is_a_warning_never_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    settings = Settings.from_env({}, base_url="https://example.invalid/api/v1", api_key="k", cache_dir=str(tmp_path))
    path = cache_file(settings, "modes")
    assert path is not None
    path.write_bytes(content)
    os.chmod(path, 0o600)
    MODE_MEMORY.clear()
    with caplog.at_level(logging.WARNING, logger="openrouter_registry"):
        assert MODE_MEMORY.get("m", "", settings) is None
    assert "learned-modes file" in caplog.text or "unreadable cache file" in caplog.text


def test_a_learned_mode_from_the_future_is_stale(tmp_path: Path) -> None:
    settings = Settings.from_env({}, base_url="https://example.invalid/api/v1", api_key="k", cache_dir=str(tmp_path))
    path = cache_file(settings, "modes")
    assert path is not None
    entries = [{"model": "m", "route": "", "mode": "prompt", "learned_at": time.time() + 10**8},
               {"model": "n", "route": "", "mode": "prompt", "learned_at": time.time()}]
    path.write_text(json.dumps({"format": 1, "modes": entries}))
    os.chmod(path, 0o600)
    MODE_MEMORY.clear()
    assert MODE_MEMORY.get("m", "", settings) is None and MODE_MEMORY.get("n", "", settings) == "prompt"


def test_read_trusted_reads_a_good_file_and_bounds_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"x" * 10)
    os.chmod(path, 0o600)
    assert read_trusted(path, max_bytes=10) == b"x" * 10
    assert read_trusted(path, max_bytes=9) is None and "over the 9-byte bound" in caplog.text
    assert read_trusted(tmp_path / "missing", max_bytes=9) is None
