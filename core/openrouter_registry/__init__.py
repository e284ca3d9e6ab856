"""openrouter-registry: one registry of pluggable generators for every OpenRouter model.

    from openrouter_registry import NLPServices, get_registry

    get_registry().resolve("openai/gpt-4o").generator      # which generator serves a model
    async with NLPServices.openrouter() as service:         # structured generation
        result = await service.generate("...", schema=MY_SCHEMA)

Importing this package is cheap: every name below is imported on first access (PEP 562), and
plugins are discovered only when the registry is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # hooks and plugin-author API
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "Candidate": "matching",
    "Match": "matching",
    "ModelTable": "matching",
    "Generator": "generator",
    "Settings": "settings",
    "Secret": "settings",
    # registry
    "Registry": "registry",
    "Resolution": "registry",
    "PluginInfo": "registry",
    "get_registry": "registry",
    # generation
    "NLPServices": "service",
    "OpenRouterService": "service",
    "GenerationResult": "result",
    "Usage": "result",
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
    "StructuredOutputError": "errors",
    "TruncatedOutputError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openrouter_registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .errors import APIError as APIError, AuthenticationError as AuthenticationError, BadRequestError as BadRequestError, ContextLengthError as ContextLengthError, ConfigurationError as ConfigurationError, ConnectionError as ConnectionError, HeaderError as HeaderError, InsufficientCreditsError as InsufficientCreditsError, MissingAPIKeyError as MissingAPIKeyError, ModelNotAvailableError as ModelNotAvailableError, ModerationError as ModerationError, OpenRouterError as OpenRouterError, PluginError as PluginError, ProviderError as ProviderError, InvalidResponseError as InvalidResponseError, RateLimitError as RateLimitError, SettingsError as SettingsError, StructuredOutputError as StructuredOutputError, TimeoutError as TimeoutError, PoolTimeoutError as PoolTimeoutError, TruncatedOutputError as TruncatedOutputError
    from .generator import Generator as Generator
    from .hookspecs import hookimpl as hookimpl, hookspec as hookspec
    from .matching import Candidate as Candidate, Match as Match, ModelTable as ModelTable
    from .registry import PluginInfo as PluginInfo, Registry as Registry, Resolution as Resolution, get_registry as get_registry
    from .result import GenerationResult as GenerationResult, Usage as Usage
    from .service import NLPServices as NLPServices, OpenRouterService as OpenRouterService
    from .settings import Secret as Secret, Settings as Settings
