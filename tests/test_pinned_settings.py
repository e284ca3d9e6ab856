"""settings.py behaviour pinned after issue 24's sweep of constant mutants: which characters make a base
URL or app URL unusable, IDNA for a host written in capitals, the port range, the on/off spellings of a
switch, and a value of the wrong type given to ``Settings(...)`` directly."""

from __future__ import annotations

import pytest

from openrouter_registry import Settings
from openrouter_registry.errors import SettingsError

_KEY = {"OPENROUTER_API_KEY": "sk-or-test"}
_REFUSED = "OPENROUTER_BASE_URL must be an https:// URL (plain http:// only for localhost or 127.0.0.1), got "


def _base_url(url: str) -> str:
    return Settings.from_env({**_KEY, "OPENROUTER_BASE_URL": url}).base_url


def test_a_base_url_holding_del_is_refused_and_one_holding_u0080_is_percent_escaped() -> None:
    """DEL (0x7F) is a control character; U+0080, the next code point, is text like any non-ASCII one."""
    with pytest.raises(SettingsError) as refused:
        _base_url("https://x.example/a\x7fb")
    assert str(refused.value) == _REFUSED + "'https://x.example/a\\x7fb': it holds whitespace or a control character"
    assert _base_url("https://x.example/a\x80b") == "https://x.example/a%C2%80b"


def test_an_app_url_holding_del_is_refused_and_one_holding_u0080_is_percent_escaped() -> None:
    environ = {**_KEY, "OPENROUTER_HTTP_REFERER": "https://x.example/a\x7fb"}
    with pytest.raises(SettingsError, match=r"OPENROUTER_HTTP_REFERER .*\(it holds a line break or another control character\)"):
        Settings.from_env(environ)
    assert Settings.from_env({**_KEY, "OPENROUTER_HTTP_REFERER": "https://x.example/a\x80b"}).http_referer == (
        "https://x.example/a%C2%80b")


def test_a_host_written_with_capitals_and_non_ascii_letters_goes_through_uts46_idna() -> None:
    """UTS #46 maps the capital first (as browsers do); plain IDNA 2008 would refuse the name."""
    assert _base_url("https://Bücher.example/api/v1") == "https://xn--bcher-kva.example/api/v1"


@pytest.mark.parametrize(("port", "problem"), [
    (0, "its port 0 is outside 1-65535"), (1, None), (65535, None),
    (65536, "it is not a valid URL (Port out of range 0-65535)"),
])
def test_a_base_url_port_is_from_1_to_65535(port: int, problem: str | None) -> None:
    url = f"https://x.example:{port}/api/v1"
    if problem is None:
        assert _base_url(url) == url
    else:
        with pytest.raises(SettingsError) as refused:
            _base_url(url)
        assert str(refused.value) == _REFUSED + f"{url!r}: {problem}"


@pytest.mark.parametrize(("spelling", "value"), [
    ("on", True), ("off", False), ("true", True), ("false", False), ("1", True), ("0", False),
    ("yes", True), ("no", False), (" Off ", False), ("YES", True),
])
def test_each_spelling_of_a_switch_reads_as_documented(spelling: str, value: bool) -> None:
    assert Settings.from_env({**_KEY, "OPENROUTER_CATALOG": spelling}).catalog is value


def test_a_value_that_cannot_be_read_as_its_type_is_refused_by_settings_built_directly() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings(max_attempts="abc")  # type: ignore[arg-type]
    assert str(refused.value) == "OPENROUTER_MAX_ATTEMPTS must be an integer >= 1, got 'abc'"


# Judged equivalent (constant sweep of 2026-12-03):
# - settings.py has_space_or_control's `ord(c) < 0x20` -> `< 33`: the one character it adds is the space,
#   which c.isspace() already refuses;
# - settings.py `1 <= port <= 65535` -> `<= 65536`: urlsplit refuses a port over 65535 itself (the test above);
# - settings.py the close-match hint's `get_close_matches(..., n=1)` -> n=2: only the first match is named.
