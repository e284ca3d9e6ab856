"""openrouter-registry: one client for every model on OpenRouter, with structured output, retries and cost.

    from openrouter_registry import NLPServices

    async with NLPServices.openrouter(model_name="anthropic/claude-3.5-sonnet") as service:
        result = await service.generate("Extract the city from: ...", schema=MY_SCHEMA)
        result.content, result.usage, result.cost

Two import surfaces are stable; every other module is internal and may move in any release:

- ``openrouter_registry`` (this package), for apps: the service and `NLPServices`, `Settings`, every
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
import warnings
from typing import TYPE_CHECKING, Any, cast

__version__ = "0.1.0"

#: The app surface: name -> the internal module that defines it.
_EXPORTS: dict[str, str] = {
    # the service
    "NLPServices": "service",
    "OpenRouterService": "service",
    "Settings": "settings",
    "Secret": "settings",
    # what the calls return
    "GenerationResult": "result",
    "EmbeddingResult": "result",
    "Usage": "result",
    "CostSource": "result",
    "TextStream": "engine.calls",
    "CostEstimate": "models.pricing",
    "Catalog": "models.catalog",
    "ModelInfo": "models.catalog",
    "Pricing": "models.catalog",
    "BatchRun": "batch.run",
    "BatchRow": "batch.run",
    "BatchError": "batch.run",
    "BatchSummary": "batch.run",
    "ConcurrencyReport": "batch.run",
    "RetryEvent": "http.events",
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
            warnings.warn(
                f"'from openrouter_registry import {name}' is deprecated and goes away in 0.2: "
                f"use 'from openrouter_registry.plugin import {name}'",
                DeprecationWarning,
                stacklevel=2,
            )
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
        warnings.warn(
            f"the module openrouter_registry.{name} is deprecated and goes away in 0.2: import from {instead}",
            DeprecationWarning,
            stacklevel=2,
        )
        source = importlib.import_module(f".{new}", __name__)
        module.__dict__.update({k: v for k, v in vars(source).items() if not k.startswith("__")})
        module.__doc__ = f"Deprecated alias of the internal module openrouter_registry.{new}; import from {instead}."


sys.meta_path.append(_OldModule)

if TYPE_CHECKING:
    from .batch.run import BatchError as BatchError, BatchRow as BatchRow, BatchRun as BatchRun, BatchSummary as BatchSummary, ConcurrencyReport as ConcurrencyReport
    from .engine.calls import TextStream as TextStream
    from .errors import APIError as APIError, AuthenticationError as AuthenticationError, BadRequestError as BadRequestError, ContextLengthError as ContextLengthError, ConfigurationError as ConfigurationError, ConnectionError as ConnectionError, CertificateError as CertificateError, UnsafeFileError as UnsafeFileError, HeaderError as HeaderError, InsufficientCreditsError as InsufficientCreditsError, MissingAPIKeyError as MissingAPIKeyError, ModelNotAvailableError as ModelNotAvailableError, ModerationError as ModerationError, OpenRouterError as OpenRouterError, PluginError as PluginError, ProviderError as ProviderError, InvalidResponseError as InvalidResponseError, RateLimitError as RateLimitError, SettingsError as SettingsError, StructuredOutputError as StructuredOutputError, TimeoutError as TimeoutError, PoolTimeoutError as PoolTimeoutError, TruncatedOutputError as TruncatedOutputError
    from .http.events import RetryEvent as RetryEvent, observe_retries as observe_retries
    from .models.catalog import Catalog as Catalog, ModelInfo as ModelInfo, Pricing as Pricing
    from .models.pricing import CostEstimate as CostEstimate
    from .plugins.registry import PluginInfo as PluginInfo, Registry as Registry, Resolution as Resolution, get_registry as get_registry
    from .result import CostSource as CostSource, EmbeddingResult as EmbeddingResult, GenerationResult as GenerationResult, Usage as Usage
    from .service import NLPServices as NLPServices, OpenRouterService as OpenRouterService
    from .settings import Secret as Secret, Settings as Settings
