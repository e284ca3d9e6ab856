"""Hardening: the API key is never a plain string in the locals of a failed call's traceback frames (what
Sentry and similar reporters capture), on both stacks; scrubbing catches case-changed and zero-width-split
echoes of the key."""

from __future__ import annotations

import socket
import types
from typing import Any

import pytest

from openrouter_registry import APIError, OpenRouterService, Registry, Settings
from openrouter_registry.errors import scrub
from openrouter_registry.testing import FakeOpenRouter, Scripted

KEY = "sk-or-v1-" + "0123456789abcdef" * 4
STACKS = ["aiohttp", "httpx"]


def holds_key(value: Any, seen: set[int], depth: int = 0) -> str | None:
    """Where ``value`` (walked through containers, closures and object attributes) holds the key as text."""
    if id(value) in seen or depth > 6:
        return None
    seen.add(id(value))
    if isinstance(value, (str, bytes, bytearray)):
        text = value if isinstance(value, str) else bytes(value).decode("latin-1")
        return "a string" if KEY in text else None
    if isinstance(value, (int, float, bool, type(None), type, types.ModuleType)):
        return None
    if isinstance(value, dict):
        for k, v in list(value.items()):
            where = holds_key(k, seen, depth + 1) or holds_key(v, seen, depth + 1)
            if where:
                return f"[{k!r}] {where}"
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in list(value):
            where = holds_key(v, seen, depth + 1)
            if where:
                return f"an item: {where}"
        return None
    if isinstance(value, types.FunctionType):
        for cell in value.__closure__ or ():
            try:
                where = holds_key(cell.cell_contents, seen, depth + 1)
            except ValueError:
                continue
            if where:
                return f"a closure of {value.__qualname__}: {where}"
        return None
    try:
        if KEY in repr(value):
            return f"the repr of a {type(value).__name__}"
    except Exception:
        pass
    return None


def frames_holding_the_key(error: BaseException) -> list[str]:
    found = []
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    for exc in chain:
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            for name, value in frame.f_locals.items():
                where = holds_key(value, set())
                if where:
                    found.append(f"{frame.f_code.co_qualname}: {name} holds it as {where}")
            tb = tb.tb_next
    return found


def service(base_url: str, stack: str) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=base_url, api_key=KEY, transport=stack, catalog=False, max_attempts=2)
    return OpenRouterService(settings, registry=Registry(environ={}))


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("failure", ["http-500", "refused", "stream-500", "structured-500"])
async def test_no_frame_of_a_failed_call_holds_the_key_as_text(stack: str, failure: str) -> None:
    with FakeOpenRouter(api_key=KEY) as fake:
        if failure == "refused":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                base_url = f"http://127.0.0.1:{probe.getsockname()[1]}/api/v1"
        else:
            base_url = fake.base_url
            fake.enqueue(*[Scripted(status=500, json={"error": {"message": "boom", "code": 500}})] * 2)
        async with service(base_url, stack) as svc:
            with pytest.raises(APIError) as caught:
                if failure == "stream-500":
                    async for _ in svc.stream("hi"):
                        pass
                elif failure == "structured-500":
                    await svc.generate("hi", schema={"type": "object", "properties": {"a": {"type": "string"}}})
                else:
                    await svc.generate("hi")
    error = caught.value
    assert error.__traceback__ is not None
    assert frames_holding_the_key(error) == []


@pytest.mark.parametrize(
    "echo",
    [KEY.upper(), KEY.swapcase(), "\u200b".join(KEY), KEY[:10] + "\u200d" + KEY[10:], KEY[:20] + "\ufeff" + KEY[20:],
     "Bearer " + KEY[:5] + "\u2060" + KEY[5:]],
)
def test_scrubbing_catches_case_changed_and_zero_width_split_echoes(echo: str) -> None:
    Settings.from_env({}, api_key=KEY)  # registers the key
    cleaned = scrub(f"upstream said: {echo} is not valid")
    assert cleaned.startswith("upstream said: ") and cleaned.endswith(" is not valid")
    assert "0123456789" not in cleaned.lower().replace("\u200b", "").replace("\u200d", "")
    assert "[redacted key]" in cleaned


# -- terminal output ---------------------------------------------------------------------------------


def test_escape_sequences_from_upstream_are_escaped_in_cli_messages(capsys: pytest.CaptureFixture[str]) -> None:
    from openrouter_registry.cli.commands import _fail
    from openrouter_registry.cli.terminal import safe

    assert safe("plain text: ok") == "plain text: ok"
    assert safe("\x1b[2J\x1b]8;;http://evil\x07x\r\u202eyz\u200b") == "\\x1b[2J\\x1b]8;;http://evil\\x07x\\x0d\\u202eyz\\u200b"
    _fail(3, "APIError: upstream says \x1b[31mred\x1b[0m\nand more")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31mred\\x1b[0m and more" in err


def test_the_models_table_escapes_cells_and_cannot_be_given_forged_rows() -> None:
    from openrouter_registry.cli.models import _table

    row = {"id": "acme/x\r\nforged/row  1  2", "context_window": 10, "max_output_tokens": None,
           "pricing": {"prompt": "0.000001", "completion": None}, "structured_modes": ["prompt"],
           "plugin": "\x1b[2Jevil", "generator": "Generator"}
    lines = _table([row])
    assert len(lines) == 2 and all("\x1b" not in line and "\r" not in line for line in lines)
    assert "acme/x\\x0d\\x0aforged/row" in lines[1] and "\\x1b[2Jevil" in lines[1]
