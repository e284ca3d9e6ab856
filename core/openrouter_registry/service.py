"""The services apps use: `OpenRouterService` (async), `OpenRouterSyncService` (the same calls,
blocking) and their entry points `NLPServices.openrouter` / `NLPServices.openrouter_sync`.

    from openrouter_registry import NLPServices

    async with NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet") as service:
        result = await service.generate("Extract the city from: ...", schema=City)

    with NLPServices.openrouter_sync(model_name="anthropic/claude-3.5-sonnet") as client:
        result = client.generate("Extract the city from: ...", schema=City)

A facade: every step of a generation lives in the stages below (`engine.calls.Engine` drives them);
this module adds only what sits on top of the engine: `batch`, the Parlant NLP service and the sync client.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Unpack, overload

from .adapters.sync import LoopThread
from .engine.calls import Engine
from .settings import ServiceOptions, Settings

if TYPE_CHECKING:
    from .batch.run import BatchRow, BatchRun
    from .engine.calls import TextStream
    from .engine.options import CallOptions, GenerateOptions, Plugin, Provider
    from .engine.toolloop import ToolRunResult
    from .http.events import EventObserver
    from .models.catalog import Catalog
    from .models.pricing import CostEstimate
    from .plugins.registry import Resolution
    from .result import EmbeddingResult, GenerationResult, Usage

__all__ = ["OpenRouterService", "OpenRouterSyncService", "SyncTextStream", "NLPServices"]

T = TypeVar("T")


class OpenRouterService(Engine):
    """Structured generation, streaming, embeddings and batches through OpenRouter.

    One pooled HTTP client serves every call for the service's life; use ``async with service`` or
    ``await service.aclose()``. Nothing touches the network or reads the key before the first call.
    The service is also a Parlant NLP service factory: ``p.Server(nlp_service=service)``.
    """

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
        """Run `generate` over many items: ``async for row in service.batch(items, ...)``; see `BatchRun`."""
        from .batch.run import BatchRun  # loaded on the first batch: most apps never run one

        return BatchRun(
            self, items, schema=schema, concurrency=concurrency, max_cost=max_cost, model=model, template=template,
            **options,
        )

    # --- tools -------------------------------------------------------------------------------------

    async def run_tools(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        tools: Sequence[Any],
        max_rounds: int = 8,
        schema: Any = None,
        tool_timeout: float = 60.0,
        **options: Any,
    ) -> ToolRunResult:
        """Ask, run the Python functions the model calls (a round's calls concurrently), give their
        results back, and repeat until the model answers without tool calls, at most ``max_rounds``
        times (then `ToolLoopError`, with the transcript, usage and cost). A tool that raises, an unknown
        tool and invalid arguments go back to the model as that call's error. ``options`` are
        `generate`'s (``model``, ``temperature``, ``max_tokens``, ``extra_body``, ``tool_choice``,
        ``parallel_tool_calls``, ``reasoning``, ``max_reasks``, ``timeout``, ``max_attempts``, ``provider``,
        ``models``, ``plugins``, ``session_id``), sent in every round. See `ToolRunResult`."""
        from .engine.toolloop import run_tools

        return await run_tools(
            self, prompt, messages=messages, tools=tools, max_rounds=max_rounds, schema=schema,
            tool_timeout=tool_timeout, **options,
        )

    # --- Parlant ----------------------------------------------------------------------------------

    def __call__(self, container: Any) -> Any:
        """Parlant calls this with its container: return a Parlant ``NLPService`` backed by this service."""
        from .adapters.parlant import ParlantNLPService  # imports Parlant: only when Parlant asks

        return ParlantNLPService(self, container)


class _Total(Generic[T]):
    """One of `TextStream`'s totals, read through a `SyncTextStream` (a read-only attribute)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, stream: SyncTextStream | None, owner: type | None = None) -> T:
        if stream is None:
            raise AttributeError(self.name)
        value: T = getattr(stream._stream, self.name)
        return value


class SyncTextStream:
    """A streamed text reply as a plain iterator of text deltas (``for delta in client.stream(...)``);
    after the loop it holds the totals of the reply, as `TextStream` does."""

    def __init__(self, stream: TextStream, runner: LoopThread) -> None:
        self._stream, self._runner = stream, runner

    def __iter__(self) -> Iterator[str]:
        stream = self._stream
        return self._runner.iterate(lambda: aiter(stream))

    def collect(self) -> str:
        """Consume the stream and return the whole text."""
        for _ in self:
            pass
        return self.text

    # the totals of the reply, read from the async stream underneath (set as the iteration goes)
    text: _Total[str] = _Total()
    usage: _Total[Usage] = _Total()
    cost: _Total[Decimal | None] = _Total()
    model: _Total[str | None] = _Total()
    provider: _Total[str | None] = _Total()
    generation_id: _Total[str | None] = _Total()
    finish_reason: _Total[str | None] = _Total()
    attempts: _Total[int] = _Total()


class OpenRouterSyncService:
    """The calls of `OpenRouterService`, blocking: ``generate``, ``stream`` (a plain iterator),
    ``embed``, ``estimate_cost``, ``batch`` (a list of rows in input order), ``load_catalog`` and
    ``resolve``; same arguments, same results, same errors.

    Usable from a plain script, from many threads at once (one connection pool serves them all) and
    from inside a running event loop (a Jupyter cell, an async framework's handler): its calls run on
    an event loop of its own, on a daemon thread started by the first call. Close it with ``with`` or
    `close()`; an unclosed client is closed when it is garbage-collected or at the interpreter's exit.
    """

    def __init__(self, service: OpenRouterService) -> None:
        self.service = service
        self._runner = LoopThread()
        self._finalizer = weakref.finalize(self, self._runner.close, service.aclose)

    def __repr__(self) -> str:
        settings = self.service.settings
        return f"{type(self).__name__}(model={settings.model!r}, base_url={settings.base_url!r})"

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def close(self) -> None:
        """Close the connection pool and stop the client's event loop thread. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the calls --------------------------------------------------------------------------------

    @overload
    def generate(
        self, prompt: str | None = None, *, schema: None = None, **options: Unpack[GenerateOptions]
    ) -> GenerationResult[str]: ...

    @overload
    def generate(
        self, prompt: str | None = None, *, schema: type[T], **options: Unpack[GenerateOptions]
    ) -> GenerationResult[T]: ...

    @overload
    def generate(
        self, prompt: str | None = None, *, schema: Mapping[str, Any], **options: Unpack[GenerateOptions]
    ) -> GenerationResult[Any]: ...

    def generate(self, prompt: str | None = None, *, schema: Any = None, **options: Any) -> GenerationResult[Any]:
        """`OpenRouterService.generate`, blocking until the result (or its error) is there."""
        service = self.service
        result: GenerationResult[Any] = self._runner.run(lambda: service.generate(prompt, schema=schema, **options))
        return result

    def stream(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> SyncTextStream:
        """`OpenRouterService.stream` as a plain iterator: ``for delta in client.stream(prompt): ...``.
        Bad arguments raise here, before anything is sent; nothing is sent before the first step."""
        return SyncTextStream(self.service.stream(prompt, **options), self._runner)

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> EmbeddingResult:
        """`OpenRouterService.embed`, blocking: the vectors in input order."""
        service = self.service
        return self._runner.run(
            lambda: service.embed(texts, model=model, dimensions=dimensions, timeout=timeout, max_attempts=max_attempts)
        )

    def estimate_cost(
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
        """`OpenRouterService.estimate_cost`, blocking: (low, high) in USD, or None."""
        service = self.service
        return self._runner.run(
            lambda: service.estimate_cost(
                prompt, messages=messages, schema=schema, model=model, max_tokens=max_tokens, extra_body=extra_body,
                max_reasks=max_reasks, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls,
                reasoning=reasoning, provider=provider, models=models, plugins=plugins, session_id=session_id,
            )
        )

    def batch(
        self,
        items: Iterable[Any],
        *,
        schema: Any = None,
        concurrency: int = 16,
        max_cost: float | str | Decimal | None = None,
        model: str | None = None,
        template: str | None = None,
        **options: Any,
    ) -> list[BatchRow]:
        """`OpenRouterService.batch` run to its end: one row per item, in input order (a failed row is a
        row with ``ok`` False and its ``error``, never an exception; an item the budget or a stop left
        unsent is a row whose error type is ``NotStarted``, never a gap). Same arguments as the async batch."""
        service = self.service
        listed = list(items)

        async def run() -> list[BatchRow]:
            from .batch.run import in_input_order

            batch = service.batch(
                listed, schema=schema, concurrency=concurrency, max_cost=max_cost, model=model, template=template,
                **options,
            )
            return await in_input_order(batch, listed)

        return self._runner.run(run)

    def load_catalog(self, *, refresh: bool = False) -> Catalog | None:
        """`OpenRouterService.load_catalog`, blocking."""
        service = self.service
        return self._runner.run(lambda: service.load_catalog(refresh=refresh))

    def resolve(self, model: str | None = None) -> Resolution:
        """The generator that serves ``model`` (default: the settings' model)."""
        return self.service.resolve(model)


def _service(options: Mapping[str, Any]) -> OpenRouterService:
    """The service for `NLPServices`' keywords: ``model_name`` is the `Settings` field ``model``."""
    settings = dict(options)
    on_event = settings.pop("on_event", None)
    return OpenRouterService(Settings.from_env(model=settings.pop("model_name", None), **settings), on_event=on_event)


class NLPServices:
    """Entry points named like Parlant's: ``NLPServices.openrouter(...)`` (async) and
    ``NLPServices.openrouter_sync(...)`` (blocking), taking the same arguments."""

    @overload
    @staticmethod
    def openrouter(container: None = None, /, **options: Unpack[ServiceOptions]) -> OpenRouterService: ...

    @overload
    @staticmethod
    def openrouter(container: object, /, **options: Unpack[ServiceOptions]) -> Any: ...

    @staticmethod
    def openrouter(container: Any = None, /, **options: Any) -> Any:
        """An `OpenRouterService` configured from the environment, explicit arguments winning:
        ``model_name``, ``max_tokens``, ``http_referer``, ``site_name``, ``base_url``, ``api_key`` and
        the other settings by their `Settings` names (``timeout=``, ``max_attempts=``, ``max_reasks=``...;
        see `ServiceOptions`).

        ``on_event`` is called with every `CallEvent` of every call the service makes (request,
        retry, fallback, re-ask, response, error); one that raises is logged and ignored.

        Called by Parlant with its container (``p.Server(nlp_service=NLPServices.openrouter)``), it
        returns the Parlant NLP service directly.
        """
        service = _service(options)
        if container is not None:
            return service(container)
        return service

    @staticmethod
    def openrouter_sync(**options: Unpack[ServiceOptions]) -> OpenRouterSyncService:
        """An `OpenRouterSyncService`: the same arguments as `openrouter`, the same calls, blocking."""
        return OpenRouterSyncService(_service(options))
