"""The API key never shows: settings values, every error path (exception text, repr, attributes, log
records, CLI stderr) against a server that echoes the key back, and the base URL's credentials."""

from __future__ import annotations

import copy
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import attrs
import cattrs
import pytest

from openrouter_registry import OpenRouterError, OpenRouterService, Settings, SettingsError
from openrouter_registry.errors import APIError, AuthenticationError, StructuredOutputError, scrub
from openrouter_registry.plugins.registry import Registry
from openrouter_registry.testing import FakeOpenRouter, Scripted

KEY = "sk-or-v1-" + "5e" * 32
#: A key this process was never given, in OpenRouter's shape: scrubbed by its shape.
OTHER_KEY = "sk-or-v1-" + "a7" * 32


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(api_key=KEY) as s:
        yield s


def service_for(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=KEY, **{"max_attempts": 2, **overrides})
    return OpenRouterService(settings, registry=Registry(environ={}))


# --- the settings value -----------------------------------------------------------------------------


def test_the_key_cannot_be_read_back_from_the_settings() -> None:
    s = Settings.from_env({"OPENROUTER_API_KEY": KEY})
    assert KEY not in repr(s) and KEY not in str(attrs.asdict(s)) and KEY not in repr(attrs.astuple(s))
    assert KEY not in str(cattrs.Converter().unstructure(s))
    assert KEY not in repr(copy.deepcopy(s)) and copy.deepcopy(s) == s
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)
    assert s.require_api_key() == KEY and s.api_key is not None and s.api_key.reveal() == KEY


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        (KEY[:20] + "\n" + KEY[20:], "line feed"),
        (KEY[:20] + "\u00a0" + KEY[20:], "no-break space"),
        (KEY[:20] + " " + KEY[20:], "space"),
        (KEY[:20] + "\u00e9" + KEY[20:], "non-ASCII character"),
        (KEY[:20] + "\x00" + KEY[20:], "control character"),
    ],
)
def test_a_badly_pasted_key_is_refused_when_the_settings_are_made(bad: str, what: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"OPENROUTER_API_KEY": bad})
    text = str(info.value)
    assert text.startswith("OPENROUTER_API_KEY must be printable ASCII without spaces or line breaks") and what in text
    assert KEY[:20] not in text and KEY[21:] not in text and "sk-or-v1" not in text.replace("sk-or-v1-...", "")


def test_surrounding_whitespace_of_a_key_is_dropped() -> None:
    assert Settings.from_env({}, api_key=f"  {KEY}\n").require_api_key() == KEY


# --- base URL credentials -----------------------------------------------------------------------------


def test_credentials_in_the_base_url_are_refused_without_being_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"OPENROUTER_BASE_URL": f"https://alice:{KEY}@openrouter.ai/api/v1"})
    text = str(info.value)
    assert "OPENROUTER_BASE_URL" in text and "credentials" in text and "***@openrouter.ai" in text
    assert KEY not in text and "alice" not in text


# --- every error path, against a server that echoes the key -------------------------------------------


def echoing_answers() -> list[tuple[str, Scripted]]:
    echoed = f"Invalid key Bearer {KEY} (also {OTHER_KEY})"
    raw = f'{{"error": {{"message": "upstream rejected {KEY}"}}}}'
    return [
        ("401 message", Scripted(status=401, json={"error": {"message": echoed, "code": 401}})),
        ("400 metadata.raw", Scripted(status=400, json={"error": {"message": "Provider error", "code": 400,
                                                                   "metadata": {"raw": raw, "provider_name": KEY}}})),
        ("403 moderation", Scripted(status=403, json={"error": {"message": echoed, "code": 403, "metadata": {
            "reasons": [echoed], "flagged_input": echoed}}})),
        ("500 html", Scripted(status=500, body=f"<html>{echoed}</html>", headers={"Content-Type": "text/html"})),
        ("200 not json", Scripted(status=200, body=f"oops {echoed}")),
        ("200 error body", Scripted(status=200, json={"error": {"message": echoed, "code": 400}})),
        ("200 choice error", Scripted(status=200, json={"id": KEY, "model": KEY, "choices": [
            {"finish_reason": "error", "error": {"message": echoed, "code": 400}}]})),
        ("307 redirect", Scripted(status=307, headers={"Location": f"https://evil.example/?key={KEY}"})),
    ]


def texts_of(error: BaseException) -> str:
    parts = [str(error), repr(error), repr(error.args)]
    parts += [repr(value) for value in vars(error).values()]
    return "\n".join(parts)


@pytest.mark.parametrize(("name", "answer"), echoing_answers(), ids=[n for n, _ in echoing_answers()])
async def test_no_error_path_shows_the_key(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture, name: str, answer: Scripted
) -> None:
    caplog.set_level(logging.DEBUG)
    server.enqueue(answer, answer)
    async with service_for(server) as service:
        with pytest.raises(APIError) as info:
            await service.generate("hi")
        shown = texts_of(info.value) + repr(service) + repr(service.transport) + caplog.text
    assert KEY not in shown and OTHER_KEY not in shown
    if name not in ("500 html", "200 not json"):  # those bodies are not quoted in the message at all
        assert "[redacted key]" in texts_of(info.value)


async def test_a_mid_stream_error_that_echoes_the_key_is_scrubbed(server: FakeOpenRouter) -> None:
    chunk = '{"id":"gen-1","model":"openai/gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"}}]}'
    error = f'{{"error":{{"message":"boom {KEY}","code":502}}}}'
    server.enqueue(Scripted(sse=[f"data: {chunk}\n\n", f"data: {error}\n\n"]))
    async with service_for(server) as service:
        stream = service.stream("hi")
        with pytest.raises(APIError) as info:
            await stream.collect()
    assert KEY not in texts_of(info.value) and "[redacted key]" in str(info.value) and stream.text == "Hel"


async def test_a_reply_that_echoes_the_key_is_scrubbed_from_the_structured_error(server: FakeOpenRouter) -> None:
    reply = {"id": "gen-1", "model": "openai/gpt-4o", "choices": [
        {"finish_reason": "stop", "message": {"role": "assistant", "content": f"my key is {KEY}"}}]}
    server.enqueue(Scripted(json=reply))
    async with service_for(server, max_reasks=0) as service:
        with pytest.raises(StructuredOutputError) as info:
            await service.generate("hi", schema={"type": "object"}, model="meta-llama/llama-3.1-8b-instruct")
    assert KEY not in texts_of(info.value)


def test_the_cli_never_prints_the_key(
    server: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openrouter_registry.cli import main

    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENROUTER_MAX_ATTEMPTS", "1")
    for _, answer in echoing_answers():
        server.enqueue(answer)
        assert main(["generate", "hi"]) != 0
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY[:30] + "\n" + KEY[30:])
    assert main(["generate", "hi"]) == 2
    captured = capsys.readouterr()
    assert KEY not in captured.err + captured.out and KEY[30:] not in captured.err
    assert captured.err.count("[redacted key]") >= 5 and "Traceback" not in captured.err


def test_scrub_removes_known_keys_and_key_shaped_text() -> None:
    Settings.from_env({}, api_key="custom-key-without-the-usual-prefix")
    text = scrub("a custom-key-without-the-usual-prefix b sk-or-v1-abcdef123 c")
    assert text == "a [redacted key] b [redacted key] c"
    assert scrub("no secrets here") == "no secrets here"


def test_errors_built_directly_are_scrubbed_too() -> None:
    error = AuthenticationError(f"bad {KEY}", metadata={"raw": [{"x": KEY}]}, model=KEY)
    assert KEY not in texts_of(error) and isinstance(error, OpenRouterError)


async def test_a_redirect_names_its_location_without_credentials(server: FakeOpenRouter) -> None:
    server.enqueue(Scripted(status=307, headers={"Location": "https://carol:pw@api.example/v2/chat/completions"}))
    async with service_for(server, max_attempts=1) as service:
        with pytest.raises(APIError) as info:
            await service.generate("hi")
    text = str(info.value)
    assert "HTTP 307 from OpenRouter: redirected to https://***@api.example/v2/chat/completions" in text
    assert "OPENROUTER_BASE_URL" in text and "carol" not in text and "pw@" not in text


async def test_a_trailing_space_in_base_url_no_longer_changes_the_request_path(server: FakeOpenRouter) -> None:
    settings = Settings.from_env({}, base_url=server.base_url + " ", api_key=KEY)
    async with OpenRouterService(settings, registry=Registry(environ={})) as service:
        await service.generate("hi")
    assert server.requests[-1].path == "/api/v1/chat/completions"


def test_a_key_given_straight_to_settings_is_wrapped_and_checked_too() -> None:
    s = Settings(api_key=f" {KEY} ")
    assert isinstance(s.api_key, type(Settings.from_env({}, api_key=KEY).api_key)) and s.require_api_key() == KEY
    with pytest.raises(SettingsError, match="OPENROUTER_API_KEY"):
        Settings(api_key=KEY[:9] + "\n" + KEY[9:])
