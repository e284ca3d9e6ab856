"""`Engine`: one generation through every stage, in one direction, each step a named method.

settings -> registry.resolve (generator) -> generator.build_body for the current mode ->
build_headers hook (+ Authorization last) -> transport (pooled client, retries, typed errors) ->
decode -> parse_structured chain -> schema validation -> `GenerationResult` with usage and cost,
or a re-ask / mode fallback that loops back to the request step. `stream` and `embed` share the
resolution, headers and transport.

Generator methods are plugin code and are contained like hooks (`Registry.fall_through`,
`Registry.generator_failed`): a method that raises anything but an `OpenRouterError` before the
request is sent (``facts``, ``build_body`` and what it calls: ``shape_messages``,
``response_format``, ``max_tokens_for``) hands the call to the next candidate; after a billed
request, a ``finish_text`` that raises lets the raw reply text go on to the parsers, and a ``facts``
that raises while pricing leaves the reply unpriced (``cost`` None unless OpenRouter reported it).

The app-facing class is `openrouter_registry.OpenRouterService`, this engine plus the adapters that
sit above it (``service.batch(...)``, Parlant's ``p.Server(nlp_service=service)``).
"""

from __future__ import annotations

from decimal import Decimal
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeVar, Unpack, overload

import attrs

from ..schemas.fastjson import MAPPING
from ..errors import (
    APIError, ConfigurationError, MissingAPIKeyError, OpenRouterError, StructuredOutputError, TruncatedOutputError,
)
from ..models.generator import Generator, Mode
from ..http.headers import with_authorization
from ..schemas.inputs import check_call_options, check_text, json_copy
from .options import GenerateOptions, Plugin, Provider, check_transport_options, request_fields
from ..models.modes import MODE_MEMORY, is_mode_refusal, route_of
from ..replies.offload import ParseOverrun, off_loop_within
from ..plugins.registry import CORE_PLUGIN, PARSE_DEADLINE, Registry, Resolution, get_registry
from ..result import (
    CostSource, EmbeddingResult, GenerationResult, Reply, ToolCall, Usage, add_cost_sources, add_costs, cost_from_api,
)
from ..settings import Settings, is_model_id
from ..schemas.validation import validate
from ..http.events import EventObserver
from . import observe
from .observe import Watch

if TYPE_CHECKING:
    from ..schemas.tools import Tool
    from ..models.catalog import Catalog
    from ..models.pricing import CostEstimate
    from ..http.transport import Transport

__all__ = [
    "Engine", "TextStream", "StreamEvent", "TextDelta", "ReasoningDelta", "ToolCallStarted", "ToolCallArgumentsDelta",
    "ToolCallFinished", "UsageReport", "normalize_messages", "reask_message", "reask_excerpt", "REASK_EXCERPT_CHARS",
]

log = logging.getLogger("openrouter_registry")

T = TypeVar("T")

_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})
_SPARE = frozenset({CORE_PLUGIN})  # parsers the parse deadline's watchdog never interrupts
_KNOWN_DIMENSIONS = {
    "openai/text-embedding-3-large": 3072,
    "openai/text-embedding-3-small": 1536,
    "openai/text-embedding-ada-002": 1536,
}


def reask_message(errors: Sequence[str]) -> str:
    """The user message appended when a reply did not validate."""
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return (
        "Your previous reply could not be used: it did not validate against the JSON Schema.\n"
        f"Errors:\n{listed}\n"
        "Reply again with only the corrected JSON value, no prose and no code fences."
    )


#: A re-ask sends back at most this many characters of the invalid reply: its start and its end.
REASK_EXCERPT_CHARS = 4000
_EXCERPT_HEAD = 3000


def reask_excerpt(text: str) -> str:
    """The invalid reply as sent back in a re-ask: whole up to `REASK_EXCERPT_CHARS` characters,
    otherwise its first 3,000 and last 1,000 characters around a marker saying how many were left out."""
    if len(text) <= REASK_EXCERPT_CHARS:
        return text
    tail = REASK_EXCERPT_CHARS - _EXCERPT_HEAD
    left_out = len(text) - REASK_EXCERPT_CHARS
    return f"{text[:_EXCERPT_HEAD]}\n[... {left_out} characters left out ...]\n{text[-tail:]}"


def normalize_messages(prompt: str | None, messages: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """One list of chat messages (plain JSON copies) from a prompt string or a messages list.

    Raises `ConfigurationError` naming the field for bad input: a missing role or content, content
    that is not a string, null or a list of content parts, and anything JSON cannot carry (bytes,
    sets, NaN, lone surrogates; see `inputs.json_copy`)."""
    if (prompt is None) == (messages is None):
        raise ConfigurationError("pass either a prompt string or messages=[{'role': ..., 'content': ...}], not both")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigurationError("the prompt must be a non-empty string")
        check_text(prompt, "the prompt")
        return [{"role": "user", "content": prompt}]
    assert messages is not None
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ConfigurationError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, MAPPING) or message.get("role") not in _ROLES:
            raise ConfigurationError(
                f"messages[{i}] must be a dict with 'role' (one of {', '.join(sorted(_ROLES))}) and 'content'"
            )
        role = message["role"]
        calls = message.get("tool_calls")
        if "content" not in message and not (role == "assistant" and calls):
            raise ConfigurationError(
                f"messages[{i}] has no 'content': every message needs one, except an assistant message with "
                "'tool_calls'"
            )
        content = message.get("content")
        if not (content is None or isinstance(content, str) or _is_parts(content)):
            raise ConfigurationError(
                f"messages[{i}].content must be a string, null or a list of content parts "
                f"({{'type': 'text', 'text': ...}}, 'image_url', 'file', 'input_audio'), got {type(content).__name__}"
            )
        if calls is not None and (role != "assistant" or not _is_tool_calls(calls)):
            raise ConfigurationError(
                f"messages[{i}].tool_calls must be on an assistant message, as a list of "
                "{'id': ..., 'type': 'function', 'function': {'name': ..., 'arguments': '<JSON text>'}} "
                "(result.assistant_message() builds it)"
            )
        if role == "tool" and not (isinstance(message.get("tool_call_id"), str) and message["tool_call_id"]):
            raise ConfigurationError(
                f"messages[{i}] is a tool message without 'tool_call_id': name the call it answers "
                "(tool_message(call, content) builds it)"
            )
        out.append(json_copy(message, f"messages[{i}]"))
    return out


def _is_tool_calls(calls: Any) -> bool:
    return isinstance(calls, (list, tuple)) and bool(calls) and all(
        isinstance(call, MAPPING)
        and isinstance(call.get("id"), str)
        and isinstance(call.get("function"), MAPPING)
        and isinstance(call["function"].get("name"), str)
        for call in calls
    )


def _is_parts(content: Any) -> bool:
    return isinstance(content, (list, tuple)) and all(
        isinstance(part, MAPPING) and isinstance(part.get("type"), str) for part in content
    )


class _Late(NamedTuple):
    """The steps of `generate` that live in modules ``import openrouter_registry`` does not load."""

    to_json_schema: Callable[[Any], dict[str, Any] | None]
    decode_chat_checked: Callable[[Mapping[str, Any]], Reply]
    priced: Callable[[Reply, Generator], Reply]
    parse_unclosed: Callable[[str, Mapping[str, Any] | None], Any | None]
    structure: Callable[[Any, Any], Any]
    catalog_settled: Callable[[Settings], bool]
    cache_saving: Callable[[Any, Usage], Decimal | None]


@functools.cache
def _late() -> _Late:
    """`_Late`, imported on the first call (an import statement in a hot function costs microseconds
    on every call; this costs a cached function call)."""
    from ..models.catalog import settled
    from ..replies.decode import decode_chat_checked
    from ..models.pricing import cache_saving, priced
    from ..schemas.schema import structure, to_json_schema
    from ..replies.structured import parse_unclosed

    return _Late(to_json_schema, decode_chat_checked, priced, parse_unclosed, structure, settled, cache_saving)


class _Tooling(NamedTuple):
    check_tools: Callable[[Sequence[Any] | None], tuple[Tool, ...]]
    tool_request: Callable[..., dict[str, Any]]
    check_reasoning: Callable[[Any, Generator, int | None], dict[str, Any] | None]


@functools.cache
def _tooling() -> _Tooling:
    """The checks of ``tools=`` and ``reasoning=``, loaded by the first call that uses them."""
    from ..models.reasoning import check_reasoning
    from ..schemas.tools import check_tools, tool_request

    return _Tooling(check_tools, tool_request, check_reasoning)


def _kept(decode: Callable[[Any], T]) -> tuple[Callable[[Any], T], list[T]]:
    """``decode`` as a `Transport.post_json` check that keeps what it returns, so the accepted answer
    is decoded once (the list holds the accepted answer's value once ``post_json`` returns)."""
    kept: list[T] = []

    def check(data: Any) -> T:
        value = decode(data)
        kept.append(value)
        return value

    return check, kept


class Engine:
    """Structured generation, streaming and embeddings through OpenRouter.

    One pooled HTTP client serves every call for the service's life; use ``async with service`` or
    ``await service.aclose()``. Nothing touches the network or reads the key before the first call.
    Apps use its subclass `openrouter_registry.OpenRouterService`, which adds the adapters above.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        transport: Transport | None = None,
        on_event: EventObserver | None = None,
    ) -> None:
        if on_event is not None and not callable(on_event):
            raise ConfigurationError(
                f"on_event must be a callable taking one CallEvent (e.g. on_event=print), got {type(on_event).__name__}"
            )
        self.registry = registry or get_registry()
        self.settings = settings or self.registry.default_settings()
        self._transport = transport
        #: The app's observer: called with every `CallEvent` of every call (see `openrouter_registry.engine.observe`).
        self.on_event = on_event
        #: (settings, headers) while no plugin builds headers: then a call's headers depend on the settings alone.
        self._plain_headers: tuple[Settings, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.settings.model!r}, base_url={self.settings.base_url!r})"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"a {type(self).__name__} cannot be pickled (it holds a connection pool, its event loop and the key): "
            "build it in the worker, or hand the engine openrouter_registry.BatchUDF(...), which holds only "
            "plain settings and builds the service where it runs"
        )

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The shared transport (one connection pool per event loop, aiohttp or httpx), created on first use."""
        if self._transport is None:
            from ..http.transport import Transport

            self._transport = Transport(self.settings)
        return self._transport

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- the generation path -----------------------------------------------------------------------

    def resolve(self, model: str | None = None) -> Resolution:
        """The generator that serves ``model`` (default: the settings' model)."""
        return self.registry.resolve(model or self.settings.model, self.settings)

    async def load_catalog(self, *, refresh: bool = False) -> Catalog | None:
        """The model catalog for these settings: held in memory, cached on disk, fetched at most once per
        ``OPENROUTER_CATALOG_TTL`` (see `openrouter_registry.models.catalog`). None when off or unavailable."""
        from ..models.catalog import load_catalog

        return await load_catalog(self.settings, refresh=refresh)

    async def estimate_cost(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        schema: Any = None,
        model: str | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_reasks: int | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        reasoning: Any = None,
        provider: Provider | Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        plugins: Sequence[Plugin] | None = None,
        session_id: str | None = None,
    ) -> CostEstimate | None:
        """The lowest and highest price in USD (`decimal.Decimal`) of the `generate` call with these
        arguments, from the model catalog's prices, without sending it (see `openrouter_registry.models.pricing`).
        The request is the one `generate` would send first: ``tools`` (their definitions are prompt
        tokens) and ``reasoning`` (checked as `generate` checks it; reasoning tokens are output tokens,
        within the output bound) included. None when the catalog does not price the model. Raises
        `ContextLengthError` for a prompt that clearly cannot fit, and what `generate` raises for bad
        arguments. One call only: a `run_tools` loop costs up to this per round."""
        from ..models.pricing import estimate_call

        check_call_options(None, max_tokens, model, max_reasks)
        conversation = normalize_messages(prompt, messages)
        extra_body = self._request_fields(extra_body, provider, models, plugins, session_id)
        extra_body = self._tool_fields(extra_body, tools, tool_choice, parallel_tool_calls)[1]
        await self.load_catalog()
        resolution = self.resolve(model)
        extra_body = self._with_reasoning(extra_body, reasoning, resolution.generator, max_tokens)
        reasks = self.settings.max_reasks if max_reasks is None else max_reasks
        return self._contained(
            resolution,
            lambda generator: estimate_call(generator, conversation, schema, max_tokens, extra_body, reasks),
            "build_body",
        )[1]

    def _request_fields(
        self, extra_body: Mapping[str, Any] | None, provider: Provider | Mapping[str, Any] | None,
        models: Sequence[str] | None, plugins: Sequence[Plugin] | None, session_id: str | None,
    ) -> Mapping[str, Any] | None:
        """``extra_body`` with ``provider``, ``models``, ``plugins`` and the call's ``session_id`` (`_session`)
        in OpenRouter's shapes (`request_fields`); None at once when there is none of them."""
        if (
            extra_body is None and provider is None and models is None and plugins is None and session_id is None
            and self.settings.session_id is None
        ):
            return None  # what request_fields gives for no fields, without asking it
        return request_fields(extra_body, provider, models, plugins, self._session(session_id, extra_body))

    @staticmethod
    def _with_reasoning(
        extra_body: Mapping[str, Any] | None, reasoning: Any, generator: Generator, max_tokens: int | None
    ) -> Mapping[str, Any] | None:
        """``extra_body`` with ``reasoning`` checked for ``generator``'s model (`check_reasoning`); as is
        without one."""
        if reasoning is None:
            return extra_body
        return {**(extra_body or {}), "reasoning": _tooling().check_reasoning(reasoning, generator, max_tokens)}

    @staticmethod
    def _tool_fields(
        extra_body: Mapping[str, Any] | None, tools: Sequence[Any] | None, tool_choice: Any, parallel_tool_calls: bool | None
    ) -> tuple[tuple[Any, ...], Mapping[str, Any] | None]:
        """The call's checked tools, and ``extra_body`` with their request fields (``tools``,
        ``tool_choice``, ``parallel_tool_calls``) when any was given."""
        declared = _tooling().check_tools(tools) if tools is not None else ()
        if tools is not None or tool_choice is not None or parallel_tool_calls is not None:
            extra_body = {**(extra_body or {}), **_tooling().tool_request(declared, tool_choice, parallel_tool_calls)}
        return declared, extra_body

    def _session(self, session_id: str | None, extra_body: Mapping[str, Any] | None) -> str | None:
        """The call's ``session_id``: its own, else ``OPENROUTER_SESSION_ID`` (unless ``extra_body``
        carries one), so that OpenRouter's sticky routing keeps a conversation on the provider that
        holds its prompt cache."""
        if session_id is not None or self.settings.session_id is None:
            return session_id
        if isinstance(extra_body, Mapping) and "session_id" in extra_body:
            return None
        return self.settings.session_id

    def _watch(self, operation: str, model: Any, default: str, **options: Any) -> Watch | None:
        """The call's `Watch`, or None when nothing observes it (no ``on_event``, no plugin's
        ``on_event``, no OpenTelemetry provider): then the call costs what it cost before."""
        name = model if isinstance(model, str) and model else default
        return observe.watch(operation, name, self.settings, self.registry, self.on_event, **options)

    def _headers(self, resolution: Resolution) -> dict[str, str]:
        """The call's request headers (a dict of its own). Built once per settings while no plugin
        implements ``build_headers`` (they cannot differ from call to call then), else on every call."""
        settings, registry = self.settings, self.registry
        if registry.builds_headers:
            return with_authorization(registry.build_headers(resolution.model, settings, resolution), settings)
        plain = self._plain_headers
        if plain is None or plain[0] is not settings:
            headers = with_authorization(registry.build_headers(resolution.model, settings, resolution), settings)
            plain = self._plain_headers = (settings, headers)
        return dict(plain[1])

    def _contained(self, resolution: Resolution, build: Callable[[Generator], T], method: str) -> tuple[Resolution, T]:
        """``build(generator)`` by the first candidate whose generator method does not raise (see the
        module docstring); an `OpenRouterError` (e.g. `ContextLengthError`) is raised as is."""
        while True:
            try:
                return resolution, build(resolution.generator)
            except OpenRouterError:
                raise
            except Exception as exc:
                resolution = self.registry.fall_through(resolution, method, exc)

    @overload
    async def generate(
        self, prompt: str | None = None, *, schema: None = None, **options: Unpack[GenerateOptions]
    ) -> GenerationResult[str]: ...

    @overload
    async def generate(
        self, prompt: str | None = None, *, schema: type[T], **options: Unpack[GenerateOptions]
    ) -> GenerationResult[T]: ...

    @overload
    async def generate(
        self, prompt: str | None = None, *, schema: Mapping[str, Any], **options: Unpack[GenerateOptions]
    ) -> GenerationResult[Any]: ...

    async def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        schema: Any = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_reasks: int | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        reasoning: Any = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        provider: Provider | Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        plugins: Sequence[Plugin] | None = None,
        session_id: str | None = None,
    ) -> GenerationResult[Any]:
        """Generate a reply; with ``schema`` (JSON Schema dict, attrs class, dataclass or pydantic model)
        return validated data in ``content`` (``GenerationResult[YourClass]`` for a class), otherwise
        the text (``GenerationResult[str]``).

        Per call: ``model``, ``temperature``, ``max_tokens``, ``max_reasks``; ``timeout`` (seconds per
        attempt) and ``max_attempts`` override the service's settings; ``provider`` (a `Provider`),
        ``models`` (fallback model ids), ``plugins`` (`WebSearch`, `FileParser`, `ResponseHealing`) and
        ``session_id`` are sent in OpenRouter's shapes; ``extra_body`` passes any other request field.

        ``tools``: functions the model may call (OpenAI-style function dicts or Python callables, see
        `openrouter_registry.schemas.tools`), with ``tool_choice`` ("auto", "none", "required" or a tool's
        name) and ``parallel_tool_calls``. A reply that calls tools comes back with ``tool_calls`` (their
        arguments validated against the tool's parameters; invalid ones are re-asked like a structured
        reply) and ``finish_reason`` "tool_calls"; its ``content`` is the text (None with a schema).
        ``reasoning``: OpenRouter's ``{effort | max_tokens, exclude, enabled}``, checked against the
        model's catalog facts (see `openrouter_registry.models.reasoning`).

        Raises `MissingAPIKeyError` without a key, `ConfigurationError` (before any request) for a bad
        argument, naming it, a typed `APIError` for API failures (after retries), `StructuredOutputError`
        when no valid structure came back after ``max_reasks`` re-asks (default: the settings'
        ``max_reasks``), `TruncatedOutputError` for a reply cut off at ``max_tokens``.
        """
        if timeout is not None or max_attempts is not None:
            check_transport_options(timeout, max_attempts)
        watch = None if observe.unobserved(self.registry, self.on_event) else self._watch(
            "chat", model, self.settings.model, output_type="text" if schema is None else "json"
        )
        try:  # no cost when nothing is raised; observed, what leaves it is the call's error event and span
            fields = self._request_fields(extra_body, provider, models, plugins, session_id)
            call = await self._prepare(
                prompt, messages, schema, model,
                temperature=temperature, max_tokens=max_tokens, max_reasks=max_reasks, extra_body=fields,
                tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls, reasoning=reasoning,
                watch=watch,
            )
            call.timeout, call.max_attempts = timeout, max_attempts
            return await self._run(call, schema)
        except BaseException as error:
            if watch is not None:
                watch.ended(error)
            raise

    async def _run(self, call: _Call, schema: Any, *, reask_tools: bool = True) -> GenerationResult[Any]:
        """Steps 2 to 6 for a prepared call (`run_tools` calls it with ``reask_tools`` off: invalid tool
        arguments then go back to the model as that call's error)."""
        while True:
            reply = await self._send(call)
            if reply.parts.tool_calls and call.mode != "tools":
                reply = self._checked_calls(call, reply)
                errors = [error for tool_call in reply.tool_calls for error in tool_call.errors]
                if not errors or not reask_tools:
                    return self._result(call, reply, reply.text if call.json_schema is None else None)
                self._reask_tools(call, reply, errors)
                continue
            if call.json_schema is None:
                return self._result(call, reply, reply.text)
            self._refuse_truncated(call, reply)
            checked = await self._checked(call, reply, self._structured_text(call, reply))
            if isinstance(checked, _Parsed):
                try:
                    content = _late().structure(checked.data, schema)
                except StructuredOutputError as error:  # the class's own validators refused it: re-ask too
                    checked = list(error.errors) or [str(error)]
                    name = getattr(schema, "__name__", "the schema class")
                    self._reask(call, reply, checked, f"the model's reply does not fit {name} (its validators refused it)")
                    continue
                return self._result(call, reply, content, checked.parser)
            self._reask(call, reply, checked)

    # The steps of `generate`, in order. ``_Call`` carries one generation's state between them.

    async def _prepare(
        self,
        prompt: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        schema: Any,
        model: str | None,
        *,
        temperature: float | None,
        max_tokens: int | None,
        extra_body: Mapping[str, Any] | None,
        max_reasks: int | None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        reasoning: Any = None,
        watch: Watch | None = None,
    ) -> _Call:
        """Step 1: check every input (nothing is sent for bad input), resolve the generator, build the
        headers and pick the first structured mode (the one learned for this model and routing, if any)."""
        if not self.settings.api_key:  # `Settings.require_api_key`'s test, without taking the key's text out
            raise MissingAPIKeyError()
        check_call_options(temperature, max_tokens, model, max_reasks)
        conversation = normalize_messages(prompt, messages)
        late = _late()
        json_schema = late.to_json_schema(schema)
        if json_schema is not None and extra_body and "response_format" in extra_body:
            raise ConfigurationError(
                "extra_body['response_format'] and schema= both ask for the reply's shape: pass the JSON Schema "
                "as schema= (it picks the response_format per model and validates the reply), or drop schema="
            )
        declared, extra_body = self._tool_fields(extra_body, tools, tool_choice, parallel_tool_calls)
        if not late.catalog_settled(self.settings):
            await self.load_catalog()  # once per TTL; resolution then reads the model's catalog facts
        resolution = self.resolve(model)
        extra_body = self._with_reasoning(extra_body, reasoning, resolution.generator, max_tokens)
        call = _Call(
            resolution=resolution,
            headers={},
            conversation=conversation,
            json_schema=json_schema,
            modes=(None,),
            index=0,
            route=route_of(extra_body),
            reasks_left=self.settings.max_reasks if max_reasks is None else max_reasks,
            temperature=temperature,
            max_tokens=max_tokens,
            extra_body=extra_body,
            tools=declared,
            watch=watch,
        )
        self._serve(call, call.resolution)
        if watch is not None:
            resolution = call.resolution
            watch.prepared(
                generator=type(resolution.generator).__name__, plugin=resolution.plugin, mode=call.mode,
                max_tokens=max_tokens, temperature=temperature, extra_body=extra_body, conversation=conversation,
            )
        return call

    def _serve(self, call: _Call, resolution: Resolution) -> None:
        """Give ``call`` to ``resolution``'s generator: its structured modes (from the first mode learned
        for this model and routing, if any) and its headers. A ``facts`` that raises hands the call
        to the next candidate."""
        if call.json_schema is not None:
            try:  # `_contained`, without a closure for the usual generator, whose facts() does not raise
                modes = resolution.generator.facts().structured_modes
            except OpenRouterError:
                raise
            except Exception as exc:
                resolution, modes = self._contained(
                    self.registry.fall_through(resolution, "facts", exc), lambda g: g.facts().structured_modes, "facts"
                )
            if "tools" in modes and (call.json_schema.get("type") != "object" or "tools" in (call.extra_body or {})):
                modes = tuple(mode for mode in modes if mode != "tools")  # a non-object schema, or the caller's own tools
            learned = MODE_MEMORY.get(resolution.model, call.route, self.settings)
            call.modes, call.index = modes, modes.index(learned) if learned in modes else 0
        call.resolution = resolution
        call.headers = self._headers(resolution)

    async def _send(self, call: _Call) -> Reply:
        """Step 2: send the conversation in the current mode, falling back to the next structured mode
        (and remembering it) when the model refuses this one; decode the answer and add its usage and cost."""
        late = _late()
        watch = call.watch
        while True:
            try:
                body = call.generator.build_body(
                    call.conversation,
                    mode=call.mode or "prompt",
                    schema=call.json_schema,
                    max_tokens=call.max_tokens,
                    temperature=call.temperature,
                    extra_body=call.extra_body,
                )
            except OpenRouterError:
                raise
            except Exception as exc:  # plugin code: the next candidate serves (nothing was sent)
                self._serve(call, self.registry.fall_through(call.resolution, "build_body", exc))
                continue
            self.registry.generator_succeeded(call.resolution, "facts", "build_body")
            check, decoded = _kept(late.decode_chat_checked)  # post_json has checked for an error body
            if watch is not None:
                watch.request(call.mode)
            try:
                # the check: an unusable answer is retried like any other invalid response
                _, used = await self.transport.post_json(
                    "/chat/completions", body, call.headers, model=call.model, check=check,
                    on_retry=None if watch is None else watch.retry,
                    timeout=call.timeout, max_attempts=call.max_attempts,
                )
            except APIError as error:
                call.attempts += error.attempts
                refused = call.mode
                if watch is not None:
                    watch.request_failed(error)
                if self._fall_back(call, error, self.settings):
                    if watch is not None:
                        watch.fallback(refused, call.mode, error)
                    continue
                error.attempts = call.attempts
                raise
            call.attempts += used
            reply = decoded[-1]
            if reply.cost is None:  # no usage.cost: priced from the catalog
                try:
                    reply = late.priced(reply, call.generator)
                except Exception as exc:  # a plugin's facts(), after a billed request: the reply stays unpriced
                    self.registry.generator_failed(call.resolution, "facts", exc, "the reply is not priced from the catalog")
            call.usage = reply.usage if call.usage is _NO_USAGE else call.usage + reply.usage
            # the first reply's cost and source as they are (what add_costs and add_cost_sources give then)
            call.cost = reply.cost if call.cost is None else add_costs(call.cost, reply.cost)
            call.cost_source = reply.cost_source if call.cost_source is None else add_cost_sources(
                call.cost_source, reply.cost_source
            )
            if watch is not None:
                watch.replied(generation_id=reply.generation_id, provider=reply.provider, usage=reply.usage, cost=reply.cost)
                watch.spent(call.usage, call.cost)
            return reply

    @staticmethod
    def _fall_back(call: _Call, error: APIError, settings: Settings) -> bool:
        """Move ``call`` to the next structured mode when ``error`` refuses the current one."""
        mode = call.mode
        if mode is None or call.index + 1 >= len(call.modes) or not is_mode_refusal(error, mode):
            return False
        call.index += 1
        MODE_MEMORY.fall_back(call.model, mode, call.modes[call.index], call.route, settings)  # type: ignore[arg-type]
        return True

    @staticmethod
    def _refuse_truncated(call: _Call, reply: Reply) -> None:
        """Step 3: a structured reply cut off at max_tokens is not repaired or re-asked: raise."""
        if reply.finish_reason == "length":
            raise TruncatedOutputError(
                "the reply was cut off at max_tokens (finish_reason 'length') before the JSON was complete; "
                "raise max_tokens or ask for less",
                **call.spent(reply),
            )

    async def _checked(self, call: _Call, reply: Reply, text: str) -> _Parsed | list[str]:
        """Step 4, with the parse deadline: `_check_reply` through `off_loop_within` (a large reply is
        parsed on a worker thread: the event loop never stalls; every reply once a parser overran). A
        plugin parser that passes `PARSE_DEADLINE` is interrupted (or, blocked in C on the worker,
        abandoned) for this reply, accounted (``degraded``) and skipped: the chain runs again without
        it, down to the core's parser."""
        schema = call.json_schema
        assert schema is not None  # only structured calls are checked
        skip: frozenset[str] = frozenset()
        while True:
            running: list[tuple[str, float]] = []
            try:
                return await off_loop_within(PARSE_DEADLINE, len(text), functools.partial(
                    self._check_reply, call.resolution, text, call.mode or "prompt",
                    schema, reply.finish_reason, skip, running,
                ), running=running, spare=_SPARE, thread=self.registry.parses_off_loop)
            except ParseOverrun as overrun:
                hung = overrun.plugin or (running[-1][0] if running else None)
                if hung is None or hung in skip or hung == CORE_PLUGIN:
                    raise StructuredOutputError(
                        f"the reply could not be parsed within {PARSE_DEADLINE:g}s", **call.spent(reply)
                    ) from None
                self.registry.parse_overran(hung, call.model, PARSE_DEADLINE)
                skip = skip | {hung}

    def _check_reply(
        self, resolution: Resolution, text: str, mode: Mode, schema: Mapping[str, Any],
        finish_reason: str | None = None, skip: frozenset[str] = frozenset(),
        running: list[tuple[str, float]] | None = None,
    ) -> _Parsed | list[str]:
        """Step 4: parse (hook chain, without the parsers in ``skip``) and validate one reply: the data
        and the plugin whose parser produced it, or the errors to re-ask with. ``running`` receives each
        parser as it starts (see `_checked`). A ``finish_text`` that raises (plugin code, after a billed
        request) is logged as its plugin's failure and the raw text goes on to the parsers."""
        try:
            finished = resolution.generator.finish_text(text, mode, schema)
        except Exception as exc:
            if resolution.plugin == CORE_PLUGIN:
                raise
            self.registry.generator_failed(resolution, "finish_text", exc, "the raw reply text goes on to the parsers")
            finished = text
        parser, data = self.registry.parse_structured_by(resolution.model, finished, schema, skip=skip, running=running)
        errors = ["the reply holds no JSON value"] if data is None else validate(data, schema)
        if errors and finish_reason == "stop":  # the model said it was done: its missing closers may be a habit
            closed = _late().parse_unclosed(finished, schema)  # a value only when it validates
            return errors if closed is None else _Parsed(closed, CORE_PLUGIN)
        return errors if errors else _Parsed(data, parser)

    @staticmethod
    def _reask(
        call: _Call, reply: Reply, errors: list[str], message: str = "the model's reply does not match the schema"
    ) -> None:
        """Step 5: append the invalid reply and the validation errors (the schema's, or a schema class's
        own validators') to the conversation, or raise `StructuredOutputError` when no re-ask is left."""
        if call.reasks_left <= 0:
            raise StructuredOutputError(message, errors=errors, **call.spent(reply))
        call.reasks_left -= 1
        if call.watch is not None:
            call.watch.reask(errors)
        log.info("reply from %s did not validate (%s); asking again", call.model, "; ".join(errors[:3]))
        call.conversation = [
            *call.conversation,
            {"role": "assistant", "content": reask_excerpt(reply.text or "".join(c.arguments_text for c in reply.tool_calls))},
            {"role": "user", "content": reask_message(errors)},
        ]

    @staticmethod
    def _result(call: _Call, reply: Reply, content: Any, parser: str | None = None) -> GenerationResult[Any]:
        """Step 6: the result, with the usage and cost of every attempt."""
        mode, usage, resolution = call.mode, call.usage, call.resolution
        result: GenerationResult[Any] = GenerationResult(
            content=content,
            text=reply.text,
            model=reply.model or resolution.model,
            provider=reply.provider,
            generation_id=reply.generation_id,
            mode=mode,
            attempts=call.attempts,
            usage=usage,
            cost=call.cost,
            generator=type(resolution.generator).__name__,
            plugin=resolution.plugin,
            cost_source=call.cost_source,
            parser=parser,
            finish_reason=reply.finish_reason,
            cache_saving=_saving(call) if usage.cached_tokens or usage.cache_write_tokens else _NO_SAVING,
            parts=attrs.evolve(reply.parts, tool_calls=()) if mode == "tools" else reply.parts,
        )
        if call.watch is not None:
            call.watch.succeeded(
                response_model=result.model, provider=result.provider, generation_id=result.generation_id,
                usage=result.usage, cost=result.cost, cost_source=result.cost_source,
                finish_reason=reply.finish_reason, output=reply.text,
            )
        return result

    @staticmethod
    def _structured_text(call: _Call, reply: Reply) -> str:
        """The text to parse: the forced function call's arguments in the ``tools`` mode, else the reply."""
        if call.mode == "tools":
            if not reply.tool_calls:
                return reply.text  # a model that answered in text after all: parsed like the prompt mode
            return reply.tool_calls[0].arguments_text
        return reply.text

    @staticmethod
    def _checked_calls(call: _Call, reply: Reply) -> Reply:
        """``reply`` with each tool call's arguments validated against its declared tool's parameters.
        Tools sent only through ``extra_body`` are not known here: their calls come back unchecked."""
        if not call.tools:
            return reply
        by_name = {tool.name: tool for tool in call.tools}
        checked = []
        for tool_call in reply.tool_calls:
            tool = by_name.get(tool_call.name)
            if tool is None:
                errors = [f"{tool_call.name}: no tool of this name was declared ({', '.join(by_name) or 'none'})"]
            elif tool_call.arguments is None:
                errors = [f"{tool_call.name}: the arguments are not JSON: {reask_excerpt(tool_call.arguments_text)[:200]!r}"]
            else:
                errors = [f"{tool_call.name}: {error}" for error in validate(tool_call.arguments, tool.parameters)]
            checked.append(attrs.evolve(tool_call, errors=tuple(errors)) if errors else tool_call)
        return attrs.evolve(reply, parts=attrs.evolve(reply.parts, tool_calls=tuple(checked)))

    @staticmethod
    def _reask_tools(call: _Call, reply: Reply, errors: list[str]) -> None:
        """Step 5 for tool calls: give each call its errors back as its result and ask again, or raise
        `StructuredOutputError` when no re-ask is left."""
        if call.reasks_left <= 0:
            raise StructuredOutputError(
                "the model's tool call arguments do not match the tools' parameters", errors=errors, **call.spent(reply)
            )
        call.reasks_left -= 1
        log.info("tool calls from %s did not validate (%s); asking again", call.model, "; ".join(errors[:3]))
        from ..result import assistant_message_of, tool_message

        answers = [
            tool_message(
                tool_call,
                "error: invalid arguments: " + "; ".join(tool_call.errors) + ". Call it again with valid arguments."
                if tool_call.errors else "not run: another call of this turn had invalid arguments; call it again",
            )
            for tool_call in reply.tool_calls
        ]
        message = assistant_message_of(reply.message, reply.text, reply.tool_calls, reply.reasoning_details)
        call.conversation = [*call.conversation, message, *answers]

    # --- streaming --------------------------------------------------------------------------------

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        reasoning: Any = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        provider: Provider | Mapping[str, Any] | None = None,
        models: Sequence[str] | None = None,
        plugins: Sequence[Plugin] | None = None,
        session_id: str | None = None,
    ) -> TextStream:
        """Stream a text reply: ``async for delta in service.stream(...)``, or every part of it with
        ``async for event in service.stream(...).events()``. After the loop the stream object holds
        ``text``, ``usage``, ``cost``, ``model``, ``provider``, ``generation_id``, ``finish_reason``,
        ``tool_calls``, ``reasoning``, ``reasoning_details`` and ``attempts``. ``tools``, ``tool_choice``,
        ``parallel_tool_calls`` and ``reasoning`` as for `generate`. An error that arrives mid-stream
        raises its typed error; the text received before it stays in ``text`` and ``finish_reason``
        becomes ``"error"``. Takes the options of `generate` (no ``schema``, no ``max_reasks``);
        ``timeout`` and ``max_attempts`` bound opening the stream."""
        self.settings.require_api_key()
        check_call_options(temperature, max_tokens, model)
        check_transport_options(timeout, max_attempts)
        conversation = normalize_messages(prompt, messages)
        extra_body = self._request_fields(extra_body, provider, models, plugins, session_id)
        declared = _tooling().check_tools(tools) if tools is not None else ()
        if tools is not None or tool_choice is not None or parallel_tool_calls is not None:
            extra_body = {**(extra_body or {}), **_tooling().tool_request(declared, tool_choice, parallel_tool_calls)}
        resolution = self.resolve(model)
        extra_body = self._with_reasoning(extra_body, reasoning, resolution.generator, max_tokens)
        resolution, body = self._contained(
            resolution,
            lambda generator: generator.build_body(
                conversation, mode="prompt", max_tokens=max_tokens, temperature=temperature, extra_body=extra_body,
                stream=True,
            ),
            "build_body",
        )
        return TextStream(self, resolution, body, self._headers(resolution), limits=(timeout, max_attempts))

    # --- embeddings -------------------------------------------------------------------------------

    @property
    def embedding_dimensions(self) -> int | None:
        """The configured (or known) vector size of the embedder model, or None when unknown."""
        return self.settings.embedder_dimensions or _KNOWN_DIMENSIONS.get(self.settings.embedder_model)

    async def embed(
        self,
        texts: str | Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> EmbeddingResult:
        """Embed ``texts`` with ``model`` (default ``OPENROUTER_EMBEDDER_MODEL``); vectors come back in
        order (``result.vectors``; ``len(result)`` and ``result[i]`` work on the result too).
        ``timeout`` and ``max_attempts`` override the service's settings for this call."""
        watch = self._watch("embeddings", model, self.settings.embedder_model)
        try:
            return await self._embed(texts, model, dimensions, watch, timeout, max_attempts)
        except BaseException as error:
            if watch is not None:
                watch.ended(error)
            raise

    async def _embed(
        self, texts: str | Sequence[str], model: str | None, dimensions: int | None, watch: Watch | None,
        timeout: float | None = None, max_attempts: int | None = None,
    ) -> EmbeddingResult:
        """`embed`'s steps (observed by ``watch`` when something observes the call)."""
        from ..replies.decode import EmbeddingReply, decode_embeddings
        from ..errors import InvalidResponseError

        self.settings.require_api_key()
        check_transport_options(timeout, max_attempts)
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or not all(isinstance(t, str) for t in items):
            raise ConfigurationError("embed() takes a string or a non-empty list of strings")
        for index, text in enumerate(items):
            check_text(text, f"texts[{index}]")
        if model is not None and (not isinstance(model, str) or not is_model_id(model)):
            raise ConfigurationError(f"model must be a model id such as 'openai/text-embedding-3-large', got {model!r}")
        if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        model_id = model or self.settings.embedder_model
        body: dict[str, Any] = {"model": model_id, "input": items}
        # OPENROUTER_EMBEDDER_DIMENSIONS belongs to OPENROUTER_EMBEDDER_MODEL, not to another model named here
        size = dimensions or (self.settings.embedder_dimensions if model_id == self.settings.embedder_model else None)
        if size:
            body["dimensions"] = size

        def decode(data: Any) -> EmbeddingReply:
            # One vector per input, or the answer is unusable (and, like an empty one, worth retrying):
            # returning fewer vectors would silently pair texts with the wrong vectors.
            reply = decode_embeddings(data)
            if len(reply.vectors) != len(items):
                raise InvalidResponseError(
                    f"Invalid upstream response: {len(reply.vectors)} embeddings for {len(items)} inputs",
                    model=reply.model or model_id,
                    generation_id=reply.generation_id,
                    provider=reply.provider,
                )
            return reply

        check, decoded = _kept(decode)
        headers = self._headers(self.resolve(model_id))
        if watch is not None:
            watch.embedded_inputs(items)
            watch.request()
        try:
            _, attempts = await self.transport.post_json(
                "/embeddings", body, headers, model=model_id, check=check,
                on_retry=None if watch is None else watch.retry, timeout=timeout, max_attempts=max_attempts,
            )
        except APIError as error:
            if watch is not None:
                watch.request_failed(error)
            raise
        reply = decoded[-1]
        if watch is not None:
            watch.replied(generation_id=reply.generation_id, provider=reply.provider, usage=reply.usage, cost=reply.cost)
            watch.succeeded(
                response_model=reply.model or model_id, provider=reply.provider, generation_id=reply.generation_id,
                usage=reply.usage, cost=reply.cost, cost_source="api" if reply.cost is not None else None,
            )
        return EmbeddingResult(
            vectors=reply.vectors,
            model=reply.model or model_id,
            provider=reply.provider,
            generation_id=reply.generation_id,
            usage=reply.usage,
            cost=reply.cost,
            attempts=attempts,
        )

@attrs.frozen
class _Parsed:
    data: Any
    #: the plugin whose ``parse_structured`` produced ``data`` (the core's name for its own parsers)
    parser: str | None = None


_NO_SAVING = Decimal(0)


def _saving(call: _Call) -> Decimal | None:
    """What caching saved on the call's usage, from its model's catalog prices: 0 when nothing was read
    from or written to the cache; None without catalog prices, or when a plugin's ``facts`` raises (the
    reply is already billed: the result is not withheld for it)."""
    if not call.usage.cached_tokens and not call.usage.cache_write_tokens:
        return _NO_SAVING
    try:
        pricing = call.generator.facts().pricing
    except Exception:
        return None
    return _late().cache_saving(pricing, call.usage)


#: A call's usage before its first reply (Usage is frozen: one shared zero).
_NO_USAGE = Usage()


@attrs.define
class _Call:
    """One generation's state between the steps of `Engine.generate`."""

    resolution: Resolution
    headers: dict[str, str]
    conversation: list[dict[str, Any]]
    json_schema: dict[str, Any] | None
    modes: tuple[Mode | None, ...]
    index: int
    route: str
    reasks_left: int
    temperature: float | None
    max_tokens: int | None
    extra_body: Mapping[str, Any] | None
    tools: tuple[Tool, ...] = ()
    timeout: float | None = None
    max_attempts: int | None = None
    attempts: int = 0
    usage: Usage = _NO_USAGE
    cost: Decimal | None = None
    cost_source: CostSource | None = None
    watch: Watch | None = None

    @property
    def generator(self) -> Generator:
        return self.resolution.generator

    @property
    def model(self) -> str:
        return self.resolution.model

    @property
    def mode(self) -> Mode | None:
        return self.modes[self.index]

    def spent(self, reply: Reply) -> dict[str, Any]:
        """The keyword arguments every `StructuredOutputError` of this call carries."""
        return {
            "text": reply.text,
            "model": reply.model or self.model,
            "generation_id": reply.generation_id,
            "usage": self.usage,
            "cost": self.cost,
            "attempts": self.attempts,
        }


_THINK_TAG, _THINK_END = "<think>", "</think>"


class TextStream:
    """An async iterator of text deltas; after iteration, the totals of the reply.

    `events` iterates the same stream as typed events instead (text and reasoning deltas, tool calls
    started, their argument pieces and finished, usage). A stream is iterated once, either way."""

    def __init__(
        self,
        service: Engine,
        resolution: Resolution,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        limits: tuple[float | None, int | None] = (None, None),
    ):
        self._service, self._resolution, self._body, self._headers = service, resolution, body, headers
        self._timeout, self._max_attempts = limits
        self.text = ""
        self.usage = Usage()
        self.cost: Decimal | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.generation_id: str | None = None
        self.finish_reason: str | None = None
        #: The tool calls of the reply, assembled from their fragments by index (after iteration).
        self.tool_calls: tuple[ToolCall, ...] = ()
        #: The reasoning text (the ``delta.reasoning`` pieces joined), or None.
        self.reasoning: str | None = None
        #: The ``delta.reasoning_details`` entries in the order received.
        self.reasoning_details: tuple[Mapping[str, Any], ...] = ()
        self.annotations: tuple[Mapping[str, Any], ...] = ()
        self.images: tuple[Mapping[str, Any], ...] = ()
        #: HTTP requests it took to open the stream (retries included); set once the stream answered.
        self.attempts = 0
        self._started = False
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument pieces]
        self._think: str | None = ""
        self._held = ""
        self._think_delta = ""

    def __aiter__(self) -> AsyncIterator[str]:
        self._start()
        return self._deltas()

    def events(self) -> AsyncIterator[StreamEvent]:
        """The stream as typed events, in order: `TextDelta`, `ReasoningDelta`, `ToolCallStarted`,
        `ToolCallArgumentsDelta`, `ToolCallFinished` (once the reply ends, for each call by index) and
        `UsageReport`."""
        self._start()
        return self._events()

    def _start(self) -> None:
        if self._started:
            raise RuntimeError("a TextStream can be iterated only once")
        self._started = True

    async def _deltas(self) -> AsyncIterator[str]:
        async for event in self._events(text_only=True):
            yield event.text  # type: ignore[union-attr]

    async def _events(self, text_only: bool = False) -> AsyncIterator[StreamEvent]:
        from ..replies.decode import decode_chunk

        model = self._resolution.model
        service = self._service
        watch = service._watch("chat", model, model, stream=True, output_type="text", current=False)
        try:  # observed: an error (or the consumer stopping early) ends the call's span and events
            if watch is not None:
                body = self._body
                watch.prepared(
                    generator=type(self._resolution.generator).__name__, plugin=self._resolution.plugin, mode=None,
                    max_tokens=body.get("max_tokens"), temperature=body.get("temperature"), extra_body=body,
                    conversation=body.get("messages"),
                )
                watch.request()
            handle = self._service.transport.stream_data(
                "/chat/completions", self._body, self._headers, model=model, on_retry=None if watch is None else watch.retry,
                timeout=self._timeout, max_attempts=self._max_attempts,
            )
            # ``async with``: a consumer that stops early (break, an exception in its loop body) gives the
            # connection back as soon as this generator is closed, not whenever the GC gets to it.
            async with handle:
                try:
                    async for raw in handle:
                        self.attempts = handle.attempts
                        chunk = decode_chunk(raw)
                        self.model = chunk.model or self.model
                        self.provider = chunk.provider or self.provider
                        self.generation_id = chunk.generation_id or self.generation_id
                        self.finish_reason = chunk.finish_reason or self.finish_reason
                        if chunk.cost is not None:
                            self.cost = chunk.cost
                        if chunk.text:
                            text = chunk.text if self._think is None else self._unthink(chunk.text)
                            if self._think_delta and not text_only:  # the block's reasoning, before the text after it
                                yield self._reasoning_delta()
                            if text:
                                self.text += text
                                yield TextDelta(text)
                        if chunk.reasoning or chunk.tool_calls or chunk.reasoning_details or chunk.annotations or chunk.images:
                            for event in self._extras(chunk):
                                if not text_only:
                                    yield event
                        if chunk.finish_reason is not None and self._calls:
                            for finished in self._finish():  # the calls are whole: before the usage
                                if not text_only:
                                    yield finished
                        if chunk.usage is not None:
                            self.usage = chunk.usage
                            if not text_only:
                                yield UsageReport(chunk.usage, chunk.cost)
                    self.attempts = handle.attempts  # a stream of no data event (only ``[DONE]``) answered too
                    rest = self._end_think()
                    if self._think_delta and not text_only:
                        yield self._reasoning_delta()
                    if rest:
                        self.text += rest
                        yield TextDelta(rest)
                    for finished in self._finish():
                        if not text_only:
                            yield finished
                except APIError as error:
                    self.attempts = error.attempts
                    if handle.status is not None:  # the stream was open: the provider failed mid-reply
                        self.finish_reason = "error"
                    usage = handle.error_chunk.get("usage") if handle.error_chunk is not None else None
                    if isinstance(usage, MAPPING):  # what the failed reply was billed
                        self.usage, self.cost = Usage.from_api(usage), cost_from_api(usage)
                    self._finish()
                    if watch is not None:
                        watch.spent(self.usage, self.cost)
                        watch.request_failed(error)
                    raise
            if watch is not None:
                watch.replied(generation_id=self.generation_id, provider=self.provider, usage=self.usage, cost=self.cost)
                watch.succeeded(
                    response_model=self.model or model, provider=self.provider, generation_id=self.generation_id,
                    usage=self.usage, cost=self.cost, cost_source="api" if self.cost is not None else None,
                    finish_reason=self.finish_reason, output=self.text,
                )
        except BaseException as error:
            if watch is not None:
                watch.ended(error)
            raise

    # A ``<think>`` block at the start of the content (no reasoning field) goes to `reasoning`, as in
    # `GenerationResult`. ``_think``: "" before any content (deciding), "in" inside the block, None after
    # it or when there is none; ``_held`` the content not yet sent while deciding or near ``</think>``.

    def _unthink(self, piece: str) -> str:
        """The text of ``piece`` to yield; its reasoning part goes to `_think_delta`."""
        held = self._held + piece
        if self._think == "":
            start = held.lstrip()
            if not start or _THINK_TAG.startswith(start):
                self._held = held  # still maybe "<think>"
                return ""
            if not start.startswith(_THINK_TAG):
                self._think, self._held = None, ""
                return held
            self._think, held = "in", start[len(_THINK_TAG):]
        end = held.find(_THINK_END)
        if end < 0:
            keep = len(_THINK_END) - 1  # the end of the text may be the start of "</think>"
            self._take_reasoning(held[:-keep] if len(held) > keep else "")
            self._held = held[-keep:] if len(held) > keep else held
            return ""
        self._take_reasoning(held[:end])
        self._think, self._held = None, ""
        return held[end + len(_THINK_END):].lstrip()

    def _reasoning_delta(self) -> ReasoningDelta:
        delta, self._think_delta = self._think_delta, ""
        return ReasoningDelta(delta)

    def _take_reasoning(self, text: str) -> None:
        if text:
            self.reasoning = (self.reasoning or "") + text
            self._think_delta += text

    def _end_think(self) -> str:
        """At the end of the stream: held text that never became a ``<think>`` block is text; a block cut
        off before ``</think>`` is all reasoning. A reasoning field's own ``<think>`` tags are taken off."""
        held, self._held = self._held, ""
        if self._think == "in":
            self._take_reasoning(held)
            held = ""
        self._think = None
        if self.reasoning is not None:
            from ..replies.decode import split_think

            self.reasoning = split_think("", self.reasoning)[1]
        return held

    def _extras(self, chunk: Any) -> list[StreamEvent]:
        """Take in a chunk's reasoning, tool call fragments and the rest; the events they make."""
        events: list[StreamEvent] = []
        if chunk.reasoning:
            if self._think == "":
                self._think = None  # a reasoning field: the content is left alone
            self.reasoning = (self.reasoning or "") + chunk.reasoning
            events.append(ReasoningDelta(chunk.reasoning))
        if chunk.reasoning_details:
            self.reasoning_details += chunk.reasoning_details
        self.annotations += chunk.annotations
        self.images += chunk.images
        for fragment in chunk.tool_calls:
            held = self._calls.get(fragment.index)
            if held is None:
                held = self._calls[fragment.index] = [fragment.id, fragment.name, []]
                if fragment.name is not None:
                    events.append(ToolCallStarted(fragment.index, fragment.id, fragment.name))
            else:
                if held[0] is None and fragment.id is not None:
                    held[0] = fragment.id
                if held[1] is None and fragment.name is not None:
                    held[1] = fragment.name
                    events.append(ToolCallStarted(fragment.index, held[0], fragment.name))
            if fragment.arguments:
                held[2].append(fragment.arguments)
                events.append(ToolCallArgumentsDelta(fragment.index, fragment.arguments))
        return events

    def _finish(self) -> list[StreamEvent]:
        """Assemble the tool calls by index once the stream ended; their `ToolCallFinished` events."""
        from ..replies.decode import parse_arguments

        if not self._calls:
            return []
        events: list[StreamEvent] = []
        calls = []
        for index in sorted(self._calls):
            call_id, name, pieces = self._calls[index]
            text = "".join(pieces)
            if text.startswith("{}") and len(text) > 2 and text.lstrip("{}").strip() == "":
                text = "{}"  # a tool without parameters: "" then "{}", sometimes "{}" twice
            call = ToolCall(call_id or f"call_{index}", name or "", parse_arguments(text), text)
            calls.append(call)
            events.append(ToolCallFinished(index, call))
        self._calls = {}
        self.tool_calls = tuple(calls)
        if self.finish_reason in (None, "stop"):
            self.finish_reason = "tool_calls"
        return events

    def assistant_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation (after iteration), like
        `GenerationResult.assistant_message`."""
        from ..result import assistant_message_of

        return assistant_message_of(None, self.text, self.tool_calls, self.reasoning_details)

    async def collect(self) -> str:
        """Consume the stream and return the whole text."""
        async for _ in self:
            pass
        return self.text


@attrs.frozen
class TextDelta:
    """A piece of the reply's text."""

    text: str


@attrs.frozen
class ReasoningDelta:
    """A piece of the model's reasoning text."""

    text: str


@attrs.frozen
class ToolCallStarted:
    """The model began the tool call at ``index`` (its ``id`` as the provider gave it, or None)."""

    index: int
    id: str | None
    name: str


@attrs.frozen
class ToolCallArgumentsDelta:
    """A piece of the JSON arguments of the tool call at ``index``."""

    index: int
    text: str


@attrs.frozen
class ToolCallFinished:
    """The tool call at ``index``, whole (sent when the reply ended)."""

    index: int
    call: ToolCall


@attrs.frozen
class UsageReport:
    """The reply's token counts and cost (the stream's usage chunk)."""

    usage: Usage
    cost: Decimal | None


StreamEvent = TextDelta | ReasoningDelta | ToolCallStarted | ToolCallArgumentsDelta | ToolCallFinished | UsageReport
