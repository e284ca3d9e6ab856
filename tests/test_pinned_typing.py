"""The typed signatures of generate and stream name every option the calls take: the tool and reasoning
options were missing from the `CallOptions` they unpack, so documented code (``tools=[add]``) failed
``mypy --strict``."""

from __future__ import annotations

import inspect

from openrouter_registry.engine.calls import Engine
from openrouter_registry.engine.options import CallOptions, GenerateOptions


def _options(function: object) -> set[str]:
    return {name for name, p in inspect.signature(function).parameters.items()  # type: ignore[arg-type]
            if p.kind is p.KEYWORD_ONLY and name != "schema"}


def test_the_typed_options_of_generate_and_stream_are_the_options_they_take() -> None:
    assert set(GenerateOptions.__annotations__) == _options(Engine.generate)
    assert set(CallOptions.__annotations__) == _options(Engine.stream)
    assert {"tools", "tool_choice", "parallel_tool_calls", "reasoning"} <= set(CallOptions.__annotations__)
