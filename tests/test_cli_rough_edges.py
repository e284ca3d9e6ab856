"""The CLI's front edges: ``--version``, a closed pipe, ``--model`` checked as the flag (with a did-you-mean
for an id without its vendor), one message for an offline ``models``, and ``generate --stream``,
``--system`` and ``--messages FILE``. In-process (``cli.main``) against the local server, and as the
installed console script where the process's own exit matters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import openrouter_registry
from openrouter_registry.cli import main
from openrouter_registry.testing import FakeOpenRouter

SCRIPT = str(Path(sys.executable).with_name("openrouter-registry"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPENROUTER") and name != "OPENROUTER_CACHE_DIR":
            monkeypatch.delenv(name)


@pytest.fixture
def server(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(text_reply="Hello from {model}") as s:
        monkeypatch.setenv("OPENROUTER_API_KEY", s.api_key)
        monkeypatch.setenv("OPENROUTER_BASE_URL", s.base_url)
        yield s


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"openrouter-registry {openrouter_registry.__version__}\n"


@pytest.mark.parametrize("command", [["plugins"], ["resolve", "openai/gpt-4o", "--explain"], ["plugins", "--json"]])
def test_a_closed_pipe_ends_quietly(clean_env: None, command: list[str]) -> None:
    process = subprocess.Popen([SCRIPT, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command writes (as `| head -0` would be)
    err = process.stderr.read()
    assert (process.wait(timeout=60), err) == (141, b"")


@pytest.mark.parametrize("command", ["generate", "batch"])
def test_a_malformed_model_names_the_flag(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    args = ["generate", "hi"] if command == "generate" else ["batch", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o")]
    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "hi"}\n')
    assert main([*args, "--model", "openai/gpt 4o"]) == 2
    err = capsys.readouterr().err
    assert "--model must be a model id such as 'openai/gpt-4o'" in err and "OPENROUTER_MODEL" not in err
    assert server.requests == []


@pytest.mark.parametrize(("typed", "meant"), [("gpt-4o", "'openai/gpt-4o'"), ("GPT-4o-mini", "'openai/gpt-4o-mini'"),
                                              ("claude-3.5-sonet", "'anthropic/claude-3.5-sonnet'")])
def test_a_vendorless_model_gets_a_did_you_mean(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], typed: str, meant: str
) -> None:
    assert main(["generate", "--model", typed, "hi"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"openrouter-registry: ConfigurationError: --model: model ids name their vendor ('vendor/model'), "
        f"and {typed!r} does not; did you mean {meant}?\n"
    )
    assert server.requests == []  # nothing was sent (the catalog's GET /models is not a request)


def test_resolve_notes_a_vendorless_id_and_still_answers(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0  # caches the catalog, which resolve reads offline
    capsys.readouterr()
    assert main(["resolve", "gpt-4o-mini"]) == 0
    out, err = capsys.readouterr()
    assert out == "gpt-4o-mini -> OpenRouterGeneric (openrouter_registry, fallback)\n"
    assert "did you mean 'openai/gpt-4o-mini'?" in err


def test_an_offline_models_says_one_thing(clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/api/v1")  # nothing listens on port 9
    assert main(["models"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "going on without it" not in err
    assert err.startswith("openrouter-registry: OpenRouterError: the model catalog is unavailable: "
                          "http://127.0.0.1:9/api/v1/models could not be fetched (")
    assert "nothing is cached" in err


def test_generate_stream_prints_the_text_as_it_comes(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--stream", "--system", "Be brief.", "--model", "openai/gpt-4o-mini", "Say hello"]) == 0
    assert capsys.readouterr().out == "Hello from openai/gpt-4o-mini\n"
    body = server.requests[0].body
    assert body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def test_generate_reads_messages_from_a_json_file(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Again"}]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(conversation))
    assert main(["generate", "--messages", str(path), "--system", "Be brief.", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["content"] == "Hello from openai/gpt-4o" and isinstance(data["cost"], str)
    assert server.requests[0].body["messages"] == [{"role": "system", "content": "Be brief."}, *conversation]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hi", "--messages", "m.json"], "give either PROMPT or --messages FILE (not both)"),
        ([], "give either PROMPT or --messages FILE (not both)"),
        (["--messages", "missing.json"], "--messages file 'missing.json' cannot be read: No such file or directory"),
        (["--messages", "bad.json"], "--messages file 'bad.json' is not UTF-8 JSON"),
        (["--messages", "object.json"], "--messages file 'object.json' must hold a non-empty JSON list"),
        (["--messages", "roles.json"], "messages[0] must be a dict with 'role'"),
        (["--stream", "--json", "hi"], "--stream prints the text as it comes: leave out --schema and --json"),
        (["--system", " ", "hi"], "--system must be a non-empty text"),
    ],
)
def test_generate_refuses_bad_conversations_with_one_line(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    args: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "object.json").write_text('{"role": "user"}')
    (tmp_path / "roles.json").write_text('[{"role": "robot", "content": "x"}]')
    assert main(["generate", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err
    assert server.requests == []
