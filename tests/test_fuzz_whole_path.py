"""Hypothesis fuzz of the whole path: arbitrary settings, arguments and server answers in, only the
documented errors (docs/guides/errors.md) out.

- `test_answers_*`: random and adversarial answers (status, headers, body bytes or SSE events) from a
  local server to `generate` (text and schema), `stream` and `embed` (issue 8.2).
- `test_settings_*` and `test_calls_*`: `NLPServices.openrouter(...)` with arbitrary settings, then
  `generate` / `stream` / `embed` with arbitrary prompts, messages, schemas, options and server
  answers (issue 12.8).

Every call must end (an outer bound) with a value of the documented shape or an exception whose class
is named in the Errors table (docs/guides/errors.md): `ConfigurationError`/`SettingsError` for bad input, `APIError`
subclasses for bad answers, never a bare builtin. Example counts are modest so CI stays fast.

Shapes the fuzz found failing are also written below as explicit examples, so they are tried on every
run whatever hypothesis draws.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openrouter_registry
from openrouter_registry import NLPServices, OpenRouterService, Registry, Settings
from openrouter_registry.testing import FakeOpenRouter, Scripted
from openrouter_registry.http.transport import Transport

ROOT = Path(__file__).resolve().parents[1]
MODEL = "openai/gpt-4o"
BOUND = 30.0  # seconds: every call here answers at once; only a hang comes near it
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


def documented_errors() -> tuple[type[BaseException], ...]:
    """The classes named in the README's Errors table."""
    readme = (ROOT / "docs" / "guides" / "errors.md").read_text(encoding="utf-8")
    section = readme.split("## Errors", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    classes = tuple(c for c in (getattr(openrouter_registry, n, None) for n in names) if isinstance(c, type))
    assert len(classes) >= 10, "the Errors table of docs/guides/errors.md moved"
    return classes


DOCUMENTED = documented_errors()


def documented(error: BaseException) -> bool:
    """An exception a caller is promised: exactly one of the table's classes or a subclass of one."""
    return isinstance(error, DOCUMENTED)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as fake:
        yield fake


def make_service(server: FakeOpenRouter, **overrides: Any) -> OpenRouterService:
    values: dict[str, Any] = {"max_attempts": 2, "retry_after_max": 0.01, "timeout": 10.0, "connect_timeout": 5.0}
    values.update(overrides)
    config = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, **values)
    return OpenRouterService(config, registry=Registry(environ={}),
                             transport=Transport(config, base_delay=0.001, max_delay=0.001))


# --- answers -----------------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)

CHAT_FIELDS: Mapping[str, Any] = {
    "choices": st.one_of(
        st.lists(st.fixed_dictionaries({}, optional={
            "message": st.one_of(st.fixed_dictionaries({}, optional={
                "content": st.one_of(st.text(), st.none(), JSON_VALUES,
                                     st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", 3]),
                                                                     "text": JSON_VALUES}), max_size=3)),
                "role": JSON_VALUES}), JSON_VALUES),
            "delta": st.one_of(st.fixed_dictionaries({}, optional={"content": st.one_of(st.text(), JSON_VALUES)}),
                               JSON_VALUES),
            "finish_reason": st.one_of(st.sampled_from(["stop", "length", "error", "tool_calls", None]), JSON_VALUES),
            "error": JSON_VALUES,
            "text": JSON_VALUES,
        }), max_size=2),
        JSON_VALUES),
    "usage": st.one_of(st.fixed_dictionaries({}, optional={
        "prompt_tokens": JSON_VALUES, "completion_tokens": JSON_VALUES, "total_tokens": JSON_VALUES,
        "cost": st.one_of(JSON_VALUES, st.just("NaN"), st.just("1e999")),
        "prompt_tokens_details": JSON_VALUES}), JSON_VALUES),
    "error": JSON_VALUES,
    "id": JSON_VALUES,
    "model": JSON_VALUES,
    "provider": JSON_VALUES,
    "data": st.one_of(st.lists(st.fixed_dictionaries({}, optional={
        "index": JSON_VALUES, "embedding": st.one_of(st.lists(st.floats(), max_size=4), JSON_VALUES)}), max_size=3),
        JSON_VALUES),
}
CHAT_LIKE = st.fixed_dictionaries({}, optional=dict(CHAT_FIELDS))


def deep(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '{"a":' * depth + "1" + "}" * depth if opener == "{" else opener * depth + closer * depth
    return '{"choices": ' + inner + "}"


ADVERSARIAL_TEXTS = st.one_of(
    st.sampled_from([
        "", " \n\n ", "\ufeff", "null", "[]", "{}", "<html>502</html>", '{"choices": [NaN]}',
        '{"usage": {"cost": Infinity}}', '{"choices": [{"message": {"content": "\\ud800"}}]}',
        '{"choices": [{"message": {"content": 1e999}}]}', '{"data": [{"embedding": [1e999]}]}',
        '{"error": {"code": "\\u00b2", "message": {"deep": [[[]]]}}}', '{"choices": ' + "9" * 5000 + "}",
    ]),
    st.builds(deep, st.sampled_from([10, 900, 3000, 100_000]), st.sampled_from(["[", "{"])),
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), CHAT_LIKE),
    st.builds(lambda v: json.dumps(v).encode(), JSON_VALUES),
    ADVERSARIAL_TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")),
)
STATUSES = st.one_of(st.sampled_from([200, 200, 200, 400, 401, 402, 403, 404, 408, 413, 429, 500, 502, 503, 524, 529,
                                      301, 307, 418]), st.integers(min_value=200, max_value=599))
HEADER_VALUES = st.sampled_from(["0", "-1", "1e999", "nan", "0.001", "garbage", "Wed, 21 Oct 2099 07:28:00 GMT", ""])
HEADERS = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "text/event-stream", "text/html", "text/plain",
                                     "text/event-stream; charset=latin-1", "application/json; charset=bogus"]),
    "Retry-After": HEADER_VALUES,
    "retry-after-ms": HEADER_VALUES,
    "X-Generation-Id": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    "X-Provider-Name": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
})
SSE_EVENTS = st.lists(st.one_of(
    st.builds(lambda v: f"data: {json.dumps(v)}\n\n", CHAT_LIKE),
    st.builds(lambda t: f"data: {t}\n\n", ADVERSARIAL_TEXTS.filter(lambda t: "\\ud800" not in t)),
    st.sampled_from([": OPENROUTER PROCESSING\n\n", "data: [DONE]\n\n", "event: x\n", "data: {\n", "\n", "retry: 5\n"]),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace").decode("utf-8")),
), max_size=6)


@st.composite
def answers(draw: st.DrawFn) -> Scripted:
    """One server answer: a whole body, or (for 200) sometimes an event stream."""
    status = draw(STATUSES)
    headers = draw(HEADERS)
    if status == 200 and draw(st.booleans()):
        return Scripted(status=200, sse=draw(SSE_EVENTS), headers={k: v for k, v in headers.items()
                                                                   if k.lower() != "content-type"})
    return Scripted(status=status, body=draw(BODIES), headers=headers)


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def call(service: OpenRouterService, kind: str, **kwargs: Any) -> Any:
    """One public call of ``kind``, bounded; returns its value after checking its shape."""
    async with asyncio.timeout(BOUND):
        if kind in ("generate", "generate_schema"):
            options = {"schema": SCHEMA} if kind == "generate_schema" else {}
            result = await service.generate(**{"prompt": "hi", "model": MODEL, **options, **kwargs})
            assert isinstance(result.text, str) and result.text.encode("utf-8")
            assert all(isinstance(n, int) and n >= 0 for n in result.usage.to_dict().values())
            assert result.cost is None or (math.isfinite(result.cost) and result.cost >= 0)
            json.dumps(result.to_dict(), allow_nan=False)
            return result
        if kind == "stream":
            stream = service.stream(**{"prompt": "hi", "model": MODEL, **kwargs})
            text = await stream.collect()
            assert isinstance(text, str) and text.encode("utf-8") is not None
            assert stream.cost is None or (math.isfinite(stream.cost) and stream.cost >= 0)
            return text
        texts = kwargs.get("texts", ["a", "b"])
        embedded = await service.embed(texts)
        assert len(embedded.vectors) == (1 if isinstance(texts, str) else len(texts))
        assert all(math.isfinite(x) for vector in embedded.vectors for x in vector)
        return embedded


def run(service: OpenRouterService, kind: str, **kwargs: Any) -> BaseException | None:
    async def go() -> BaseException | None:
        async with service:
            try:
                await call(service, kind, **kwargs)
            except Exception as error:  # what we test: which exceptions come out
                return error
        return None

    return asyncio.run(go())


def assert_documented(error: BaseException | None) -> None:
    if error is None:
        return
    assert not isinstance(error, AssertionError), error
    assert documented(error), f"undocumented {type(error).__module__}.{type(error).__name__}: {error!r}"[:600]


CALLS = st.sampled_from(["generate", "generate_schema", "stream", "embed"])


@FUZZ
@given(kind=CALLS, first=answers(), second=answers())
def test_answers_of_any_shape_end_in_documented_errors(server: FakeOpenRouter, kind: str, first: Scripted,
                                                       second: Scripted) -> None:
    server.clear()
    server.enqueue(first, second)
    assert_documented(run(make_service(server), kind))


# --- settings, arguments ---------------------------------------------------------------------------

SETTING_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["0", "-1", "abc", "1e999", "nan", " 5 ", "https://x.invalid/api", "http://127.0.0.1:99999",
                     "http://user:pw@127.0.0.1", "ftp://a"]),
    st.lists(st.integers(), max_size=2),
)
SETTING_NAMES = [f.name for f in Settings.__attrs_attrs__]
#: The keyword names `NLPServices.openrouter` gives other names to.
RENAMED = {"model": "model_name"}


@st.composite
def setting_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(SETTING_NAMES), max_size=5, unique=True))
    kwargs = {RENAMED.get(n, n): draw(SETTING_VALUES) for n in names}
    return kwargs


def build(kwargs: Mapping[str, Any]) -> BaseException | OpenRouterService:
    with mock.patch.dict(os.environ, {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")},
                         clear=True):
        try:
            service = NLPServices.openrouter(**kwargs)
        except Exception as error:
            return error
    assert isinstance(service, OpenRouterService)
    return service


@FUZZ
@given(kwargs=setting_kwargs())
def test_settings_of_any_value_give_a_service_or_a_configuration_error(kwargs: dict[str, Any]) -> None:
    built = build(kwargs)
    if isinstance(built, BaseException):
        assert isinstance(built, openrouter_registry.ConfigurationError), repr(built)[:500]


TEXT = st.text(st.characters(blacklist_categories=()), max_size=30)  # lone surrogates included
ODD_VALUES = st.one_of(st.binary(max_size=5), st.frozensets(st.integers(), max_size=2), st.just(math.nan),
                       st.just(math.inf), st.just(object()))
CONTENTS = st.one_of(TEXT, st.none(), ODD_VALUES,
                     st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(TEXT, ODD_VALUES)}),
                              max_size=2))
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "robot", ""]),
                                           "content": CONTENTS}), max_size=3)


@dataclasses.dataclass
class City:
    city: str


SCHEMAS = st.one_of(
    st.none(), st.just(SCHEMA), st.just(City), st.just(int), st.just({"type": "array", "items": {"type": "integer"}}),
    st.dictionaries(st.sampled_from(["type", "properties", "required", "items", "enum"]), JSON_VALUES, max_size=3),
    st.integers(), TEXT,
)
OPTIONS = st.fixed_dictionaries({}, optional={
    "temperature": st.one_of(st.floats(), st.integers(), TEXT, st.none()),
    "max_tokens": st.one_of(st.integers(min_value=-3, max_value=10**9), st.floats(), st.none()),
    "max_reasks": st.integers(min_value=0, max_value=2),
    "extra_body": st.one_of(st.none(), st.dictionaries(st.sampled_from(["provider", "top_p", "seed"]),
                                                      st.one_of(st.integers(), TEXT, st.none(), ODD_VALUES),
                                                      max_size=2)),
})


@st.composite
def call_arguments(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    if kind == "embed":
        return {"texts": draw(st.one_of(TEXT, st.lists(st.one_of(TEXT, ODD_VALUES), max_size=3)))}
    kwargs: dict[str, Any] = dict(draw(OPTIONS))
    if draw(st.booleans()):
        kwargs["prompt"] = draw(TEXT)
    else:
        kwargs["prompt"] = None
        kwargs["messages"] = draw(MESSAGES)
    if kind == "stream":
        kwargs.pop("max_reasks", None)
    elif kind == "generate_schema":
        kwargs["schema"] = draw(SCHEMAS)
    return kwargs


@FUZZ
@given(data=st.data(), kind=CALLS, kwargs=setting_kwargs(), first=answers(), second=answers())
def test_calls_with_any_settings_arguments_and_answers_end_in_documented_errors(
    server: FakeOpenRouter, data: st.DataObject, kind: str, kwargs: dict[str, Any], first: Scripted, second: Scripted
) -> None:
    built = build(kwargs)
    if isinstance(built, BaseException):
        assert isinstance(built, openrouter_registry.ConfigurationError), repr(built)[:500]
        return
    # the server is local whatever the fuzz chose; the bounds stay small so a run stays short
    config = built.settings.replace(base_url=server.base_url, api_key=server.api_key)
    config = config.replace(max_attempts=min(config.max_attempts, 2), retry_after_max=0.01,
                            timeout=min(config.timeout, 10.0), connect_timeout=min(config.connect_timeout, 5.0))
    service = OpenRouterService(config, registry=Registry(environ={}),
                                transport=Transport(config, base_delay=0.001, max_delay=0.001))
    server.clear()
    server.enqueue(first, second)
    # a drawn cache_dir may be relative ("-1"): the catalog cache then lands in this example's own temp dir
    with tempfile.TemporaryDirectory(prefix="fuzz-cwd-") as cwd, contextlib.chdir(cwd):
        assert_documented(run(service, kind, **data.draw(call_arguments(kind))))


# --- explicit examples -------------------------------------------------------------------------------
# Specific cases the fuzz found while the hardening work was under way; each is kept as a plain example.


SETTING_EXAMPLES = [
    pytest.param({"unknown_setting": 1}, id="unknown keyword"),
    pytest.param({"base_url": "http://127.0.0.1:99999/api/v1"}, id="port out of range"),
    pytest.param({"base_url": "http://127.0.0.1:abc/api/v1"}, id="port not a number"),
    pytest.param({"base_url": "http://user:pw@127.0.0.1/api/v1"}, id="credentials in the URL"),
    pytest.param({"api_key": "sk-or-v1-abc\ndef"}, id="newline inside the key"),
]


@pytest.mark.parametrize("kwargs", SETTING_EXAMPLES)
def test_settings_that_cannot_be_sent_are_refused_when_built(kwargs: dict[str, Any]) -> None:
    built = build(kwargs)
    assert isinstance(built, openrouter_registry.SettingsError), repr(built)[:300]


def test_a_non_ascii_site_name_reaches_the_request_or_is_refused_when_built(server: FakeOpenRouter) -> None:
    built = build({"site_name": "Café Bot"})
    if isinstance(built, BaseException):
        assert isinstance(built, openrouter_registry.SettingsError)
        return
    config = built.settings.replace(base_url=server.base_url, api_key=server.api_key)
    service = OpenRouterService(config, registry=Registry(environ={}))
    server.clear()
    assert_documented(run(service, "generate"))



CALL_EXAMPLES = [
    pytest.param("generate", {"prompt": None, "messages": [{"role": "user", "content": b"bytes"}]}, id="bytes content"),
    pytest.param("stream", {"prompt": None, "messages": [{"role": "user", "content": {"a", "b"}}]}, id="set content"),
    pytest.param("generate", {"prompt": "lone \ud800 surrogate"}, id="lone surrogate in the prompt"),
    pytest.param("embed", {"texts": ["lone \udfff surrogate"]}, id="lone surrogate in an embedding input"),
    pytest.param("generate", {"prompt": "hi", "extra_body": {"top_p": math.nan}}, id="NaN in extra_body"),
    pytest.param("generate", {"prompt": "hi", "extra_body": {"seed": {1, 2}}}, id="set in extra_body"),
]


@pytest.mark.parametrize(("kind", "kwargs"), CALL_EXAMPLES)
def test_bad_arguments_are_configuration_errors_before_any_request(server: FakeOpenRouter, kind: str,
                                                                    kwargs: dict[str, Any]) -> None:
    server.clear()
    error = run(make_service(server), kind, **kwargs)
    assert isinstance(error, openrouter_registry.ConfigurationError), repr(error)[:300]
    assert not server.requests


ANSWER_EXAMPLES = [
    pytest.param("generate", Scripted(body=b"\x1f\x8b not gzip at all", headers={"Content-Encoding": "gzip",
                                                                               "Content-Type": "application/json"}),
                 openrouter_registry.InvalidResponseError, id="bad gzip body"),
    pytest.param("stream", Scripted(sse=['data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n']),
                 openrouter_registry.InvalidResponseError, id="stream ends before [DONE]"),
]


@pytest.mark.parametrize(("kind", "answer", "expected"), ANSWER_EXAMPLES)
def test_answers_that_need_other_parts(server: FakeOpenRouter, kind: str, answer: Scripted,
                                       expected: type[BaseException]) -> None:
    server.clear()
    server.enqueue(answer, answer)
    error = run(make_service(server, max_reasks=0), kind)
    assert isinstance(error, expected), repr(error)[:300]


def test_a_hostile_reply_never_disables_a_plugin(server: FakeOpenRouter) -> None:
    service = make_service(server, max_reasks=0)
    assert service.resolve(MODEL).plugin == "openrouter_gpt"
    server.clear()
    server.enqueue(Scripted(json={"choices": [{"message": {"content": "[" * 100_000}, "finish_reason": "stop"}]}))
    assert isinstance(run(service, "generate_schema"), openrouter_registry.StructuredOutputError)
    assert service.resolve(MODEL).plugin == "openrouter_gpt"
