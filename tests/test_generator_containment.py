"""A plugin's `Generator` methods are plugin code: one that raises is contained like a hook (the next
candidate serves before the request; after a billed request the raw text goes on to the parsers), the
failure is one ERROR line naming the plugin, the generator and the method, the plugin shows degraded;
generator class attributes are checked when the plugin loads; `build_headers` sees the resolution;
the result names the parser that produced its content; the CLI never prints a plugin's traceback."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from openrouter_registry import ContextLengthError, OpenRouterService, PluginError, Registry, Settings
from openrouter_registry.plugin import FakeOpenRouter, Generator, ModelTable, Scripted, family_hooks, hookimpl
from openrouter_registry.plugin import parse_embedded_json

from test_cli_plugins import run_cli
from test_plugin_loading import install_fake_distribution

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


class Boom(Generator):
    def build_body(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")


class BadShape(Generator):
    def shape_messages(self, messages: Any, mode: Any, schema: Any) -> list[dict[str, Any]]:
        return [{"role": "user", "content": str(1 / 0)}]


class BadFacts(Generator):
    def facts(self) -> Any:
        raise KeyError("context")


class BadFinish(Generator):
    def finish_text(self, text: str, mode: Any, schema: Any) -> str:
        raise ValueError("no prefill to put back")


class Fine(Generator):
    description = "the runner-up"


def plugin_for(generator: type[Generator], *, exact: str = "acme/writer-1") -> types.SimpleNamespace:
    table = ModelTable(exact={exact: generator})
    return types.SimpleNamespace(
        resolve_generator=hookimpl(lambda model, settings: table.match(model)),
        claimed_models=hookimpl(lambda: table.claimed()),
    )


@pytest.fixture
def server() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as fake:
        yield fake


def service_for(server: FakeOpenRouter, registry: Registry) -> OpenRouterService:
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog=False)
    return OpenRouterService(settings, registry=registry)


async def generate(service: OpenRouterService, **options: Any) -> Any:
    async with service:
        return await service.generate("Where is the Louvre?", **options)


def status(registry: Registry, name: str) -> tuple[str, int, str | None]:
    info = {p.name: p for p in registry.plugins()}[name]
    return info.status, info.failures, info.error


# -- before the request: the next candidate serves -------------------------------------------------------


@pytest.mark.parametrize(
    ("generator", "label"),
    [
        (Boom, "Boom.build_body raised ZeroDivisionError: division by zero"),
        (BadShape, "BadShape.build_body (in shape_messages) raised ZeroDivisionError: division by zero"),
        (BadFacts, "BadFacts.facts raised KeyError: 'context'"),
    ],
)
def test_a_method_that_raises_before_the_request_hands_the_call_to_the_next_candidate(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture, generator: type[Generator], label: str
) -> None:
    registry = Registry(environ={})
    registry.register(plugin_for(generator), name="acme")
    registry.register(plugin_for(Fine), name="runner_up")
    server.set_reply("response", {"city": "Paris"})
    with caplog.at_level(logging.DEBUG, logger="openrouter_registry"):
        result = asyncio.run(generate(service_for(server, registry), schema=CITY, model="acme/writer-1"))
    assert (result.content, result.generator, result.plugin, result.attempts) == ({"city": "Paris"}, "Fine", "runner_up", 1)
    (request,) = server.requests
    assert request.body["model"] == "acme/writer-1" and request.body["response_format"]["type"] == "json_schema"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"plugin 'acme' (registered at run time): generator method {label} for model 'acme/writer-1'; "
        f"the next candidate serves this call (further {label.split(' raised ')[1].split(':')[0]} from "
        f"{generator.__name__}.{'facts' if generator is BadFacts else 'build_body'} of this plugin are logged at DEBUG)"
    ]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "generator method" in r.getMessage()]
    assert len(debug) == 1 and debug[0].exc_info is not None
    assert status(registry, "acme") == ("degraded", 1, f"generator method {label} for model 'acme/writer-1'")


def test_without_a_runner_up_the_core_serves_and_the_plugin_stays_degraded(server: FakeOpenRouter) -> None:
    registry = Registry(environ={})
    registry.register(plugin_for(Boom), name="acme")
    service = service_for(server, registry)
    first = asyncio.run(generate(service, model="acme/writer-1"))
    assert (first.plugin, first.generator) == ("openrouter_registry", "OpenRouterGeneric")
    asyncio.run(generate(service_for(server, registry), model="acme/writer-1"))
    assert status(registry, "acme")[:2] == ("degraded", 2)  # contained each time, never disabled
    assert len(server.requests) == 2


def test_a_method_that_works_again_clears_degraded(server: FakeOpenRouter) -> None:
    calls = []

    class Flaky(Generator):
        def build_body(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> dict[str, Any]:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first call only")
            return super().build_body(messages, **options)

    registry = Registry(environ={})
    registry.register(plugin_for(Flaky), name="acme")
    assert asyncio.run(generate(service_for(server, registry), model="acme/writer-1")).plugin == "openrouter_registry"
    assert status(registry, "acme")[0] == "degraded"
    assert asyncio.run(generate(service_for(server, registry), model="acme/writer-1")).plugin == "acme"
    assert status(registry, "acme")[:2] == ("loaded", 1)


def test_a_typed_error_of_build_body_is_not_contained(server: FakeOpenRouter) -> None:
    class Tiny(Generator):
        context_window = 100

    registry = Registry(environ={})
    registry.register(plugin_for(Tiny), name="acme")

    async def too_long() -> Any:
        async with service_for(server, registry) as service:
            return await service.generate("x" * 2000, model="acme/writer-1", max_tokens=10)

    with pytest.raises(ContextLengthError):  # the pre-flight check reads the plugin's fact: not a bug of it
        asyncio.run(too_long())
    assert server.requests == [] and status(registry, "acme")[:2] == ("loaded", 0)


def test_a_stream_and_an_estimate_are_contained_too(server: FakeOpenRouter) -> None:
    registry = Registry(environ={})
    registry.register(plugin_for(Boom), name="acme")

    async def stream() -> Any:
        async with service_for(server, registry) as service:
            text = await service.stream("Hi", model="acme/writer-1").collect()
            estimate = await service.estimate_cost("Hi", model="acme/writer-1")
            return text, estimate

    text, estimate = asyncio.run(stream())
    assert text.startswith("Hello from acme/writer-1") and estimate is None  # catalog off: no prices
    assert server.requests[0].body["stream"] is True
    assert status(registry, "acme")[:2] == ("degraded", 2)


# -- after the billed request: the raw text goes on to the parsers ---------------------------------------


def test_finish_text_that_raises_passes_the_raw_text_to_the_parsers(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(environ={})
    registry.register(plugin_for(BadFinish), name="acme")
    server.enqueue(Scripted.chat(content='{"city": "Paris"}', model="acme/writer-1"))
    with caplog.at_level(logging.ERROR, logger="openrouter_registry"):
        result = asyncio.run(generate(service_for(server, registry), schema=CITY, model="acme/writer-1"))
    assert (result.content, result.plugin, result.attempts) == ({"city": "Paris"}, "acme", 1)
    assert result.cost is not None and result.cost > 0  # the billed reply's cost is kept
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith(
        "plugin 'acme' (registered at run time): generator method BadFinish.finish_text raised ValueError: "
        "no prefill to put back for model 'acme/writer-1'; the raw reply text goes on to the parsers"
    )
    assert status(registry, "acme")[0] == "degraded"


# -- the CLI prints one line, the traceback only with --debug --------------------------------------------

BROKEN_FACTS = """
    from openrouter_registry.plugin import Generator, ModelTable, hookimpl

    class Gem(Generator):
        def facts(self):
            return 1 / 0

    TABLE = ModelTable(exact={"acme/writer-1": Gem})

    @hookimpl
    def resolve_generator(model, settings):
        return TABLE.match(model)
"""


def test_the_cli_shows_no_traceback_unless_debug(tmp_path: Path) -> None:
    install_fake_distribution(tmp_path, "acme-gem", "1.0", "acme_gem", BROKEN_FACTS, "acme_gem")
    done = run_cli("resolve", "acme/writer-1", "--explain", site=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("openrouter-registry: unexpected ZeroDivisionError: division by zero; run again with --debug")
    debug = run_cli("--debug", "resolve", "acme/writer-1", "--explain", site=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "return 1 / 0" in debug.stderr
    after = run_cli("resolve", "acme/writer-1", "-v", site=tmp_path)  # -v after the command too
    assert after.returncode == 0 and "DEBUG" not in after.stdout


# -- generator attributes are checked when the plugin loads ----------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"structured_modes": "json_schema"}, "Bad.structured_modes must be a tuple of modes, best first ('json_schema', "
         "'json_object', 'tools', 'prompt'), got 'json_schema' (write ('json_schema',) for one mode)"),
        ({"structured_modes": ()}, "Bad.structured_modes is empty: give at least one mode"),
        ({"structured_modes": ("jsonschema", "prompt")}, "Bad.structured_modes holds 'jsonschema', which is not a "
         "mode ('json_schema', 'json_object', 'tools', 'prompt'); did you mean 'json_schema'?"),
        ({"structured_modes": ("prompt", "prompt")}, "Bad.structured_modes names a mode twice"),
        ({"context_window": 0}, "Bad.context_window must be a positive integer or None, got 0"),
        ({"context_window": "128k"}, "Bad.context_window must be a positive integer or None, got '128k'"),
        ({"max_output_tokens": -1}, "Bad.max_output_tokens must be a positive integer or None, got -1"),
        ({"max_output_tokens": True}, "Bad.max_output_tokens must be a positive integer or None, got True"),
        ({"max_output_tokens": 4096.0}, "Bad.max_output_tokens must be a positive integer or None, got 4096.0"),
    ],
)
def test_bad_generator_attributes_fail_the_plugin_at_load(attributes: dict[str, Any], message: str) -> None:
    bad = type("Bad", (Generator,), attributes)
    plugin = types.ModuleType("acme_bad")
    plugin.TABLE = ModelTable(exact={"acme/writer-1": bad})  # type: ignore[attr-defined]
    plugin.resolve_generator = hookimpl(lambda model, settings: plugin.TABLE.match(model))  # type: ignore[attr-defined]
    registry = Registry(environ={})
    with pytest.raises(PluginError) as info:
        registry.register(plugin, name="acme")
    assert message in str(info.value)
    assert registry.resolve("acme/writer-1", Settings.from_env({})).plugin == "openrouter_registry"


def test_an_installed_plugin_with_a_bad_attribute_shows_failed(tmp_path: Path) -> None:
    source = """
        from openrouter_registry.plugin import Generator, ModelTable, family_hooks, parse_embedded_json

        class Gem(Generator):
            structured_modes = "json_schema"

        TABLE = ModelTable(exact={"acme/writer-1": Gem})
        resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_embedded_json, prefix="acme/")
    """
    install_fake_distribution(tmp_path, "acme-gem", "1.0", "acme_gem", source, "acme_gem")
    done = run_cli("plugins", site=tmp_path)
    assert done.returncode == 0
    assert "acme_gem  [failed]  acme-gem 1.0" in done.stdout
    assert "error: invalid plugin: Gem.structured_modes must be a tuple of modes" in done.stdout
    resolved = run_cli("resolve", "acme/writer-1", site=tmp_path)
    assert resolved.stdout == "acme/writer-1 -> OpenRouterGeneric (openrouter_registry, fallback)\n"


def test_a_generator_class_made_at_run_time_is_checked_when_it_is_offered() -> None:
    def offer(model: str, settings: Settings) -> Any:
        from openrouter_registry.plugin import Candidate, Match

        return Candidate(type("Late", (Generator,), {"structured_modes": ("jsonschema",)}), Match.EXACT)

    registry = Registry(environ={})
    registry.register(types.SimpleNamespace(resolve_generator=hookimpl(offer)), name="late")
    resolution = registry.resolve("acme/writer-1", Settings.from_env({}))
    assert resolution.plugin == "openrouter_registry"
    state, failures, error = status(registry, "late")
    assert (state, failures) == ("degraded", 1)
    assert error is not None and "Late.structured_modes holds 'jsonschema'" in error


# -- build_headers sees the resolution; the result names its parser --------------------------------------


def test_build_headers_can_add_a_header_only_to_its_own_calls(server: FakeOpenRouter) -> None:
    def headers(model: str, resolution: Any) -> dict[str, str] | None:
        return {"X-Acme": "1"} if resolution.plugin == "acme" else None

    acme = plugin_for(Fine, exact="acme/writer-1")
    acme.build_headers = hookimpl(headers)
    registry = Registry(environ={})
    registry.register(acme, name="acme")
    rival_table = ModelTable(exact={"acme/writer-2": Fine})
    registry.register(types.SimpleNamespace(resolve_generator=hookimpl(lambda model: rival_table.match(model))), name="rival")

    for model in ("acme/writer-1", "acme/writer-2", "openai/gpt-4o"):
        asyncio.run(generate(service_for(server, registry), model=model))
    assert [r.headers.get("x-acme") for r in server.requests] == ["1", None, None]
    assert [p.headers for p in registry.plugins() if p.name == "acme"] == ["per-model"]


def test_the_result_names_the_parser_that_produced_its_content(server: FakeOpenRouter) -> None:
    table = ModelTable(exact={"acme/writer-1": Fine})
    hooks = family_hooks(table, parse_embedded_json, prefix="acme/")
    registry = Registry(environ={})
    registry.register(types.SimpleNamespace(**hooks._asdict()), name="acme")
    fenced = 'Sure:\n```json\n{"city": "Paris"}\n```'
    server.enqueue(
        Scripted.chat(content=fenced, model="acme/writer-1"),
        Scripted.chat(content='{"city": "Paris",}', model="acme/writer-1"),  # the core repairs the comma
    )
    ours = asyncio.run(generate(service_for(server, registry), schema=CITY, model="acme/writer-1"))
    core = asyncio.run(generate(service_for(server, registry), schema=CITY, model="acme/writer-1"))
    text = asyncio.run(generate(service_for(server, registry), model="acme/writer-1"))
    assert (ours.parser, core.parser, text.parser) == ("acme", "openrouter_registry", None)
    assert ours.to_dict()["parser"] == "acme" and ours.content == core.content == {"city": "Paris"}


BROKEN_BODY = """
    from openrouter_registry.plugin import Generator, ModelTable, hookimpl

    class Gem(Generator):
        def build_body(self, messages, **options):
            return {"model": self.model, "messages": messages, "ratio": 1 / 0}

    TABLE = ModelTable(exact={"acme/writer-1": Gem})

    @hookimpl
    def resolve_generator(model, settings):
        return TABLE.match(model)
"""


def test_the_cli_generates_past_a_broken_build_body_in_one_line(tmp_path: Path, server: FakeOpenRouter) -> None:
    install_fake_distribution(tmp_path, "acme-gem", "1.0", "acme_gem", BROKEN_BODY, "acme_gem")
    env = {"OPENROUTER_BASE_URL": server.base_url, "OPENROUTER_API_KEY": server.api_key, "OPENROUTER_CATALOG": "false"}
    done = run_cli("generate", "--model", "acme/writer-1", "Hi", site=tmp_path, **env)
    assert done.returncode == 0 and "Hello from acme/writer-1" in done.stdout
    assert done.stderr.splitlines() == [
        "openrouter-registry: plugin 'acme_gem' (acme-gem 1.0): generator method Gem.build_body raised "
        "ZeroDivisionError: division by zero for model 'acme/writer-1'; the next candidate serves this call "
        "(further ZeroDivisionError from Gem.build_body of this plugin are logged at DEBUG)"
    ]
    debug = run_cli("generate", "--model", "acme/writer-1", "Hi", "--debug", site=tmp_path, **env)
    assert debug.returncode == 0 and "Traceback" in debug.stderr and '"ratio": 1 / 0' in debug.stderr
    assert [r.body["model"] for r in server.requests] == ["acme/writer-1", "acme/writer-1"]


def test_headers_follow_a_plugin_registered_after_calls_were_made(server: FakeOpenRouter) -> None:
    # while no plugin builds headers the engine builds them once per settings; a plugin that starts
    # building them later is asked from the next call on
    registry = Registry(environ={})
    service = service_for(server, registry)
    asyncio.run(generate(service, model="openai/gpt-4o"))
    late = types.SimpleNamespace(build_headers=hookimpl(lambda model: {"X-Late": model}))
    registry.register(late, name="late")
    asyncio.run(generate(service, model="openai/gpt-4o"))
    assert [r.headers.get("x-late") for r in server.requests] == [None, "openai/gpt-4o"]
    assert all(r.headers.get("authorization", "").startswith("Bearer ") for r in server.requests)
