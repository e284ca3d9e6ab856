"""Parlant adapter: a Parlant ``NLPService`` backed by one `OpenRouterService`.

    import parlant.sdk as p
    from openrouter_registry import NLPServices

    async with p.Server(nlp_service=NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet")) as server:
        ...

Parlant calls the factory once with its container; the service it gets back hands out schematic
generators, a streaming text generator, an embedder and `NoModeration`. Every one of them is a thin
wrapper around the core's path (resolution, modes with learned fallback, repair, re-ask, retries,
typed errors), and all of them share the service's single pooled HTTP client.

This module imports Parlant (``pip install "openrouter-registry[parlant]"``); nothing else in the
package does, so it is loaded only when Parlant asks for a service.
"""

from __future__ import annotations

from decimal import Decimal
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic

from parlant.core.engines.alpha.entity_context import EntityContext
from parlant.core.engines.alpha.prompt_builder import PromptBuilder
from parlant.core.nlp.embedding import Embedder
from parlant.core.nlp.embedding import EmbeddingResult as ParlantEmbeddingResult
from parlant.core.nlp.generation import (
    SchematicGenerationResult,
    SchematicGenerator,
    StreamingTextGenerationResult,
    StreamingTextGenerator,
    T,
)
from parlant.core.nlp.generation_info import GenerationInfo, UsageInfo
from parlant.core.nlp.moderation import ModerationService, NoModeration
from parlant.core.nlp.service import EmbedderHints, NLPService, SchematicGeneratorHints, StreamingTextGeneratorHints
from parlant.core.nlp.tokenization import EstimatingTokenizer

from ..engine.observe import span_attributes
from ..errors import InvalidResponseError, OpenRouterError
from ..models.preflight import estimate_tokens
from ..result import Usage
from .prompts import prompt_parts

if TYPE_CHECKING:
    from ..plugins.registry import Resolution
    from ..engine.calls import Engine

__all__ = [
    "ParlantNLPService",
    "OpenRouterSchematicGenerator",
    "OpenRouterStreamingTextGenerator",
    "OpenRouterEmbedder",
    "OpenRouterEstimatingTokenizer",
    "estimate_tokens",
    "usage_info",
]

#: Context window assumed for a model neither a plugin nor the model catalog knows.
DEFAULT_CONTEXT_WINDOW = 128_000
#: Input tokens an embedding model accepts per text (OpenAI's text-embedding-3 limit).
EMBEDDER_MAX_TOKENS = 8192


class OpenRouterEstimatingTokenizer(EstimatingTokenizer):
    """Parlant's tokenizer interface over `estimate_tokens`."""

    async def estimate_token_count(self, prompt: str) -> int:
        return estimate_tokens(prompt)


TOKENIZER = OpenRouterEstimatingTokenizer()


def usage_info(usage: Usage, cost: Decimal | None, cache_saving: Decimal | None = None) -> UsageInfo:
    """Parlant's usage record: input/output tokens, with cached, cache-written and reasoning tokens, the
    cost in integer micro-dollars (``cost_micro_usd``, present when OpenRouter reported a cost) and what
    prompt caching saved (``cache_saving_micro_usd``, when the catalog prices the model) in ``extra``."""
    extra = {
        "cached_input_tokens": usage.cached_tokens,
        "cache_write_input_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }
    if cost is not None:
        extra["cost_micro_usd"] = round(cost * 1_000_000)
    if cache_saving is not None:
        extra["cache_saving_micro_usd"] = round(cache_saving * 1_000_000)
    return UsageInfo(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, extra=extra)


def _prompt_text(prompt: str | PromptBuilder) -> str:
    return prompt.build() if isinstance(prompt, PromptBuilder) else prompt


def _temperature(hints: Mapping[str, Any]) -> float | None:
    value = hints.get("temperature")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _max_tokens(hints: Mapping[str, Any]) -> int | None:
    value = hints.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class _ServesModel:
    """What both generators share: the core service, the registry's resolution, id and tokenizer."""

    def __init__(self, service: Engine, resolution: Resolution) -> None:
        self._service = service
        self._resolution = resolution

    def __repr__(self) -> str:
        generator = type(self._resolution.generator).__name__
        return f"{type(self).__name__}(model={self._resolution.model!r}, generator={generator!r})"

    @property
    def id(self) -> str:
        return f"openrouter/{self._resolution.model}"

    def _session(self) -> dict[str, Any]:
        """``session_id`` from the Parlant session this request serves (Parlant's `EntityContext`), so
        that OpenRouter's sticky routing keeps one conversation on the provider that holds its prompt
        cache; nothing outside a session (Parlant's start-up evaluations)."""
        session = EntityContext.get_session()
        return {"session_id": f"parlant-{session.id}"[:256]} if session is not None else {}

    def _conversation(self, prompt: str | PromptBuilder) -> dict[str, Any]:
        """The ``prompt=`` or ``messages=`` to send: a `PromptBuilder` for a model that caches explicitly
        becomes content parts with breakpoints at its section boundaries (`prompts.prompt_parts`);
        anything else is the built text, as Parlant builds it. ``build()`` runs once either way."""
        text = _prompt_text(prompt)
        if isinstance(prompt, PromptBuilder) and self._service.settings.prompt_cache == "auto":
            parts = prompt_parts(prompt, text, self._resolution.generator.prompt_cache_policy())
            if parts is not None:
                return {"messages": [{"role": "user", "content": parts}]}
        return {"prompt": text}

    @property
    def tokenizer(self) -> EstimatingTokenizer:
        return TOKENIZER


class OpenRouterSchematicGenerator(_ServesModel, SchematicGenerator[T], Generic[T]):
    """Serves one Parlant schema through the core's structured generation.

    Created as ``OpenRouterSchematicGenerator[Schema](service, resolution)``: Parlant reads the schema
    (and keys its container) from the subscripted class, so the subscription is required.
    """

    @property
    def generator(self) -> str:
        """The class name of the registry's generator that serves this model."""
        return type(self._resolution.generator).__name__

    @property
    def plugin(self) -> str:
        """The plugin that provided the generator (``openrouter_registry`` for the generic one)."""
        return self._resolution.plugin

    @property
    def max_tokens(self) -> int:
        """The model's context window, as Parlant's interface defines ``max_tokens``: the plugin's, else the
        model catalog's (any OpenRouter model), else `DEFAULT_CONTEXT_WINDOW`."""
        return self._resolution.generator.facts().context_window or DEFAULT_CONTEXT_WINDOW

    async def generate(
        self, prompt: str | PromptBuilder, hints: Mapping[str, Any] = {}
    ) -> SchematicGenerationResult[T]:
        started = time.perf_counter()
        with span_attributes({"parlant.schema_name": self.schema.__name__}):  # on the call's span, when traced
            result = await self._service.generate(
                **self._conversation(prompt),
                **self._session(),
                schema=self.schema,
                model=self._resolution.model,
                temperature=_temperature(hints),
                max_tokens=_max_tokens(hints),
            )
        return SchematicGenerationResult(
            content=result.content,
            info=GenerationInfo(
                schema_name=self.schema.__name__,
                model=result.model or self._resolution.model,
                duration=time.perf_counter() - started,
                usage=usage_info(result.usage, result.cost, result.cache_saving),
            ),
        )


class OpenRouterStreamingTextGenerator(_ServesModel, StreamingTextGenerator):
    """Streams plain text from the core's `OpenRouterService.stream` (SSE)."""

    def generate(self, prompt: str | PromptBuilder, hints: Mapping[str, Any] = {}) -> StreamingTextGenerationResult:
        stream = self._service.stream(
            **self._conversation(prompt),
            **self._session(),
            model=self._resolution.model,
            temperature=_temperature(hints),
            max_tokens=_max_tokens(hints),
        )
        started = time.perf_counter()
        finished: list[float] = []

        async def deltas() -> AsyncIterator[str | None]:
            async for delta in stream:
                yield delta
            finished.append(time.perf_counter())
            yield None

        def info() -> GenerationInfo:
            if not finished:
                raise RuntimeError("the stream's GenerationInfo is known only after the stream was consumed")
            return GenerationInfo(
                schema_name="text",
                model=stream.model or self._resolution.model,
                duration=finished[0] - started,
                usage=usage_info(stream.usage, stream.cost),
            )

        return StreamingTextGenerationResult(deltas(), info)


class OpenRouterEmbedder(Embedder):
    """Embeds through OpenRouter's ``/embeddings``. Each embedding model gets its own subclass (see
    `embedder_class`), because Parlant names its embedding caches and container entries by type."""

    def __init__(self, service: Engine, model: str, dimensions: int) -> None:
        self._service = service
        self._model = model
        self._dimensions = dimensions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._model!r}, dimensions={self._dimensions})"

    @property
    def id(self) -> str:
        return f"openrouter/{self._model}"

    @property
    def max_tokens(self) -> int:
        return EMBEDDER_MAX_TOKENS

    @property
    def tokenizer(self) -> EstimatingTokenizer:
        return TOKENIZER

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: list[str], hints: Mapping[str, Any] = {}) -> ParlantEmbeddingResult:
        result = await self._service.embed(texts, model=self._model, dimensions=self._dimensions)
        wrong = {len(v) for v in result.vectors if len(v) != self._dimensions}
        if wrong:
            raise InvalidResponseError(
                f"{self._model} returned vectors of {sorted(wrong)} dimensions, not the configured "
                f"{self._dimensions}: set OPENROUTER_EMBEDDER_DIMENSIONS to the model's vector size",
                model=result.model,
                generation_id=result.generation_id,
            )
        return ParlantEmbeddingResult(vectors=result.vectors)


_EMBEDDER_CLASSES: dict[str, type[OpenRouterEmbedder]] = {}


def embedder_class(model: str) -> type[OpenRouterEmbedder]:
    """The `OpenRouterEmbedder` subclass for ``model`` (one per model id, created once)."""
    cls = _EMBEDDER_CLASSES.get(model)
    if cls is None:
        suffix = re.sub(r"[^0-9a-zA-Z]+", "_", model).strip("_")
        cls = type(f"OpenRouterEmbedder_{suffix}", (OpenRouterEmbedder,), {"__module__": __name__})
        _EMBEDDER_CLASSES[model] = cls
    return cls


def _configuration_error(message: str) -> Exception:
    """Parlant's own configuration error when a Parlant server is running (it prints it and exits),
    else ours. ``parlant.sdk`` is never imported here: importing it creates ./parlant-data."""
    sdk = sys.modules.get("parlant.sdk")
    error_class = getattr(sdk, "NLPServiceConfigurationError", None)
    if isinstance(error_class, type) and issubclass(error_class, Exception):
        return error_class(message)
    from ..errors import ConfigurationError

    return ConfigurationError(message)


class ParlantNLPService(NLPService):
    """What ``p.Server(nlp_service=...)`` gets. Built by calling an `OpenRouterService` with Parlant's
    container (``service(container)``), which is what ``NLPServices.openrouter`` arranges.

    Configuration is checked here, at server start-up: a missing key or an unusable setting stops the
    server with Parlant's configuration error and our message.
    """

    def __init__(self, service: Engine, container: Any = None) -> None:
        try:
            service.settings.require_api_key()
            self.resolution = service.resolve()
        except OpenRouterError as error:
            raise _configuration_error(str(error)) from None
        dimensions = service.embedding_dimensions
        if dimensions is None:
            raise _configuration_error(
                f"the vector size of embedding model {service.settings.embedder_model!r} is unknown: "
                "set OPENROUTER_EMBEDDER_DIMENSIONS"
            )
        self.service = service
        self.embedder = embedder_class(service.settings.embedder_model)(
            service, service.settings.embedder_model, dimensions
        )
        self.streaming_generator = OpenRouterStreamingTextGenerator(service, self.resolution)
        #: Every schema Parlant asked for, with the generator that serves it.
        self.generators: dict[type[Any], OpenRouterSchematicGenerator[Any]] = {}
        if container is not None:
            # Parlant rebuilds embedders through container[type(embedder)]: give it this instance.
            container[type(self.embedder)] = self.embedder

    def __repr__(self) -> str:
        return f"ParlantNLPService(model={self.resolution.model!r}, embedder={self.embedder!r})"

    @property
    def supports_streaming(self) -> bool:
        return True

    async def get_schematic_generator(
        self, t: type[T], hints: SchematicGeneratorHints = {}
    ) -> OpenRouterSchematicGenerator[T]:
        await self.service.load_catalog()  # once per TTL: the facts Parlant reads (max_tokens) include it
        generator = self.generators.get(t)
        if generator is None:
            generator = OpenRouterSchematicGenerator[t](self.service, self.resolution)  # type: ignore[valid-type]
            self.generators[t] = generator
        return generator

    async def get_streaming_text_generator(
        self, hints: StreamingTextGeneratorHints = {}
    ) -> OpenRouterStreamingTextGenerator:
        await self.service.load_catalog()
        return self.streaming_generator

    async def get_embedder(self, hints: EmbedderHints = {}) -> OpenRouterEmbedder:
        return self.embedder

    async def get_moderation_service(self) -> ModerationService:
        return NoModeration()


#: The factory type ``p.Server(nlp_service=...)`` takes.
NLPServiceFactory = Callable[[Any], NLPService]
