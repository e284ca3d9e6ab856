"""Settings: env parsing through cattrs, explicit overrides, clear errors, the key never shown."""

from __future__ import annotations

import logging

import pytest

from openrouter_registry import MissingAPIKeyError, Settings, SettingsError

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.model, s.max_tokens, s.base_url, s.api_key, s.max_attempts, s.max_reasks) == (
        "openai/gpt-4o",
        None,
        "https://openrouter.ai/api/v1",
        None,
        3,
        1,
    )
    assert (s.embedder_model, s.embedder_dimensions) == ("openai/text-embedding-3-large", None)


def test_env_values_are_converted() -> None:
    s = Settings.from_env(
        {
            "OPENROUTER_API_KEY": KEY,
            "OPENROUTER_MODEL": "anthropic/claude-3.5-sonnet",
            "OPENROUTER_MAX_TOKENS": " 4096 ",
            "OPENROUTER_HTTP_REFERER": "https://app.example",
            "OPENROUTER_SITE_NAME": "My App",
            "OPENROUTER_BASE_URL": "http://127.0.0.1:8080/api/v1/",
            "OPENROUTER_TIMEOUT": "12.5",
            "OPENROUTER_CONNECT_TIMEOUT": "2",
            "OPENROUTER_MAX_ATTEMPTS": "5",
            "OPENROUTER_RETRY_AFTER_MAX": "0",
            "OPENROUTER_MAX_REASKS": "0",
            "OPENROUTER_EMBEDDER_DIMENSIONS": "256",
        }
    )
    assert s.require_api_key() == KEY
    assert (s.model, s.max_tokens, s.base_url, s.timeout, s.connect_timeout) == (
        "anthropic/claude-3.5-sonnet",
        4096,
        "http://127.0.0.1:8080/api/v1",
        12.5,
        2.0,
    )
    assert (s.max_attempts, s.retry_after_max, s.max_reasks, s.embedder_dimensions) == (5, 0.0, 0, 256)
    assert (s.http_referer, s.site_name) == ("https://app.example", "My App")


def test_explicit_arguments_win_over_env_and_none_is_ignored() -> None:
    s = Settings.from_env({"OPENROUTER_MAX_TOKENS": "100", "OPENROUTER_MODEL": "a/b"}, max_tokens=4096, model=None)
    assert (s.max_tokens, s.model) == (4096, "a/b")


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env({"OPENROUTER_MAX_TOKENS": "", "OPENROUTER_MODEL": "  "}).model == "openai/gpt-4o"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENROUTER_MAX_TOKENS": "abc"}, "OPENROUTER_MAX_TOKENS must be a positive integer, got 'abc'"),
        ({"OPENROUTER_MAX_TOKENS": "0"}, "OPENROUTER_MAX_TOKENS must be a positive integer, got 0"),
        ({"OPENROUTER_MAX_TOKENS": "-5"}, "OPENROUTER_MAX_TOKENS must be a positive integer, got -5"),
        ({"OPENROUTER_MAX_TOKENS": "12.5"}, "OPENROUTER_MAX_TOKENS must be a positive integer, got '12.5'"),
        ({"OPENROUTER_TIMEOUT": "soon"}, "OPENROUTER_TIMEOUT must be a positive number of seconds, got 'soon'"),
        ({"OPENROUTER_TIMEOUT": "nan"}, "OPENROUTER_TIMEOUT must be a positive number of seconds, got 'nan'"),
        ({"OPENROUTER_MAX_ATTEMPTS": "0"}, "OPENROUTER_MAX_ATTEMPTS must be an integer >= 1, got 0"),
        (
            {"OPENROUTER_BASE_URL": "http://openrouter.example/api/v1"},
            "OPENROUTER_BASE_URL must be an https:// URL (plain http:// only for localhost or 127.0.0.1), "
            "got 'http://openrouter.example/api/v1'",
        ),
        ({"OPENROUTER_BASE_URL": "openrouter.ai"}, "OPENROUTER_BASE_URL must be an https:// URL"),
    ],
)
def test_malformed_values_name_the_variable_and_the_expected_value(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(message)


def test_bad_explicit_argument_is_reported_too() -> None:
    with pytest.raises(SettingsError, match="OPENROUTER_MAX_TOKENS must be a positive integer, got -1"):
        Settings.from_env({}, max_tokens=-1)
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.from_env({}, max_token=5)


@pytest.mark.parametrize("url", ["http://localhost:9000/api/v1", "http://127.0.0.5/v1", "http://[::1]:80/v1"])
def test_plain_http_only_for_loopback(url: str) -> None:
    assert Settings.from_env({"OPENROUTER_BASE_URL": url}).base_url == url


def test_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    s = Settings.from_env({"OPENROUTER_API_KEY": KEY})
    logging.getLogger("openrouter_registry").warning("settings are %s / %r / %s", s, s, s.api_key)
    shown = repr(s) + str(s) + f"{s.api_key}" + caplog.text
    assert KEY not in shown and "**********" in shown


def test_missing_key_error_text() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        Settings.from_env({}).require_api_key()
    assert str(info.value).startswith("OPENROUTER_API_KEY is not set")
    assert "export OPENROUTER_API_KEY" in str(info.value)


def test_a_bad_key_value_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({}, api_key=12345)
    assert "12345" not in str(info.value)


def test_replace_validates() -> None:
    s = Settings.from_env({}).replace(max_tokens=10)
    assert s.max_tokens == 10
    with pytest.raises(SettingsError):
        s.replace(max_tokens=0)


# --- app attribution headers (issue 8.5): checked or encoded when the settings are made ----------


def test_a_non_ascii_app_name_is_refused_at_once_with_an_ascii_suggestion() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"OPENROUTER_SITE_NAME": "Café Bot"})
    text = str(info.value)
    assert text.startswith("OPENROUTER_SITE_NAME must be printable ASCII on one line")
    assert "X-Title" in text and "'Cafe Bot'" in text


@pytest.mark.parametrize("name", ["My\r\nX-Evil: 1", "bell\x07", "tab\tname"])
def test_an_app_name_with_a_control_character_is_refused(name: str) -> None:
    with pytest.raises(SettingsError, match="OPENROUTER_SITE_NAME"):
        Settings.from_env({}, site_name=name)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("https://app.example/path?q=1", "https://app.example/path?q=1"),  # ASCII: unchanged
        ("https://café.example/menü?q=é#à", "https://xn--caf-dma.example/men%C3%BC?q=%C3%A9#%C3%A0"),
        ("https://faß.de/", "https://xn--fa-hia.de/"),  # IDNA 2008 (UTS 46): ß kept, not folded to ss
        ("https://例え.jp/ページ", "https://xn--r8jz45g.jp/%E3%83%9A%E3%83%BC%E3%82%B8"),
        ("app.example/a b", "app.example/a%20b"),
    ],
)
def test_a_non_ascii_app_url_is_sent_as_its_lossless_ascii_form(given: str, sent: str) -> None:
    from urllib.parse import unquote

    s = Settings.from_env({"OPENROUTER_HTTP_REFERER": given})
    assert s.http_referer == sent
    assert unquote(sent.partition("://")[2].partition("/")[2]) == unquote(given.partition("://")[2].partition("/")[2])


@pytest.mark.parametrize("url", ["https://app.example/\r\nX-Evil: 1", "https://app.example/\x00", "https://\ud800.example"])
def test_an_app_url_that_cannot_be_sent_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="OPENROUTER_HTTP_REFERER must be your app's URL"):
        Settings.from_env({}, http_referer=url)


def test_settings_errors_exit_2_in_the_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from openrouter_registry.cli import main

    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_SITE_NAME", "Café Bot")
    assert main(["generate", "hi"]) == 2
    err = capsys.readouterr().err
    assert "SettingsError: OPENROUTER_SITE_NAME must be printable ASCII" in err and "Traceback" not in err


# --- base URL (issue 12.6): fully checked when the settings are made ------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://openrouter.ai:99999/api/v1", "Port out of range"),
        ("https://openrouter.ai:abc/api/v1", "Port could not be cast"),
        ("https://openrouter.ai:0/api/v1", "port 0 is outside 1-65535"),
        ("https://openrouter.ai:/api/v1", "empty port"),
        ("https://openrouter.ai/api\n/v1", "whitespace or a control character"),
        ("https://openrouter.ai/api v1", "whitespace or a control character"),
        ("https://openrouter.ai/api/v1?x=1", "must not have a query"),
        ("https://openrouter.ai/api/v1#frag", "must not have a query"),
        ("https://openrouter.ai/api/../v1", "'..' segments"),
        ("https://openrouter.ai//v1", "empty, '.' or '..' segments"),
        ("https:///api/v1", "has no host"),
        ("ftp://openrouter.ai/api/v1", "must start with https://"),
        ("https://bob:hunter2@openrouter.ai/api/v1", "credentials"),
    ],
)
def test_a_base_url_that_cannot_be_used_is_refused_when_the_settings_are_made(url: str, reason: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({}, base_url=url)
    text = str(info.value)
    assert text.startswith("OPENROUTER_BASE_URL must be an https:// URL") and reason in text
    assert "hunter2" not in text and "bob" not in text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://openrouter.ai/api/v1 ", "https://openrouter.ai/api/v1"),  # was sent to /api/v1%20/...
        (" https://openrouter.ai/api/v1/", "https://openrouter.ai/api/v1"),
        ("https://openrouter.ai:443/api/v1", "https://openrouter.ai:443/api/v1"),
        ("https://bücher.example/api/v1", "https://xn--bcher-kva.example/api/v1"),
    ],
)
def test_a_usable_base_url_is_normalised(given: str, kept: str) -> None:
    assert Settings.from_env({}, base_url=given).base_url == kept


@pytest.mark.parametrize("model", ["openai/gpt 4o", "openai/gpt-4o\n", "openai/\udcff", "a\x00b"])
def test_a_model_id_that_cannot_be_sent_is_refused_when_the_settings_are_made(model: str) -> None:
    with pytest.raises(SettingsError, match="OPENROUTER_MODEL must be a model id"):
        Settings.from_env({}, model=model)
    with pytest.raises(SettingsError, match="OPENROUTER_EMBEDDER_MODEL must be a model id"):
        Settings.from_env({}, embedder_model=model)
