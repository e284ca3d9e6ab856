"""openrouter-registry plugin for OpenAI's GPT family on OpenRouter.

GPT-4o and GPT-4o-mini honour strict ``json_schema`` and answer clean JSON, so this plugin's parser
is a fast path: plain ``json.loads`` for ``openai/`` models, passing anything else to the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openrouter_registry import Candidate, Generator, ModelTable, Settings, hookimpl

__all__ = ["OpenRouterGPT", "OpenRouterGPT4O", "OpenRouterGPT4OMini", "TABLE"]


class OpenRouterGPT(Generator):
    """Any OpenAI model on OpenRouter (``openai/gpt-*``, ``openai/o*``, ``openai/chatgpt-*``)."""

    structured_modes = ("json_schema", "json_object", "prompt")
    description = "OpenAI GPT family"


class OpenRouterGPT4O(OpenRouterGPT):
    """``openai/gpt-4o``: 128K context, 16,384 output tokens, strict json_schema."""

    context_window = 128_000
    max_output_tokens = 16_384
    description = "OpenAI GPT-4o"


class OpenRouterGPT4OMini(OpenRouterGPT):
    """``openai/gpt-4o-mini``: 128K context, 16,384 output tokens, strict json_schema."""

    context_window = 128_000
    max_output_tokens = 16_384
    description = "OpenAI GPT-4o mini"


_DATE = r"(-\d{4}-\d{2}-\d{2})?"

TABLE = ModelTable(
    exact={"openai/gpt-4o": OpenRouterGPT4O, "openai/gpt-4o-mini": OpenRouterGPT4OMini},
    families=[
        (rf"openai/gpt-4o-mini{_DATE}", OpenRouterGPT4OMini),
        (rf"openai/gpt-4o{_DATE}", OpenRouterGPT4O),
        (r"openai/(gpt|chatgpt|o\d)[\w.\-]*", OpenRouterGPT),
    ],
)


@hookimpl
def resolve_generator(model: str, settings: Settings) -> Candidate | None:
    return TABLE.match(model)


@hookimpl
def claimed_models() -> list[str]:
    return TABLE.claimed()


@hookimpl
def parse_structured(model: str, text: str, schema: Mapping[str, Any] | None) -> Any | None:
    if not model.lower().startswith("openai/"):
        return None
    from openrouter_registry.structured import parse_clean_json

    return parse_clean_json(text, schema)  # None when not clean JSON: the core's repairing parser tries
