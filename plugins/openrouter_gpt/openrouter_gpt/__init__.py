"""openrouter-registry plugin for OpenAI's GPT family on OpenRouter.

GPT-4o and GPT-4o-mini honour strict ``json_schema`` and answer clean JSON, so this plugin's parser
is a fast path (``parse_clean_json``: one strict, depth-bounded decode) for ``openai/`` models,
passing anything else to the core. The plugin is its generators, its table and that parser.
"""

from __future__ import annotations

from openrouter_registry.plugin import Generator, ModelTable, family_hooks, parse_clean_json

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


resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_clean_json, prefix="openai/")
