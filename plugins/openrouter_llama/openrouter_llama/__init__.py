"""openrouter-registry plugin for Meta's Llama family on OpenRouter.

Llama models like to start with a preamble ("Here is the JSON:"), leave trailing commas and write
Python literals (``True``, ``None``, single quotes). This plugin's parser reads the value after the
preamble as a Python literal when it is not JSON, and passes anything else on to the core.
"""

from __future__ import annotations

from openrouter_registry.plugin import Generator, ModelTable, family_hooks, parse_python_literal

__all__ = ["OpenRouterLlama", "OpenRouterLlama33_70B", "TABLE"]


class OpenRouterLlama(Generator):
    """Any Meta Llama model on OpenRouter; JSON support depends on the provider, so every mode is
    tried, best first, and the one that works is remembered."""

    structured_modes = ("json_schema", "json_object", "prompt")
    description = "Meta Llama family"


class OpenRouterLlama33_70B(OpenRouterLlama):
    """``meta-llama/llama-3.3-70b-instruct``: 131,072 context (OpenRouter's figure), 16,384 output tokens."""

    context_window = 131_072
    max_output_tokens = 16_384
    description = "Meta Llama 3.3 70B Instruct"


TABLE = ModelTable(
    exact={"meta-llama/llama-3.3-70b-instruct": OpenRouterLlama33_70B},
    families=[(r"meta-llama/llama-[\w.\-]+", OpenRouterLlama)],
)


resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_python_literal, prefix="meta-llama/")
