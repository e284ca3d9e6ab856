"""Pre-flight, before any paid request: a prompt that clearly cannot fit raises ContextLengthError, and
max_tokens above the model's output limit is capped with one warning, for every model."""

from __future__ import annotations

import logging

import pytest

from openrouter_registry import BadRequestError, ContextLengthError
from openrouter_registry.models.preflight import estimate_tokens
from openrouter_registry.testing import FakeOpenRouter

from test_service import make_service
from test_service import server  # noqa: F401  (the fixture: a local server, modes forgotten)

MIXTRAL = "mistralai/mixtral-8x7b-instruct"  # no plugin; the catalog says: 32,768 context, 16,384 output

async def test_a_prompt_that_clearly_cannot_fit_is_refused_before_sending(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        with pytest.raises(ContextLengthError) as caught:
            await service.generate("word " * 60_000, model=MIXTRAL)  # 300,000 characters
    error = caught.value
    assert isinstance(error, BadRequestError)
    assert (error.context_window, error.estimated_tokens, error.max_tokens, error.attempts) == (32_768, 37_500, None, 0)
    assert str(error).startswith(
        "The prompt (at least 37500 tokens by an offline estimate) does not fit in the context window of 32768 tokens."
    )
    assert "model mistralai/mixtral-8x7b-instruct" in str(error) and "Shorten the prompt" in str(error)
    assert server.requests == []  # nothing sent, nothing billed

async def test_the_margin_never_blocks_a_prompt_that_may_fit(server: FakeOpenRouter) -> None:
    prompt = "word " * 32_000  # 160,000 characters: ~40,000 tokens at four per token, more than the window
    assert estimate_tokens(prompt) > 32_768
    async with make_service(server) as service:
        g = await service.generate(prompt, model=MIXTRAL)
    assert g.text and len(server.requests) == 1  # the estimate may be wrong: OpenRouter decides

async def test_max_tokens_counts_toward_the_window(server: FakeOpenRouter) -> None:
    prompt = "word " * 40_000  # at least 25,000 tokens
    async with make_service(server) as service:
        with pytest.raises(ContextLengthError, match="plus max_tokens 16384"):
            await service.generate(prompt, model=MIXTRAL, max_tokens=16_384)
        await service.generate(prompt, model=MIXTRAL, max_tokens=1_000)
    assert [r.body["max_tokens"] for r in server.requests] == [1_000]

async def test_a_plugins_window_is_checked_without_the_catalog(server: FakeOpenRouter) -> None:
    async with make_service(server, catalog=False) as service:
        with pytest.raises(ContextLengthError, match="context window of 200000 tokens"):
            await service.generate("x" * 1_700_000, model="anthropic/claude-3.5-sonnet")
        await service.generate("x" * 1_700_000, model="acme/unlisted")  # unknown window: nothing to check
    assert len(server.requests) == 1

async def test_streams_are_checked_too(server: FakeOpenRouter) -> None:
    async with make_service(server) as service:
        await service.load_catalog()
        with pytest.raises(ContextLengthError):
            service.stream("word " * 60_000, model=MIXTRAL)
    assert server.requests == []

async def test_max_tokens_above_the_output_limit_is_capped_with_one_warning(
    server: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_service(server) as service:
        with caplog.at_level(logging.WARNING, "openrouter_registry"):
            await service.generate("hi", model=MIXTRAL, max_tokens=20_000)
            await service.generate("hi", model=MIXTRAL, max_tokens=20_000)
    assert [r.body["max_tokens"] for r in server.requests] == [16_384, 16_384]
    warnings = [r.getMessage() for r in caplog.records if "output limit" in r.getMessage()]
    assert warnings == [
        "max_tokens 20000 is above the output limit of mistralai/mixtral-8x7b-instruct (16384 tokens); sending 16384"
    ]
