"""`Engine`: one generation through every stage, in one direction, each step a named method.

settings -> registry.resolve (generator) -> generator.build_body for the current mode ->
build_headers hook (+ Authorization last) -> transport (pooled client, retries, typed errors) ->
decode -> parse_structured chain -> schema validation -> `GenerationResult` with usage and cost,
or a re-ask / mode fallback that loops back to the request step. `stream` and `embed` share the
resolution, headers and transport.

The app-facing class is `openrouter_registry.OpenRouterService`, this engine plus the adapters that
sit above it (``service.batch(...)``, Parlant's ``p.Server(nlp_service=service)``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeVar

import attrs

from ..schemas.fastjson import MAPPING
from ..errors import APIError, ConfigurationError, StructuredOutputError, TruncatedOutputError
from ..models.generator import Generator, Mode
from ..http.headers import with_authorization
from ..schemas.inputs import check_call_options, check_extra_body, check_text, json_copy
from ..models.modes import MODE_MEMORY, is_mode_refusal, route_of
from ..replies.offload import ParseOverrun, off_loop_within
from ..plugins.registry import CORE_PLUGIN, PARSE_DEADLINE, Registry, Resolution, get_registry
from ..result import CostSource, EmbeddingResult, GenerationResult, Reply, Usage, add_cost_sources, add_costs, cost_from_api
from ..settings import Settings, is_model_id
from ..schemas.validation import validate

if TYPE_CHECKING:
    from ..models.catalog import Catalog
    from ..models.pricing import CostEstimate
    from ..http.transport import Transport

__all__ = ["Engine", "TextStream", "normalize_messages", "reask_message", "reask_excerpt", "REASK_EXCERPT_CHARS"]

log = logging.getLogger("openrouter_registry")

T = TypeVar("T")

_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})
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
        if not isinstance(message, MAPPING) or message.get("role") not in _ROLES or "content" not in message:
            raise ConfigurationError(
                f"messages[{i}] must be a dict with 'role' (one of {', '.join(sorted(_ROLES))}) and 'content'"
            )
        content = message["content"]
        if not (content is None or isinstance(content, str) or _is_parts(content)):
            raise ConfigurationError(
                f"messages[{i}].content must be a string, null or a list of content parts "
                f"({{'type': 'text', 'text': ...}}), got {type(content).__name__}"
            )
        out.append(json_copy(message, f"messages[{i}]"))
    return out


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


@functools.cache
def _late() -> _Late:
    """`_Late`, imported on the first call (an import statement in a hot function costs microseconds
    on every call; this costs a cached function call)."""
    from ..models.catalog import settled
    from ..replies.decode import decode_chat_checked
    from ..models.pricing import priced
    from ..schemas.schema import structure, to_json_schema
    from ..replies.structured import parse_unclosed

    return _Late(to_json_schema, decode_chat_checked, priced, parse_unclosed, structure, settled)


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
    ) -> None:
        self.registry = registry or get_registry()
        self.settings = settings or self.registry.default_settings()
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.settings.model!r}, base_url={self.settings.base_url!r})"

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
    ) -> CostEstimate | None:
        """The lowest and highest price in USD (`decimal.Decimal`) of the `generate` call with these
        arguments, from the model catalog's prices, without sending it (see `openrouter_registry.models.pricing`).
        None when the catalog does not price the model. Raises `ContextLengthError` for a prompt that
        clearly cannot fit, and what `generate` raises for bad arguments."""
        from ..models.pricing import estimate_call

        check_call_options(None, max_tokens, model, max_reasks)
        conversation = normalize_messages(prompt, messages)
        extra_body = check_extra_body(extra_body)
        await self.load_catalog()
        reasks = self.settings.max_reasks if max_reasks is None else max_reasks
        return estimate_call(self.resolve(model).generator, conversation, schema, max_tokens, extra_body, reasks)

    def _headers(self, model: str) -> dict[str, str]:
        return with_authorization(self.registry.build_headers(model, self.settings), self.settings)

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
    ) -> GenerationResult[Any]:
        """Generate a reply; with ``schema`` (JSON Schema dict, attrs class, dataclass or pydantic model)
        return validated data in ``content``, otherwise the text.

        Raises `MissingAPIKeyError` without a key, `ConfigurationError` (before any request) for a bad
        argument, naming it, a typed `APIError` for API failures (after retries), `StructuredOutputError` when no valid structure came back after ``max_reasks``
        re-asks (default: the settings' ``max_reasks``), `TruncatedOutputError` for a reply cut off at
        ``max_tokens``.
        """
        call = await self._prepare(
            prompt, messages, schema, model,
            temperature=temperature, max_tokens=max_tokens, extra_body=extra_body, max_reasks=max_reasks,
        )
        while True:
            reply = await self._send(call)
            if call.json_schema is None:
                return self._result(call, reply, reply.text)
            self._refuse_truncated(call, reply)
            checked = await self._checked(call, reply)
            if isinstance(checked, _Parsed):
                return self._result(call, reply, _late().structure(checked.data, schema))
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
    ) -> _Call:
        """Step 1: check every input (nothing is sent for bad input), resolve the generator, build the
        headers and pick the first structured mode (the one learned for this model and routing, if any)."""
        self.settings.require_api_key()
        check_call_options(temperature, max_tokens, model, max_reasks)
        conversation = normalize_messages(prompt, messages)
        extra_body = check_extra_body(extra_body)
        late = _late()
        json_schema = late.to_json_schema(schema)
        if not late.catalog_settled(self.settings):
            await self.load_catalog()  # once per TTL; resolution then reads the model's catalog facts
        resolution = self.resolve(model)
        model_id = resolution.model
        modes: tuple[Mode | None, ...] = (
            resolution.generator.facts().structured_modes if json_schema is not None else (None,)
        )
        route = route_of(extra_body)
        learned = MODE_MEMORY.get(model_id, route, self.settings) if json_schema is not None else None
        return _Call(
            resolution=resolution,
            headers=self._headers(model_id),
            conversation=conversation,
            json_schema=json_schema,
            modes=modes,
            index=modes.index(learned) if learned in modes else 0,
            route=route,
            reasks_left=self.settings.max_reasks if max_reasks is None else max_reasks,
            temperature=temperature,
            max_tokens=max_tokens,
            extra_body=extra_body,
        )

    async def _send(self, call: _Call) -> Reply:
        """Step 2: send the conversation in the current mode, falling back to the next structured mode
        (and remembering it) when the model refuses this one; decode the answer and add its usage and cost."""
        late = _late()
        while True:
            body = call.generator.build_body(
                call.conversation,
                mode=call.mode or "prompt",
                schema=call.json_schema,
                max_tokens=call.max_tokens,
                temperature=call.temperature,
                extra_body=call.extra_body,
            )
            check, decoded = _kept(late.decode_chat_checked)  # post_json has checked for an error body
            try:
                # the check: an unusable answer is retried like any other invalid response
                _, used = await self.transport.post_json(
                    "/chat/completions", body, call.headers, model=call.model, check=check
                )
            except APIError as error:
                call.attempts += error.attempts
                if self._fall_back(call, error, self.settings):
                    continue
                error.attempts = call.attempts
                raise
            call.attempts += used
            reply = late.priced(decoded[-1], call.generator)  # no usage.cost: priced from the catalog
            call.usage = reply.usage if call.usage is _NO_USAGE else call.usage + reply.usage
            call.cost = add_costs(call.cost, reply.cost)
            call.cost_source = add_cost_sources(call.cost_source, reply.cost_source)
            return reply

    @staticmethod
    def _fall_back(call: _Call, error: APIError, settings: Settings) -> bool:
        """Move ``call`` to the next structured mode when ``error`` refuses the current one."""
        mode = call.mode
        if mode is None or call.index + 1 >= len(call.modes) or not is_mode_refusal(error):
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

    async def _checked(self, call: _Call, reply: Reply) -> _Parsed | list[str]:
        """Step 4, with the parse deadline: `_check_reply` through `off_loop_within` (a large reply is
        parsed on a worker thread: the event loop never stalls). A plugin parser that passes
        `PARSE_DEADLINE` is abandoned for this reply, accounted (``degraded``) and skipped: the chain
        runs again without it, down to the core's parser."""
        schema = call.json_schema
        assert schema is not None  # only structured calls are checked
        skip: frozenset[str] = frozenset()
        while True:
            running: list[tuple[str, float]] = []
            try:
                return await off_loop_within(PARSE_DEADLINE, len(reply.text), functools.partial(
                    self._check_reply, call.generator, call.model, reply.text, call.mode or "prompt",
                    schema, reply.finish_reason, skip, running,
                ))
            except ParseOverrun:
                hung = running[-1][0] if running else None
                if hung is None or hung in skip or hung == CORE_PLUGIN:
                    raise StructuredOutputError(
                        f"the reply could not be parsed within {PARSE_DEADLINE:g}s", **call.spent(reply)
                    ) from None
                self.registry.parse_overran(hung, call.model, PARSE_DEADLINE)
                skip = skip | {hung}

    def _check_reply(
        self, generator: Generator, model: str, text: str, mode: Mode, schema: Mapping[str, Any],
        finish_reason: str | None = None, skip: frozenset[str] = frozenset(),
        running: list[tuple[str, float]] | None = None,
    ) -> _Parsed | list[str]:
        """Step 4: parse (hook chain, without the parsers in ``skip``) and validate one reply: the data,
        or the errors to re-ask with. ``running`` receives each parser as it starts (see `_checked`)."""
        finished = generator.finish_text(text, mode, schema)
        data = self.registry.parse_structured(model, finished, schema, skip=skip, running=running)
        errors = ["the reply holds no JSON value"] if data is None else validate(data, schema)
        if errors and finish_reason == "stop":  # the model said it was done: its missing closers may be a habit
            closed = _late().parse_unclosed(finished, schema)  # a value only when it validates
            return errors if closed is None else _Parsed(closed)
        return errors if errors else _Parsed(data)

    @staticmethod
    def _reask(call: _Call, reply: Reply, errors: list[str]) -> None:
        """Step 5: append the invalid reply and the validation errors to the conversation, or raise
        `StructuredOutputError` when no re-ask is left."""
        if call.reasks_left <= 0:
            raise StructuredOutputError("the model's reply does not match the schema", errors=errors, **call.spent(reply))
        call.reasks_left -= 1
        log.info("reply from %s did not validate (%s); asking again", call.model, "; ".join(errors[:3]))
        call.conversation = [
            *call.conversation,
            {"role": "assistant", "content": reask_excerpt(reply.text)},
            {"role": "user", "content": reask_message(errors)},
        ]

    @staticmethod
    def _result(call: _Call, reply: Reply, content: Any) -> GenerationResult[Any]:
        """Step 6: the result, with the usage and cost of every attempt."""
        return GenerationResult(
            content=content,
            text=reply.text,
            model=reply.model or call.model,
            provider=reply.provider,
            generation_id=reply.generation_id,
            mode=call.mode,
            attempts=call.attempts,
            usage=call.usage,
            cost=call.cost,
            generator=type(call.generator).__name__,
            plugin=call.resolution.plugin,
            cost_source=call.cost_source,
        )

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
    ) -> TextStream:
        """Stream a text reply: ``async for delta in service.stream(...)``. After the loop the stream
        object holds ``text``, ``usage``, ``cost``, ``model``, ``provider``, ``generation_id``,
        ``finish_reason`` and ``attempts``. An error that arrives mid-stream raises its typed error;
        the text received before it stays in ``text`` and ``finish_reason`` becomes ``"error"``."""
        self.settings.require_api_key()
        check_call_options(temperature, max_tokens, model)
        conversation = normalize_messages(prompt, messages)
        extra_body = check_extra_body(extra_body)
        resolution = self.resolve(model)
        body = resolution.generator.build_body(
            conversation, mode="prompt", max_tokens=max_tokens, temperature=temperature, extra_body=extra_body,
            stream=True,
        )
        return TextStream(self, resolution, body, self._headers(resolution.model))

    # --- embeddings -------------------------------------------------------------------------------

    @property
    def embedding_dimensions(self) -> int | None:
        """The configured (or known) vector size of the embedder model, or None when unknown."""
        return self.settings.embedder_dimensions or _KNOWN_DIMENSIONS.get(self.settings.embedder_model)

    async def embed(
        self, texts: str | Sequence[str], *, model: str | None = None, dimensions: int | None = None
    ) -> EmbeddingResult:
        """Embed ``texts`` with ``model`` (default ``OPENROUTER_EMBEDDER_MODEL``); vectors come back in order."""
        from ..replies.decode import EmbeddingReply, decode_embeddings
        from ..errors import InvalidResponseError

        self.settings.require_api_key()
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
        _, attempts = await self.transport.post_json(
            "/embeddings", body, self._headers(model_id), model=model_id, check=check
        )
        reply = decoded[-1]
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
    attempts: int = 0
    usage: Usage = _NO_USAGE
    cost: float | None = None
    cost_source: CostSource | None = None

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


class TextStream:
    """An async iterator of text deltas; after iteration, the totals of the reply."""

    def __init__(self, service: Engine, resolution: Resolution, body: dict[str, Any], headers: dict[str, str]):
        self._service, self._resolution, self._body, self._headers = service, resolution, body, headers
        self.text = ""
        self.usage = Usage()
        self.cost: float | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.generation_id: str | None = None
        self.finish_reason: str | None = None
        #: HTTP requests it took to open the stream (retries included); set once the stream answered.
        self.attempts = 0
        self._started = False

    def __aiter__(self) -> AsyncIterator[str]:
        if self._started:
            raise RuntimeError("a TextStream can be iterated only once")
        self._started = True
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[str]:
        from ..replies.decode import decode_chunk

        model = self._resolution.model
        handle = self._service.transport.stream_data("/chat/completions", self._body, self._headers, model=model)
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
                    if chunk.usage is not None:
                        self.usage = chunk.usage
                    if chunk.cost is not None:
                        self.cost = chunk.cost
                    if chunk.text:
                        self.text += chunk.text
                        yield chunk.text
            except APIError as error:
                self.attempts = error.attempts
                if handle.status is not None:  # the stream was open: the provider failed mid-reply
                    self.finish_reason = "error"
                usage = handle.error_chunk.get("usage") if handle.error_chunk is not None else None
                if isinstance(usage, MAPPING):  # what the failed reply was billed
                    self.usage, self.cost = Usage.from_api(usage), cost_from_api(usage)
                raise

    async def collect(self) -> str:
        """Consume the stream and return the whole text."""
        async for _ in self:
            pass
        return self.text
