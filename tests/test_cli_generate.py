"""`openrouter-registry generate` and `openrouter-registry demo`, run in-process (``cli.main``) against
the local OpenRouter-compatible server, plus one run of the installed console script: what is
printed, what is sent, and the exit status and one-line message of every failure."""

from __future__ import annotations

from decimal import Decimal

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry.cli import main
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.testing import FakeOpenRouter, Scripted

from city import CITY, PARIS

PROG = "openrouter-registry: "
RESULT_KEYS = {
    "content", "text", "model", "provider", "generation_id", "mode", "attempts", "usage", "cost", "cost_source",
    "generator", "plugin", "parser", "finish_reason", "tool_calls", "reasoning", "reasoning_details", "annotations", "images",
}
DEFAULT_TEXT = "Hello from openai/gpt-4o (local OpenRouter test server)."


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("OPENROUTER"):
            monkeypatch.delenv(name)
    MODE_MEMORY.clear()
    yield
    MODE_MEMORY.clear()


@pytest.fixture
def server(no_key: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenRouter]:
    """No OPENROUTER_* from the outside; the local server's key and URL in their place."""
    with FakeOpenRouter() as s:
        s.set_reply("city_country", PARIS)
        monkeypatch.setenv("OPENROUTER_API_KEY", s.api_key)
        monkeypatch.setenv("OPENROUTER_BASE_URL", s.base_url)
        yield s


def chat_requests(server: FakeOpenRouter) -> list[Any]:
    return [r for r in server.requests if r.path == "/api/v1/chat/completions"]


def one_error_line(err: str, prefix: str) -> str:
    """The single stderr line, checked to be one line starting with ``prefix`` and without a traceback."""
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(PROG + prefix), err
    return err


# --- generate: success --------------------------------------------------------------------------


def test_generate_prints_the_content(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "Say hello"]) == 0
    out, err = capsys.readouterr()
    assert out == DEFAULT_TEXT + "\n"
    assert err == ""
    (request,) = chat_requests(server)
    assert request.body == {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
    assert request.headers["authorization"] == f"Bearer {server.api_key}"


HOSTILE_TEXT = "Done.\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\u202eoop\nline two\tend"  # OSC 52 clipboard, clear, bidi


@pytest.mark.parametrize("stream", [False, True])
def test_generate_escapes_the_answer_on_a_terminal_and_keeps_it_as_is_in_a_pipe_or_with_raw(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    script = Scripted.stream(HOSTILE_TEXT) if stream else Scripted.chat(HOSTILE_TEXT)
    flags = ["--stream"] if stream else []
    server.enqueue(script)
    assert main(["generate", *flags, "Say hello"]) == 0  # a pipe (capsys is not a terminal): the bytes as sent
    assert capsys.readouterr().out == HOSTILE_TEXT + "\n"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    server.enqueue(script)
    assert main(["generate", *flags, "Say hello"]) == 0
    out = capsys.readouterr().out
    assert out == "Done.\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\u202eoop\nline two\tend\n"  # line breaks and tabs kept
    server.enqueue(script)
    assert main(["generate", *flags, "--raw", "Say hello"]) == 0
    assert capsys.readouterr().out == HOSTILE_TEXT + "\n"


def test_generate_model_option(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--model", "meta-llama/llama-3.3-70b-instruct", "Say hello"]) == 0
    assert capsys.readouterr().out == "Hello from meta-llama/llama-3.3-70b-instruct (local OpenRouter test server).\n"
    assert chat_requests(server)[0].body["model"] == "meta-llama/llama-3.3-70b-instruct"


def test_generate_json_prints_one_object_with_the_documented_keys(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--json", "Say hello"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # the whole output is one JSON value
    assert set(data) == RESULT_KEYS
    generation = server.generations[data["generation_id"]]
    assert data["content"] == data["text"] == DEFAULT_TEXT
    assert (data["model"], data["provider"], data["mode"], data["attempts"]) == ("openai/gpt-4o", "OpenAI", None, 1)
    assert (data["generator"], data["plugin"]) == ("OpenRouterGPT4O", "openrouter_gpt")
    assert data["usage"] == {
        "prompt_tokens": generation["tokens_prompt"],
        "completion_tokens": generation["tokens_completion"],
        "total_tokens": generation["tokens_prompt"] + generation["tokens_completion"],
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cache_write_tokens": 0,
        "cost_details": {"upstream_inference_cost": None},  # OpenRouter's usage details, as sent
        "is_byok": False,
    }
    assert (data["finish_reason"], data["tool_calls"], data["reasoning"]) == ("stop", [], None)
    assert Decimal(data["cost"]) == Decimal(repr(generation["total_cost"])) > 0 and isinstance(data["cost"], str)
    assert err == ""


@pytest.mark.parametrize("source", ["file", "inline"])
def test_generate_with_schema_from_a_file_or_inline(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], tmp_path: Path, source: str
) -> None:
    if source == "file":
        path = tmp_path / "city.schema.json"
        path.write_text(json.dumps(CITY, indent=2), encoding="utf-8")
        schema_arg = str(path)
    else:
        schema_arg = json.dumps(CITY)
    assert main(["generate", "--schema", schema_arg, "Extract: I live in Paris."]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == PARIS
    assert err == ""
    (request,) = chat_requests(server)
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city_country", "strict": True, "schema": CITY},
    }


def test_generate_with_schema_and_json(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--json", "--model", "anthropic/claude-3.5-sonnet", "--schema", json.dumps(CITY), "Paris?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == RESULT_KEYS
    assert data["content"] == PARIS
    assert (data["mode"], data["plugin"], data["generator"]) == ("prompt", "openrouter_claude", "OpenRouterClaude35Sonnet")
    assert not data["text"].lstrip().startswith("{") and "Paris" in data["text"]  # the reply continued the "{" prefill


def test_max_tokens_and_temperature_reach_the_request(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--max-tokens", "123", "--temperature", "0.3", "Say hello"]) == 0
    assert capsys.readouterr().out == DEFAULT_TEXT + "\n"
    body = chat_requests(server)[0].body
    assert (body["max_tokens"], body["temperature"]) == (123, 0.3)


def test_max_tokens_is_capped_to_the_model_output_limit(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--model", "anthropic/claude-3.5-sonnet", "--max-tokens", "100000", "hi"]) == 0
    assert chat_requests(server)[0].body["max_tokens"] == 8_192


# --- generate: usage and configuration errors (exit 2) ------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ('{"type": "object",', "ConfigurationError: --schema is not valid JSON"),
        ('{"type": "object", "properties": 3}', "ConfigurationError: invalid JSON Schema"),
        ("no/such/schema.json", "ConfigurationError: --schema must be inline JSON or the path of a JSON file; no file 'no/such/schema.json'"),
        ("[1, 2]", "ConfigurationError: --schema must be inline JSON or the path of a JSON file"),
        ("@list.json", "ConfigurationError: --schema must be a JSON object"),
        ("@broken.json", "ConfigurationError: --schema is not valid JSON"),
        ("@latin1.json", "ConfigurationError: --schema file "),
        ("@dir", "ConfigurationError: --schema must be inline JSON or the path of a JSON file; no file"),
    ],
)
def test_bad_schema_exits_2_with_one_line(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], tmp_path: Path, schema: str, message: str
) -> None:
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "broken.json").write_text('{"type": ', encoding="utf-8")
    (tmp_path / "latin1.json").write_bytes('{"title": "caf\xe9"}'.encode("latin-1"))
    (tmp_path / "dir").mkdir()
    if schema.startswith("@"):
        schema = str(tmp_path / schema[1:])
    assert main(["generate", "--schema", schema, "hi"]) == 2
    out, err = capsys.readouterr()
    one_error_line(err, message)
    assert out == ""
    assert chat_requests(server) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-tokens", "0"], "ConfigurationError: --max-tokens must be a positive integer, got 0"),
        (["--max-tokens", "lots"], "error: argument --max-tokens: invalid int value: 'lots'"),
        (["--temperature", "7"], "ConfigurationError: temperature must be a number from 0 to 2, got 7.0"),
        (["--temperature", "warm"], "error: argument --temperature: invalid float value: 'warm'"),
        ([], "ConfigurationError: give either PROMPT or --messages FILE (not both)"),  # PROMPT is optional with --messages
    ],
)
def test_bad_options_exit_2_with_one_line(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    prompt = [] if not args else ["hi"]
    assert main(["generate", *args, *prompt]) == 2
    out, err = capsys.readouterr()
    one_error_line(err, message)
    assert out == ""
    assert server.requests == []


def test_missing_key_exits_2(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY")
    assert main(["generate", "--schema", json.dumps(CITY), "hi"]) == 2
    out, err = capsys.readouterr()
    one_error_line(err, "MissingAPIKeyError: OPENROUTER_API_KEY is not set")
    assert out == ""
    assert server.requests == []


# --- generate: API errors (exit 3) and invalid output (exit 4) ------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "remedy"),
    [
        (
            402,
            # The body quoted in the 402 issue report.
            {"error": {"message": "This request requires more credits, or fewer max_tokens. You requested up to 65536 tokens, "
                       "but can only afford 10114. To increase, visit https://openrouter.ai/settings/credits and upgrade to "
                       "a paid account", "code": 402, "metadata": {"provider_name": None}}, "user_id": "user_"},
            "InsufficientCreditsError",
            "Add credits at https://openrouter.ai/settings/credits or lower max_tokens.",
        ),
        (401, {"error": {"message": "No auth credentials found", "code": 401}}, "AuthenticationError", "Check OPENROUTER_API_KEY"),
        (
            404,
            {"error": {"message": "No endpoints found for google/gemini-2.5-flash:free.", "code": 404}, "user_id": "user_2"},
            "ModelNotAvailableError",
            "Check the model id at https://openrouter.ai/models",
        ),
        (
            403,
            {"error": {"message": "Input was flagged\nby moderation", "code": 403, "metadata": {"reasons": ["violence"]}}},
            "ModerationError",
            "Rephrase the flagged input",
        ),
    ],
)
def test_api_errors_exit_3_with_the_error_class_and_remedy(
    server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], status: int, body: dict[str, Any], error: str, remedy: str
) -> None:
    server.enqueue(Scripted(status=status, json=body))
    assert main(["generate", "hi"]) == 3
    out, err = capsys.readouterr()
    one_error_line(err, f"{error}: ")
    assert f"status {status}" in err and "model openai/gpt-4o" in err
    assert remedy in err
    assert out == ""
    assert len(server.requests) == 1  # none of these is retried


def test_multi_line_api_message_is_printed_on_one_line(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    server.enqueue(Scripted(status=400, json={"error": {"message": "Provider returned error:\nline two\r\nline three", "code": 400}}))
    assert main(["generate", "hi"]) == 3
    err = one_error_line(capsys.readouterr().err, "BadRequestError: Provider returned error: line two line three")
    assert "Check the request parameters" in err


def test_transient_errors_are_retried_then_exit_3(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        server.enqueue(Scripted(status=503, json={"error": {"message": "No instances available", "code": 503}}, headers={"Retry-After": "0"}))
    assert main(["generate", "hi"]) == 3
    err = capsys.readouterr().err
    lines = err.splitlines()
    # The retry warnings (logging's last-resort handler) come first; the error is the last line.
    assert lines[-1].startswith(PROG + "ProviderError: No instances available. (status 503, model openai/gpt-4o, after 3 attempts)")
    assert "Traceback" not in err
    assert len(server.requests) == 3


def test_wrong_key_exits_3_and_is_never_printed(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-or-v1-this-key-must-never-be-shown-0123456789"
    monkeypatch.setenv("OPENROUTER_API_KEY", wrong)
    assert main(["generate", "hi"]) == 3
    out, err = capsys.readouterr()
    one_error_line(err, "AuthenticationError: No auth credentials found. (status 401, model openai/gpt-4o)")
    assert wrong not in out + err
    assert chat_requests(server)[0].headers["authorization"] == f"Bearer {wrong}"


def test_reply_that_never_validates_exits_4(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    server.set_reply("city_country", {"city": 3, "country": "France"})
    assert main(["generate", "--schema", json.dumps(CITY), "Extract the city"]) == 4
    out, err = capsys.readouterr()
    one_error_line(err, "StructuredOutputError: the model's reply does not match the schema (model openai/gpt-4o")
    assert "after 2 attempts" in err and "$.city" in err
    assert out == ""
    assert len(chat_requests(server)) == 2  # the first reply and one re-ask (OPENROUTER_MAX_REASKS=1)


def test_truncated_reply_exits_4(server: FakeOpenRouter, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--schema", json.dumps(CITY), "--max-tokens", "2", "Extract the city"]) == 4
    one_error_line(capsys.readouterr().err, "TruncatedOutputError: the reply was cut off at max_tokens")


# --- the installed console script ----------------------------------------------------------------


def test_console_script_generate(server: FakeOpenRouter, tmp_path: Path) -> None:
    schema_file = tmp_path / "city.json"
    schema_file.write_text(json.dumps(CITY), encoding="utf-8")
    script = os.path.join(os.path.dirname(sys.executable), "openrouter-registry")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER")}
    env.update(OPENROUTER_API_KEY=server.api_key, OPENROUTER_BASE_URL=server.base_url)
    result = subprocess.run(
        [script, "generate", "--json", "--schema", str(schema_file), "--temperature", "0", "Extract: Paris, France"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert set(data) == RESULT_KEYS
    assert (data["content"], data["mode"], data["plugin"]) == (PARIS, "json_schema", "openrouter_gpt")
    (request,) = chat_requests(server)
    assert request.body["temperature"] == 0
    assert request.body["messages"] == [{"role": "user", "content": "Extract: Paris, France"}]
    assert request.headers["authorization"] == f"Bearer {server.api_key}"


# --- demo ------------------------------------------------------------------------------------------

DEMO = {
    # model: (plugin, generator, mode, attempts)
    "openai/gpt-4o": ("openrouter_gpt", "OpenRouterGPT4O", "json_schema", 1),
    "openai/gpt-4o-mini": ("openrouter_gpt", "OpenRouterGPT4OMini", "json_schema", 1),
    "anthropic/claude-3.5-sonnet": ("openrouter_claude", "OpenRouterClaude35Sonnet", "prompt", 1),
    "meta-llama/llama-3.3-70b-instruct": ("openrouter_llama", "OpenRouterLlama33_70B", "json_schema", 1),
    # Refuses json_schema (404) and json_object (400) on the local server, as on OpenRouter: falls back.
    # no plugin claims it; the catalog says it takes no response_format: prompt mode in one request
    "mistralai/mixtral-8x7b-instruct": ("openrouter_registry", "OpenRouterGeneric", "prompt", 1),
}


def test_demo_without_a_key_runs_every_seed_model_on_the_local_server(no_key: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("OPENROUTER_API_KEY is not set: using the local OpenRouter-compatible server")
    assert "Traceback" not in err
    blocks = {block.split("\n", 1)[0]: block for block in re.split(r"\n(?=\S)", out.split("\n\n", 1)[1].strip())}
    tool_block = blocks.pop("tool round trip (openai/gpt-4o-mini)")
    assert list(blocks) == list(DEMO)
    # one tool round trip: the model called the tool, the loop ran it, the model answered with its result
    assert re.search(r'called  distance_km\(\{"city_a":"Lyon","city_b":"Paris"\}\) \[call_\w+\]', tool_block), tool_block
    assert "result  392.5" in tool_block and "answer  \"The tools answered: 392.5\"" in tool_block
    assert "2 rounds, 2 requests" in tool_block
    for model, (plugin, generator, mode, attempts) in DEMO.items():
        block = blocks[model]
        assert f"plugin {plugin}, generator {generator}, mode {mode}, attempts {attempts}" in block, block
        assert f"served by {model} via " in block
        assert 'content {"city": "Lyon", "country": "France"}' in block
        usage = re.search(r"usage (\d+) prompt \+ (\d+) completion tokens, cost \$(\d+\.\d{6})", block)
        assert usage is not None, block
        assert int(usage[1]) > 0 and int(usage[2]) > 0 and float(usage[3]) > 0


def test_demo_json_prints_one_object_per_model(no_key: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    lines = capsys.readouterr().out.strip().split("\n\n", 1)[1].splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["requested"] for r in results] == list(DEMO)
    for r in results:
        plugin, generator, mode, attempts = DEMO[r["requested"]]
        assert set(r) == RESULT_KEYS | {"requested"}
        assert (r["plugin"], r["generator"], r["mode"], r["attempts"]) == (plugin, generator, mode, attempts)
        assert r["content"] == {"city": "Lyon", "country": "France"}
        assert r["usage"]["total_tokens"] > 0 and Decimal(r["cost"]) > 0
