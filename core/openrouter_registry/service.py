"""`OpenRouterService`: the whole generation path, in one direction.

settings -> registry.resolve (generator) -> generator.build_body for the current mode ->
build_headers hook (+ Authorization last) -> transport (pooled client, retries, typed errors) ->
decode -> parse_structured chain -> schema validation -> `GenerationResult` with usage and cost,
or a re-ask / mode fallback that loops back to the request step.

    from openrouter_registry import NLPServices

    async with NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet") as service:
        result = await service.generate("Extract the city from: ...", schema=CITY_SCHEMA)
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from .errors import APIError, ConfigurationError, StructuredOutputError, TruncatedOutputError
from .generator import Generator, Mode
from .headers import with_authorization
from .modes import MODE_MEMORY, is_mode_refusal, route_of
from .registry import Registry, Resolution, get_registry
from .result import GenerationResult, Usage, add_costs, cost_from_api
from .settings import Settings

if TYPE_CHECKING:
    from .batch import BatchRun
    from .transport import Transport

__all__ = ["OpenRouterService", "NLPServices", "EmbeddingResult", "TextStream"]

log = logging.getLogger("openrouter_registry")

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


def normalize_messages(prompt: str | None, messages: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """One list of chat messages from a prompt string or a messages list; clear errors for bad input."""
    if (prompt is None) == (messages is None):
        raise ConfigurationError("pass either a prompt string or messages=[{'role': ..., 'content': ...}], not both")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigurationError("the prompt must be a non-empty string")
        return [{"role": "user", "content": prompt}]
    assert messages is not None
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ConfigurationError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES or "content" not in message:
            raise ConfigurationError(
                f"messages[{i}] must be a dict with 'role' (one of {', '.join(sorted(_ROLES))}) and 'content'"
            )
        out.append(dict(message))
    return out


def _check_call_options(temperature: float | None, max_tokens: int | None) -> None:
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0 <= temperature <= 2
    ):
        raise ConfigurationError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigurationError(f"max_tokens must be a positive integer, got {max_tokens!r}")


@attrs.frozen
class EmbeddingResult:
    """Vectors in input order, with the model that ran, usage and cost."""

    vectors: list[list[float]]
    model: str | None
    provider: str | None
    generation_id: str | None
    usage: Usage
    cost: float | None
    attempts: int

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0


class OpenRouterService:
    """Structured generation, streaming and embeddings through OpenRouter.

    One pooled HTTP client serves every call for the service's life; use ``async with service`` or
    ``await service.aclose()``. Nothing touches the network or reads the key before the first call.
    The service is also a Parlant NLP service factory: ``p.Server(nlp_service=service)``.
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
        return f"OpenRouterService(model={self.settings.model!r}, base_url={self.settings.base_url!r})"

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The shared transport (one pooled httpx.AsyncClient), created on first use."""
        if self._transport is None:
            from .transport import Transport

            self._transport = Transport(self.settings)
        return self._transport

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    async def __aenter__(self) -> OpenRouterService:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- the generation path -----------------------------------------------------------------------

    def resolve(self, model: str | None = None) -> Resolution:
        """The generator that serves ``model`` (default: the settings' model)."""
        return self.registry.resolve(model or self.settings.model, self.settings)

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

        Raises `MissingAPIKeyError` without a key, a typed `APIError` for API failures (after
        retries), `StructuredOutputError` when no valid structure came back after ``max_reasks``
        re-asks (default: the settings' ``max_reasks``), `TruncatedOutputError` for a reply cut off at
        ``max_tokens``.
        """
        from .schema import structure, to_json_schema

        self.settings.require_api_key()
        _check_call_options(temperature, max_tokens)
        conversation = normalize_messages(prompt, messages)
        json_schema = to_json_schema(schema)
        resolution = self.resolve(model)
        generator, model_id = resolution.generator, resolution.model
        headers = self._headers(model_id)
        reasks_left = self.settings.max_reasks if max_reasks is None else max_reasks

        modes: tuple[Mode | None, ...] = tuple(generator.structured_modes) if json_schema is not None else (None,)
        route = route_of(extra_body)
        learned = MODE_MEMORY.get(model_id, route) if json_schema is not None else None
        index = modes.index(learned) if learned in modes else 0
        attempts, usage, cost = 0, Usage(), None

        while True:
            mode = modes[index]
            body = generator.build_body(
                conversation,
                mode=mode or "prompt",
                schema=json_schema,
                max_tokens=max_tokens,
                temperature=temperature,
                extra_body=extra_body,
            )
            try:
                data, used = await self.transport.post_json("/chat/completions", body, headers, model=model_id)
            except APIError as error:
                attempts += error.attempts
                if mode is not None and index + 1 < len(modes) and is_mode_refusal(error):
                    index += 1
                    MODE_MEMORY.fall_back(model_id, mode, modes[index], route)  # type: ignore[arg-type]
                    continue
                error.attempts = attempts
                raise
            attempts += used
            from .decode import decode_chat

            reply = decode_chat(data)
            usage, cost = usage + reply.usage, add_costs(cost, reply.cost)

            def result(content: Any, mode: Mode | None = mode) -> GenerationResult[Any]:
                return GenerationResult(
                    content=content,
                    text=reply.text,
                    model=reply.model or model_id,
                    provider=reply.provider,
                    generation_id=reply.generation_id,
                    mode=mode,
                    attempts=attempts,
                    usage=usage,
                    cost=cost,
                    generator=type(generator).__name__,
                    plugin=resolution.plugin,
                )

            if json_schema is None:
                return result(reply.text)
            if reply.finish_reason == "length":
                raise TruncatedOutputError(
                    "the reply was cut off at max_tokens (finish_reason 'length') before the JSON was complete; "
                    "raise max_tokens or ask for less",
                    text=reply.text,
                    model=reply.model or model_id,
                    generation_id=reply.generation_id,
                    usage=usage,
                    cost=cost,
                    attempts=attempts,
                )
            errors = self._check_reply(generator, model_id, reply.text, mode or "prompt", json_schema)
            if isinstance(errors, _Parsed):
                return result(structure(errors.data, schema))
            if reasks_left > 0:
                reasks_left -= 1
                log.info("reply from %s did not validate (%s); asking again", model_id, "; ".join(errors[:3]))
                conversation = [
                    *conversation,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": reask_message(errors)},
                ]
                continue
            raise StructuredOutputError(
                "the model's reply does not match the schema",
                text=reply.text,
                errors=errors,
                model=reply.model or model_id,
                generation_id=reply.generation_id,
                usage=usage,
                cost=cost,
                attempts=attempts,
            )

    def _check_reply(
        self, generator: Generator, model: str, text: str, mode: Mode, schema: Mapping[str, Any]
    ) -> _Parsed | list[str]:
        """Parse (hook chain) and validate one reply: the data, or the errors to re-ask with."""
        from .validation import validate

        finished = generator.finish_text(text, mode, schema)
        data = self.registry.parse_structured(model, finished, schema)
        if data is None:
            return ["the reply holds no JSON value"]
        errors = validate(data, schema)
        return errors if errors else _Parsed(data)

    # --- batch -------------------------------------------------------------------------------------

    def batch(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        schema: Any = None,
        concurrency: int = 16,
        max_cost: float | str | Decimal | None = None,
        model: str | None = None,
        template: str | None = None,
        **options: Any,
    ) -> BatchRun:
        """Run `generate` over many items: ``async for row in service.batch(items, ...)``; see `batch.BatchRun`."""
        from .batch import BatchRun

        return BatchRun(
            self, items, schema=schema, concurrency=concurrency, max_cost=max_cost, model=model, template=template,
            **options,
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
        _check_call_options(temperature, max_tokens)
        conversation = normalize_messages(prompt, messages)
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
        from .decode import EmbeddingReply, decode_embeddings
        from .errors import InvalidResponseError

        self.settings.require_api_key()
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or not all(isinstance(t, str) for t in items):
            raise ConfigurationError("embed() takes a string or a non-empty list of strings")
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

        data, attempts = await self.transport.post_json(
            "/embeddings", body, self._headers(model_id), model=model_id, check=decode
        )
        reply = decode(data)
        return EmbeddingResult(
            vectors=reply.vectors,
            model=reply.model or model_id,
            provider=reply.provider,
            generation_id=reply.generation_id,
            usage=reply.usage,
            cost=reply.cost,
            attempts=attempts,
        )

    # --- Parlant ----------------------------------------------------------------------------------

    def __call__(self, container: Any) -> Any:
        """Parlant calls this with its container: return a Parlant ``NLPService`` backed by this service."""
        from .parlant import ParlantNLPService

        return ParlantNLPService(self, container)


@attrs.frozen
class _Parsed:
    data: Any


class TextStream:
    """An async iterator of text deltas; after iteration, the totals of the reply."""

    def __init__(self, service: OpenRouterService, resolution: Resolution, body: dict[str, Any], headers: dict[str, str]):
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
        from .decode import decode_chunk

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
                if isinstance(usage, Mapping):  # what the failed reply was billed
                    self.usage, self.cost = Usage.from_api(usage), cost_from_api(usage)
                raise

    async def collect(self) -> str:
        """Consume the stream and return the whole text."""
        async for _ in self:
            pass
        return self.text


class NLPServices:
    """Entry points named like Parlant's: ``NLPServices.openrouter(...)``."""

    @staticmethod
    def openrouter(
        container: Any = None,
        /,
        *,
        model_name: str | None = None,
        max_tokens: int | None = None,
        http_referer: str | None = None,
        site_name: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        **settings: Any,
    ) -> Any:
        """An `OpenRouterService` configured from the environment, explicit arguments winning.

        Called by Parlant with its container (``p.Server(nlp_service=NLPServices.openrouter)``), it
        returns the Parlant NLP service directly.
        """
        service = OpenRouterService(
            Settings.from_env(
                model=model_name,
                max_tokens=max_tokens,
                http_referer=http_referer,
                site_name=site_name,
                base_url=base_url,
                api_key=api_key,
                **settings,
            )
        )
        if container is not None:
            return service(container)
        return service
