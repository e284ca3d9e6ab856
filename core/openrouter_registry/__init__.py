"""openrouter-registry: one client for every model on OpenRouter, with structured output, retries and cost.

    from openrouter_registry import NLPServices

    async with NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet") as service:
        result = await service.generate("Extract the city from: ...", schema=MY_SCHEMA)
        result.content, result.usage, result.cost

Two import surfaces are stable; every other module is internal and may move in any release:

- ``openrouter_registry`` (this package), for apps: the services (async and sync) and `NLPServices`,
  `Settings`, the per-call option types (`Provider`, `MaxPrice`, `WebSearch`...), every
  type a public call returns (`GenerationResult`, `TextStream`, `EmbeddingResult`, `BatchRun`,
  `BatchRow`, `BatchSummary`, `CostEstimate`, `Catalog`, `ModelInfo`, `Resolution`, ...) and the
  errors, all below `OpenRouterError`.
- ``openrouter_registry.plugin``, for plugin authors: `hookimpl`, `Generator`, `ModelTable`,
  `family_hooks`, the strict reply parsers, and where the test kit is.

Importing this package is cheap: every name is imported on first access (PEP 562), and plugins are
discovered only when the registry is first used.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, cast

__version__ = "0.1.0"

#: The app surface: name -> the internal module that defines it.
_EXPORTS: dict[str, str] = {
    # the service
    "NLPServices": "service",
    "OpenRouterService": "service",
    "OpenRouterSyncService": "service",
    "SyncTextStream": "service",
    "Settings": "settings",
    "SettingsOptions": "settings",
    "ServiceOptions": "settings",
    # per-call options
    "Provider": "engine.options",
    "MaxPrice": "engine.options",
    "WebSearch": "engine.options",
    "FileParser": "engine.options",
    "ResponseHealing": "engine.options",
    "Plugin": "engine.options",
    "CallOptions": "engine.options",
    "GenerateOptions": "engine.options",
    "Secret": "settings",
    # what the calls return
    "GenerationResult": "result",
    "EmbeddingResult": "result",
    "Usage": "result",
    "CostSource": "result",
    "TextStream": "engine.calls",
    "StreamEvent": "engine.calls",
    "TextDelta": "engine.calls",
    "ReasoningDelta": "engine.calls",
    "ToolCallStarted": "engine.calls",
    "ToolCallArgumentsDelta": "engine.calls",
    "ToolCallFinished": "engine.calls",
    "UsageReport": "engine.calls",
    "ToolCall": "result",
    "tool_message": "result",
    "ToolRunResult": "engine.toolloop",
    "ReasoningFacts": "models.catalog",
    "CostEstimate": "models.pricing",
    "Catalog": "models.catalog",
    "ModelInfo": "models.catalog",
    "Pricing": "models.catalog",
    "BatchRun": "batch.run",
    "BatchRow": "batch.run",
    "BatchError": "batch.run",
    "BatchSummary": "batch.run",
    "ConcurrencyReport": "batch.run",
    "BatchUDF": "batch.engines",
    "JobLedger": "batch.shared",
    "RetryEvent": "http.events",
    "CallEvent": "http.events",
    "observe_retries": "http.events",
    # the registry: which generator serves a model, which plugins are loaded
    "Registry": "plugins.registry",
    "Resolution": "plugins.registry",
    "PluginInfo": "plugins.registry",
    "get_registry": "plugins.registry",
    # errors
    "OpenRouterError": "errors",
    "ConfigurationError": "errors",
    "SettingsError": "errors",
    "MissingAPIKeyError": "errors",
    "PluginError": "errors",
    "HeaderError": "errors",
    "APIError": "errors",
    "BadRequestError": "errors",
    "ContextLengthError": "errors",
    "AuthenticationError": "errors",
    "InsufficientCreditsError": "errors",
    "ModerationError": "errors",
    "ModelNotAvailableError": "errors",
    "RateLimitError": "errors",
    "ProviderError": "errors",
    "InvalidResponseError": "errors",
    "TimeoutError": "errors",
    "PoolTimeoutError": "errors",
    "ConnectionError": "errors",
    "CertificateError": "errors",
    "UnsafeFileError": "errors",
    "StructuredOutputError": "errors",
    "TruncatedOutputError": "errors",
    "ToolLoopError": "errors",
}

#: Plugin-author names that this package exported before `openrouter_registry.plugin` existed:
#: still served for one release, with a DeprecationWarning naming the new import.
_MOVED_TO_PLUGIN = frozenset({"hookimpl", "hookspec", "Candidate", "Match", "ModelTable", "Generator"})

#: Module paths a user could import before the stage folders: old path -> (new module, what to import instead).
_OLD_MODULES: dict[str, tuple[str, str]] = {
    "structured": ("replies.structured", "openrouter_registry.plugin (parse_json_reply, parse_embedded_json, ...)"),
    "family": ("plugins.family", "openrouter_registry.plugin (family_hooks, FamilyHooks, ReplyParser)"),
    "generator": ("models.generator", "openrouter_registry.plugin (Generator, Facts, Mode, ...)"),
    "matching": ("plugins.matching", "openrouter_registry.plugin (Candidate, Match, ModelTable)"),
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name in _MOVED_TO_PLUGIN:
            from .errors import warn_moved

            warn_moved(f"'from openrouter_registry import {name}'", f"use 'from openrouter_registry.plugin import {name}'")
            return getattr(importlib.import_module(".plugin", __name__), name)
        raise AttributeError(f"module 'openrouter_registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _OldModule:
    """Finds ``openrouter_registry.structured`` and the other pre-0.2 module paths: the module is the
    new one's namespace, loaded with a DeprecationWarning that names the import to use instead."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _OLD_MODULES:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, cast(Any, _OldModule))  # a loader by its two methods

    @staticmethod
    def create_module(spec: Any) -> Any:
        return None

    @staticmethod
    def exec_module(module: Any) -> None:
        name = module.__name__.rpartition(".")[2]
        new, instead = _OLD_MODULES[name]
        from .errors import warn_moved

        warn_moved(f"the module openrouter_registry.{name}", f"import from {instead}")
        source = importlib.import_module(f".{new}", __name__)
        module.__dict__.update({k: v for k, v in vars(source).items() if not k.startswith("__")})
        module.__doc__ = f"Deprecated alias of the internal module openrouter_registry.{new}; import from {instead}."


sys.meta_path.append(_OldModule)

if TYPE_CHECKING:
    from .batch.run import BatchError as BatchError, BatchRow as BatchRow, BatchRun as BatchRun, BatchSummary as BatchSummary, ConcurrencyReport as ConcurrencyReport
    from .batch.engines import BatchUDF as BatchUDF
    from .batch.shared import JobLedger as JobLedger
    from .engine.calls import ReasoningDelta as ReasoningDelta, StreamEvent as StreamEvent, TextDelta as TextDelta, TextStream as TextStream, ToolCallArgumentsDelta as ToolCallArgumentsDelta, ToolCallFinished as ToolCallFinished, ToolCallStarted as ToolCallStarted, UsageReport as UsageReport
    from .engine.options import CallOptions as CallOptions, FileParser as FileParser, GenerateOptions as GenerateOptions, MaxPrice as MaxPrice, Plugin as Plugin, Provider as Provider, ResponseHealing as ResponseHealing, WebSearch as WebSearch
    from .engine.toolloop import ToolRunResult as ToolRunResult
    from .errors import APIError as APIError, AuthenticationError as AuthenticationError, BadRequestError as BadRequestError, CertificateError as CertificateError, ConfigurationError as ConfigurationError, ConnectionError as ConnectionError, ContextLengthError as ContextLengthError, HeaderError as HeaderError, InsufficientCreditsError as InsufficientCreditsError, InvalidResponseError as InvalidResponseError, MissingAPIKeyError as MissingAPIKeyError, ModelNotAvailableError as ModelNotAvailableError, ModerationError as ModerationError, OpenRouterError as OpenRouterError, PluginError as PluginError, PoolTimeoutError as PoolTimeoutError, ProviderError as ProviderError, RateLimitError as RateLimitError, SettingsError as SettingsError, StructuredOutputError as StructuredOutputError, TimeoutError as TimeoutError, ToolLoopError as ToolLoopError, TruncatedOutputError as TruncatedOutputError, UnsafeFileError as UnsafeFileError
    from .http.events import CallEvent as CallEvent, RetryEvent as RetryEvent, observe_retries as observe_retries
    from .models.catalog import Catalog as Catalog, ModelInfo as ModelInfo, Pricing as Pricing, ReasoningFacts as ReasoningFacts
    from .models.pricing import CostEstimate as CostEstimate
    from .plugins.registry import PluginInfo as PluginInfo, Registry as Registry, Resolution as Resolution, get_registry as get_registry
    from .result import CostSource as CostSource, EmbeddingResult as EmbeddingResult, GenerationResult as GenerationResult, ToolCall as ToolCall, Usage as Usage, tool_message as tool_message
    from .service import NLPServices as NLPServices, OpenRouterService as OpenRouterService, OpenRouterSyncService as OpenRouterSyncService, SyncTextStream as SyncTextStream
    from .settings import Secret as Secret, ServiceOptions as ServiceOptions, Settings as Settings, SettingsOptions as SettingsOptions
