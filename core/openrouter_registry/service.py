"""The service apps use: `OpenRouterService` and Parlant's entry point `NLPServices.openrouter`.

    from openrouter_registry import NLPServices

    async with NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet") as service:
        result = await service.generate("Extract the city from: ...", schema=CITY_SCHEMA)

A facade: every step of a generation lives in the stages below (`engine.calls.Engine` drives them);
this module adds only what sits on top of the engine, `batch` and the Parlant NLP service.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .engine.calls import Engine
from .settings import Settings

if TYPE_CHECKING:
    from .batch.run import BatchRun
    from .engine.toolloop import ToolRunResult
    from .http.events import EventObserver

__all__ = ["OpenRouterService", "NLPServices"]


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
        ``parallel_tool_calls``, ``reasoning``, ``max_reasks``). See `ToolRunResult`."""
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
        on_event: EventObserver | None = None,
        **settings: Any,
    ) -> Any:
        """An `OpenRouterService` configured from the environment, explicit arguments winning.

        ``on_event`` is called with every `CallEvent` of every call the service makes (request,
        retry, fallback, re-ask, response, error); one that raises is logged and ignored.

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
            ),
            on_event=on_event,
        )
        if container is not None:
            return service(container)
        return service
