"""openrouter-registry plugin for Anthropic's Claude family on OpenRouter.

Claude 3.5 Sonnet has no JSON mode on OpenRouter, so it is asked through the prompt, with the reply
prefilled with ``{`` (an assistant message last, which Anthropic models continue). Claude's habit is
to wrap JSON in prose or in a ```json fence; this plugin's parser takes the fenced or embedded block.
Anthropic caches only what ``cache_control`` markers close (at most 4; a minimum prefix per model): the
plugin states that policy, and the core places the markers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from openrouter_registry.plugin import CachePolicy, Generator, Mode, ModelTable, family_hooks, parse_embedded_json

__all__ = ["OpenRouterClaude", "OpenRouterClaude35Sonnet", "TABLE"]

PREFILL = "{"


def _wants_object(schema: Mapping[str, Any] | None) -> bool:
    return schema is not None and (schema.get("type") == "object" or "properties" in schema)


class OpenRouterClaude(Generator):
    """Any Anthropic model on OpenRouter. Newer Claude models accept json_schema; older ones fall back
    to the prompt, with the reply prefilled with ``{``."""

    structured_modes: ClassVar[tuple[Mode, ...]] = ("json_schema", "prompt")
    description = "Anthropic Claude family"
    #: Explicit breakpoints; 1,024 tokens is the minimum prefix of Sonnet 3.5-4.6 and Opus 4/4.1.
    cache_policy: ClassVar[CachePolicy | None] = CachePolicy("explicit", max_breakpoints=4, min_tokens=1024, ttls=("1h",))

    def prompt_cache_policy(self) -> CachePolicy:
        """Newer Opus and Haiku models cache only from 4,096 tokens, Haiku 3.5 from 2,048: the core's
        table knows them; the family's own statement serves the rest."""
        from openrouter_registry.plugin import policy_for

        listed = policy_for(self.model)
        stated = self.cache_policy
        return listed if stated is None or listed.min_tokens > stated.min_tokens else stated

    def shape_messages(
        self, messages: Sequence[Mapping[str, Any]], mode: Mode, schema: Mapping[str, Any] | None
    ) -> list[dict[str, Any]]:
        shaped = super().shape_messages(messages, mode, schema)
        if mode == "prompt" and _wants_object(schema) and shaped and shaped[-1].get("role") != "assistant":
            shaped.append({"role": "assistant", "content": PREFILL})
        return shaped

    def finish_text(self, text: str, mode: Mode, schema: Mapping[str, Any] | None) -> str:
        if mode == "prompt" and _wants_object(schema) and not text.lstrip().startswith(PREFILL):
            return PREFILL + text
        return text


class OpenRouterClaude35Sonnet(OpenRouterClaude):
    """``anthropic/claude-3.5-sonnet``: 200K context, 8,192 output tokens, no JSON mode on OpenRouter."""

    context_window = 200_000
    max_output_tokens = 8_192
    structured_modes = ("prompt",)
    description = "Anthropic Claude 3.5 Sonnet"


TABLE = ModelTable(
    exact={"anthropic/claude-3.5-sonnet": OpenRouterClaude35Sonnet},
    aliases={"anthropic/claude-3-5-sonnet": "anthropic/claude-3.5-sonnet"},
    families=[(r"anthropic/claude-[\w.\-]+", OpenRouterClaude)],
)


resolve_generator, claimed_models, parse_structured = family_hooks(TABLE, parse_embedded_json, prefix="anthropic/")
