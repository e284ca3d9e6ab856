"""The ``reasoning`` request option, checked before anything is sent.

    check_reasoning({"effort": "high"}, generator, max_tokens=4000)   # {'effort': 'high'}

OpenRouter takes ``reasoning: {effort | max_tokens, exclude, enabled}``. The shape is checked always;
where the model catalog knows the model's ``reasoning`` facts, the value is checked against them too:

- a model whose reasoning is mandatory refuses ``enabled: false`` (and ``effort: "none"``);
- an effort the model does not list is refused, naming the efforts it lists;
- for Anthropic models, ``max_tokens`` must exceed the reasoning budget: the ``reasoning.max_tokens``
  given, or for an effort ``max(min(max_tokens * ratio, 128000), 1024)``, so at least 1025 tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .generator import Generator

__all__ = ["check_reasoning", "EFFORTS", "MIN_ANTHROPIC_BUDGET"]

EFFORTS = ("max", "xhigh", "high", "medium", "low", "minimal", "none")
_KEYS = frozenset({"effort", "max_tokens", "exclude", "enabled", "context", "mode"})
#: The smallest reasoning budget Anthropic models take.
MIN_ANTHROPIC_BUDGET = 1024


def _shape(reasoning: Any) -> dict[str, Any]:
    if isinstance(reasoning, str):  # reasoning="high": the effort alone
        reasoning = {"effort": reasoning}
    if not isinstance(reasoning, Mapping):
        raise ConfigurationError(
            "reasoning must be a dict such as {'effort': 'high'}, {'max_tokens': 2000}, {'exclude': True} or "
            f"{{'enabled': False}} (or an effort string), got {type(reasoning).__name__}"
        )
    unknown = sorted(set(reasoning) - _KEYS)
    if unknown:
        raise ConfigurationError(f"reasoning has unknown keys {unknown}; OpenRouter takes {sorted(_KEYS)}")
    effort, budget = reasoning.get("effort"), reasoning.get("max_tokens")
    if effort is not None and effort not in EFFORTS:
        raise ConfigurationError(f"reasoning.effort must be one of {', '.join(EFFORTS)}, got {effort!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ConfigurationError(f"reasoning.max_tokens must be a positive integer, got {budget!r}")
    if effort is not None and budget is not None:
        raise ConfigurationError("reasoning takes either effort or max_tokens, not both")
    for flag in ("exclude", "enabled"):
        if reasoning.get(flag) is not None and not isinstance(reasoning[flag], bool):
            raise ConfigurationError(f"reasoning.{flag} must be True or False, got {reasoning[flag]!r}")
    return dict(reasoning)


def check_reasoning(reasoning: Any, generator: Generator, max_tokens: int | None) -> dict[str, Any] | None:
    """``reasoning`` as sent (None stays None), or a `ConfigurationError` saying what to change."""
    if reasoning is None:
        return None
    value = _shape(reasoning)
    model = generator.model
    info = generator.model_info
    facts = info.reasoning if info is not None else None
    effort = value.get("effort")
    if facts is not None:
        if facts.mandatory and (value.get("enabled") is False or effort == "none"):
            raise ConfigurationError(
                f"{model} always reasons (its reasoning is mandatory): it refuses reasoning "
                f"{'enabled: False' if value.get('enabled') is False else 'effort none'}; leave it on, or use "
                "{'exclude': True} to keep the reasoning out of the reply"
            )
        efforts = facts.supported_efforts
        if effort is not None and effort != "none" and efforts is not None and effort not in efforts:
            raise ConfigurationError(
                f"{model} does not take reasoning effort {effort!r}; the catalog lists "
                f"{', '.join(efforts) if efforts else 'no efforts'}"
            )
    limit = generator.max_tokens_for(max_tokens)
    if model.startswith("anthropic/") and limit is not None and value.get("enabled") is not False and effort != "none":
        budget = value.get("max_tokens")
        if budget is not None and limit <= budget:
            raise ConfigurationError(
                f"max_tokens {limit} must exceed the reasoning budget (reasoning.max_tokens {budget}) for {model}: "
                "Anthropic counts the reasoning inside max_tokens; raise max_tokens or lower reasoning.max_tokens"
            )
        if effort is not None and limit <= MIN_ANTHROPIC_BUDGET:
            raise ConfigurationError(
                f"max_tokens {limit} is too small for reasoning effort {effort!r} on {model}: the budget is "
                f"max(min(max_tokens x ratio, 128000), {MIN_ANTHROPIC_BUDGET}) tokens and max_tokens must exceed "
                f"it; give max_tokens above {MIN_ANTHROPIC_BUDGET}"
            )
    return value
