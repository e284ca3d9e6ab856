"""Prompt caching: the policy per family, breakpoints on plain calls, Parlant prompts split at their
sections, OPENROUTER_PROMPT_CACHE=off, and the local server billing cache reads and writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openrouter_registry import BadRequestError, OpenRouterService, Settings
from openrouter_registry.adapters.prompts import prompt_parts
from openrouter_registry.models.caching import AUTOMATIC, NO_CACHE_POLICY, CachePolicy, place_breakpoints, policy_for
from openrouter_registry.testing import FakeOpenRouter, price_of
from openrouter_registry.testing.caching import PromptCache
from openrouter_registry.testing.schemas import CITY

CLAUDE = "anthropic/claude-3.5-sonnet"
ANTHROPIC = policy_for(CLAUDE)
LONG = "You are a careful assistant for an airline. " * 200  # ~8,800 characters, ~2,200 tokens


@pytest.fixture
def server() -> Any:
    with FakeOpenRouter() as fake:
        yield fake


def service_for(server: FakeOpenRouter, **settings: Any) -> OpenRouterService:
    return OpenRouterService(Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, catalog="off", **settings))


def markers(body: Any) -> list[tuple[int, int]]:
    """(message index, part index) of every cache_control in a request body."""
    found = []
    for m, message in enumerate(body["messages"]):
        content = message.get("content")
        if isinstance(content, list):
            found += [(m, p) for p, part in enumerate(content) if "cache_control" in part]
    return found


# --- the policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kind", "minimum"),
    [
        ("anthropic/claude-3.5-sonnet", "explicit", 1024),
        ("anthropic/claude-opus-4.5", "explicit", 4096),
        ("anthropic/claude-3.5-haiku", "explicit", 2048),
        ("qwen/qwen3-max", "explicit", 1024),
        ("google/gemini-2.5-pro", "last_only", 4096),
        ("google/gemini-2.5-flash", "last_only", 1024),
        ("openai/gpt-4o", "automatic", 1024),
        ("deepseek/deepseek-chat", "automatic", 1024),
        ("x-ai/grok-4", "automatic", 1024),
        ("moonshotai/kimi-k2", "automatic", 1024),
        ("mistralai/mixtral-8x7b-instruct", "none", 0),
    ],
)
def test_policy_table(model: str, kind: str, minimum: int) -> None:
    policy = policy_for(model)
    assert (policy.kind, policy.min_tokens) == (kind, minimum)
    assert policy.marks == (kind in ("explicit", "last_only"))


def test_the_claude_plugin_states_its_policy() -> None:
    from openrouter_registry import get_registry

    settings = Settings.from_env({}, catalog="off")
    sonnet = get_registry().resolve(CLAUDE, settings).generator
    opus = get_registry().resolve("anthropic/claude-opus-4.5", settings).generator
    assert type(sonnet).cache_policy == CachePolicy("explicit", max_breakpoints=4, min_tokens=1024, ttls=("1h",))
    assert sonnet.prompt_cache_policy().min_tokens == 1024
    assert opus.prompt_cache_policy().min_tokens == 4096  # the table's stricter minimum wins


# --- breakpoints on plain calls ------------------------------------------------------------------------


def test_system_and_last_user_message_are_marked() -> None:
    messages = [
        {"role": "system", "content": LONG},
        {"role": "user", "content": "Where is the Louvre?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And the Prado?"},
    ]
    marked = place_breakpoints(messages, ANTHROPIC)
    assert marked[0]["content"] == [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    assert marked[3]["content"] == [{"type": "text", "text": "And the Prado?", "cache_control": {"type": "ephemeral"}}]
    assert marked[1] == messages[1] and marked[2] == messages[2]
    assert messages[0]["content"] == LONG  # the caller's list is not changed


def test_a_prefix_below_the_minimum_gets_no_marker() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert place_breakpoints(messages, ANTHROPIC) is messages
    long_user = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": LONG}]
    assert markers({"messages": place_breakpoints(long_user, ANTHROPIC)}) == [(1, 0)]  # only the one that reaches it


def test_the_callers_markers_are_kept_exactly() -> None:
    mine = [
        {"role": "system", "content": [{"type": "text", "text": LONG}]},
        {"role": "user", "content": [{"type": "text", "text": "Q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
    ]
    assert place_breakpoints(mine, ANTHROPIC) == mine
    hinted = [{"role": "system", "content": LONG, "cache_control": {"type": "ephemeral"}}, {"role": "user", "content": "Q"}]
    moved = place_breakpoints(hinted, ANTHROPIC)
    assert moved == [
        {"role": "system", "content": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Q"},
    ]


def test_last_only_and_automatic_policies() -> None:
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": LONG}]
    gemini = place_breakpoints(messages, policy_for("google/gemini-2.5-flash"))
    assert markers({"messages": gemini}) == [(1, 0)]  # one marker: only the last counts
    assert place_breakpoints(messages, AUTOMATIC) is messages
    assert place_breakpoints(messages, NO_CACHE_POLICY) is messages
    ttl = place_breakpoints(messages, ANTHROPIC, ttl="1h")
    assert ttl[0]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert "ttl" not in place_breakpoints(messages, policy_for("qwen/qwen3-max"), ttl="1h")[0]["content"][0]["cache_control"]


async def test_a_claude_call_is_marked_and_the_second_one_reads_the_cache(server: FakeOpenRouter) -> None:
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Where is the Louvre?"}]
    async with service_for(server) as service:
        first = await service.generate(messages=messages, schema=CITY, model=CLAUDE)
        second = await service.generate(messages=messages, schema=CITY, model=CLAUDE)
    sent = server.requests[0].body
    assert markers(sent) == [(0, 0), (1, 0)]
    system = sent["messages"][0]["content"][0]["text"]
    assert system.startswith(LONG) and "JSON Schema:" in system  # the schema instruction is inside the cached prefix
    assert first.usage.cached_tokens == 0 and second.usage.cached_tokens > 2000
    assert server.requests[0].raw == server.requests[1].raw  # the same bytes: the prefix is stable
    prompt_price = price_of(CLAUDE)[0]
    assert first.cost is not None and second.cost is not None and second.cost < first.cost
    # reads at 0.1x the input price: the second call's input costs about a tenth
    assert float(second.cost) == pytest.approx(float(first.cost) - second.usage.cached_tokens * prompt_price * (1.25 - 0.1), rel=0.02)


async def test_off_sends_todays_bytes(server: FakeOpenRouter) -> None:
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Where is the Louvre?"}]
    async with service_for(server, prompt_cache="off") as service:
        await service.generate(messages=messages, schema=CITY, model=CLAUDE)
    body = server.requests[0].body
    assert markers(body) == [] and all(isinstance(m["content"], str) for m in body["messages"])
    assert body["messages"][0]["content"].startswith(LONG) and body["messages"][-1] == {"role": "assistant", "content": "{"}
    assert b"cache_control" not in server.requests[0].raw


async def test_an_automatic_model_is_sent_unchanged_and_read_in_128_token_steps(server: FakeOpenRouter) -> None:
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Where is the Louvre?"}]
    async with service_for(server) as service:
        await service.generate(messages=messages, schema=CITY, model="openai/gpt-4o-mini")
        again = await service.generate(messages=messages, schema=CITY, model="openai/gpt-4o-mini")
    assert b"cache_control" not in server.requests[0].raw
    assert again.usage.cached_tokens >= 1024 and again.usage.cached_tokens % 128 == 0
    # the whole prompt but its last token is shared, the schema sent in response_format included
    assert again.usage.cached_tokens == (again.usage.prompt_tokens - 1) // 128 * 128


async def test_the_schema_is_the_front_of_the_cached_prefix(server: FakeOpenRouter) -> None:
    # OpenAI: "the structured output schema serves as a prefix to the system message and can be cached",
    # so the same messages under another schema read nothing
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Where is the Louvre?"}]
    other = {**CITY, "properties": {**CITY["properties"], "population": {"type": "integer"}}}
    async with service_for(server) as service:
        await service.generate(messages=messages, schema=CITY, model="openai/gpt-4o-mini")
        changed = await service.generate(messages=messages, schema=other, model="openai/gpt-4o-mini")
    assert changed.usage.cached_tokens == 0


# --- the local server's bill ---------------------------------------------------------------------------


def parts(*texts: str, marked: tuple[int, ...] = (), ttl: str | None = None) -> list[dict[str, Any]]:
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": t, **({"cache_control": control} if i in marked else {})} for i, t in enumerate(texts)]


def test_server_writes_then_reads_with_the_lookback() -> None:
    clock = [0.0]
    cache = PromptCache(clock=lambda: clock[0])
    turn1 = [{"role": "user", "content": parts(LONG, "event 1", marked=(1,))}]
    first = cache.bill(CLAUDE, turn1)
    assert (first.cached_tokens, first.cache_write_tokens) == (0, 2202)
    turn2 = [{"role": "user", "content": parts(LONG, "event 1", "event 2", marked=(2,))}]
    second = cache.bill(CLAUDE, turn2)
    assert second.cached_tokens == 2202 and second.cache_write_tokens == 2  # read back one block before
    clock[0] = 301.0  # past the 5-minute TTL of turn 1's entry, and of turn 2's
    assert cache.bill(CLAUDE, turn2).cached_tokens == 0


def test_server_reads_only_answered_prefixes_and_bills_the_1h_ttl() -> None:
    clock = [0.0]
    cache = PromptCache(clock=lambda: clock[0])
    request = [{"role": "user", "content": parts(LONG, "q", marked=(1,), ttl="1h")}]
    first = cache.bill(CLAUDE, request, answered_in=2.0)
    assert first.write_price == 2.0
    assert cache.bill(CLAUDE, request).cached_tokens == 0  # the first one is still being answered
    clock[0] = 2.5
    assert cache.bill(CLAUDE, request).cached_tokens == 2201


def test_server_caches_tools_and_schema_as_the_prefix() -> None:
    schema = '{"name":"answer","schema":{"type":"object"}}' * 70  # 3,080 characters, 770 tokens
    question = [{"role": "user", "content": "Which city has the Louvre? " * 74}]  # 1,998 characters, 500 tokens
    cache = PromptCache()
    assert cache.bill("openai/gpt-4o", question, preamble=schema).cached_tokens == 0
    # 1,271 tokens shared, all but the last one read: 1,152 in 128-token steps; the question alone (501) is
    # under the minimum
    assert cache.bill("openai/gpt-4o", question, preamble=schema).cached_tokens == 1152
    assert cache.bill("openai/gpt-4o", question, preamble=schema.replace("answer", "reply")).cached_tokens == 0
    assert cache.bill("openai/gpt-4o-mini", question).cached_tokens == 0
    # Anthropic: a breakpoint closes the tools before the messages; other tools are another prefix
    tools = '[{"type":"function","function":{"name":"lookup"}}]' * 20  # 1,000 characters, 250 tokens
    marked = [{"role": "user", "content": parts(LONG, marked=(0,))}]
    first = cache.bill(CLAUDE, marked, preamble=tools)
    assert (first.cached_tokens, first.cache_write_tokens) == (0, 250 + 2200)
    assert cache.bill(CLAUDE, marked, preamble=tools).cached_tokens == 2450
    other = cache.bill(CLAUDE, marked, preamble=tools.replace("lookup", "search"))
    assert (other.cached_tokens, other.cache_write_tokens) == (0, 2450)


def test_server_refuses_five_breakpoints_and_ignores_short_ones(server: FakeOpenRouter) -> None:
    cache = PromptCache()
    assert cache.bill(CLAUDE, [{"role": "user", "content": parts("a", "b", "c", "d", "e", marked=(0, 1, 2, 3, 4))}]).error
    short = cache.bill(CLAUDE, [{"role": "user", "content": parts("short", marked=(0,))}])
    assert (short.cached_tokens, short.cache_write_tokens) == (0, 0)


async def test_five_breakpoints_are_a_typed_400(server: FakeOpenRouter) -> None:
    messages = [{"role": "user", "content": parts("a", "b", "c", "d", "e", marked=(0, 1, 2, 3, 4))}]
    async with service_for(server) as service:
        with pytest.raises(BadRequestError, match="maximum of 4 blocks with cache_control"):
            await service.generate(messages=messages, model=CLAUDE)


# --- Parlant prompts ---------------------------------------------------------------------------------


def builder(events: list[str], calls: list[str] | None = None) -> Any:
    from parlant.core.engines.alpha.prompt_builder import BuiltInSection, PromptBuilder, SectionStatus

    built = PromptBuilder(on_build=(calls.append if calls is not None else None))
    built.add_section("task-instructions", "You evaluate guidelines. Rules: {rules}", props={"rules": LONG})
    built.add_section("few-shots", "Example 1: ... Example 2: ...")
    built._add_history_section(interaction_events=events)
    built.add_section(BuiltInSection.GUIDELINES, "Guidelines matched this turn: {g}", props={"g": "be kind"},
                      status=SectionStatus.ACTIVE)
    built.add_section("output", "Answer in JSON.")
    return built


def test_parts_join_to_build_with_breakpoints_after_static_sections_and_the_last_event() -> None:
    calls: list[str] = []
    prompt = builder(['{"source": "customer", "data": "hi"}', '{"source": "ai_agent", "data": "hello"}'], calls)
    text = prompt.build()
    pieces = prompt_parts(prompt, text, ANTHROPIC)
    assert pieces is not None and "".join(p["text"] for p in pieces) == text
    assert calls == [text]  # on_build once: the parts never build again
    closed = [p["text"] for p in pieces if "cache_control" in p]
    assert len(closed) == 2
    static_end = text.index("\nThe following is a list of events")
    assert "".join(p["text"] for p in pieces[: pieces.index(next(p for p in pieces if "cache_control" in p)) + 1]) == text[:static_end]
    last_event = text.index("hello") + len("hello\"}'")
    marked_prefix = "".join(p["text"] for p in pieces[: [i for i, p in enumerate(pieces) if "cache_control" in p][1] + 1])
    assert marked_prefix == text[:last_event]


def test_no_parts_for_models_that_cache_by_themselves_or_short_prompts() -> None:
    prompt = builder(['{"a": 1}'])
    text = prompt.build()
    assert prompt_parts(prompt, text, AUTOMATIC) is None
    assert prompt_parts(prompt, text, CachePolicy("explicit", min_tokens=100_000)) is None


async def test_the_next_turn_reads_this_turns_prefix(server: FakeOpenRouter) -> None:
    events = ['{"source": "customer", "data": "I need to change my flight"}', '{"source": "ai_agent", "data": "Sure"}']
    async with service_for(server) as service:
        for turn in (events, [*events, '{"source": "customer", "data": "To Friday"}']):
            prompt = builder(turn)
            text = prompt.build()
            pieces = prompt_parts(prompt, text, ANTHROPIC)
            assert pieces is not None
            result = await service.generate(messages=[{"role": "user", "content": pieces}], schema=CITY, model=CLAUDE)
    first, second = (json.loads(r.raw) for r in server.requests)
    assert markers(first) and markers(second)
    assert result.usage.cached_tokens >= 2200  # the static sections and turn 1's history, read in turn 2


# --- what caching saved ----------------------------------------------------------------------------------


async def test_results_say_what_caching_saved_from_the_catalog(server: FakeOpenRouter) -> None:
    from decimal import Decimal

    from openrouter_registry.models.catalog import Pricing
    from openrouter_registry.models.pricing import cache_saving
    from openrouter_registry.result import Usage

    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Where is the Louvre?"}]
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=None)
    async with OpenRouterService(settings) as service:  # the catalog on: its cache prices price the saving
        cold = await service.generate(messages=messages, schema=CITY, model=CLAUDE)
        warm = await service.generate(messages=messages, schema=CITY, model=CLAUDE)
    price = Decimal(repr(price_of(CLAUDE)[0]))
    written, read = cold.usage.cache_write_tokens, warm.usage.cached_tokens
    assert written > 2000 and read == written
    assert cold.cache_saving == -written * (price * Decimal("1.25") - price)  # a cold write costs 25% more
    assert warm.cache_saving == read * (price - price * Decimal("0.1"))  # a read saves 90%
    plain = Pricing(prompt=Decimal("0.000003"), completion=Decimal("0.000015"))
    assert cache_saving(plain, Usage(prompt_tokens=100, cached_tokens=50)) is None  # no read price listed
    assert cache_saving(plain, Usage(prompt_tokens=100)) == 0
    assert cache_saving(None, Usage(prompt_tokens=100, cached_tokens=50)) is None


async def test_the_batch_summary_and_parlant_usage_carry_the_cache(server: FakeOpenRouter) -> None:
    from openrouter_registry.adapters.parlant import usage_info

    rows = [{"id": i, "messages": [{"role": "system", "content": LONG}, {"role": "user", "content": f"Q{i}"}]}
            for i in range(3)]
    settings = Settings.from_env({}, base_url=server.base_url, api_key=server.api_key, cache_dir=None)
    async with OpenRouterService(settings) as service:
        run = service.batch(rows, model=CLAUDE, concurrency=1)
        done = [row async for row in run]
    summary = run.summary()
    assert len(done) == 3 and summary.cache_write_tokens > 2000 and summary.cached_tokens > 4000
    assert summary.cache_saving == sum(r.result.cache_saving for r in done if r.result is not None) > 0
    data = summary.to_dict()
    assert data["tokens"]["cached"] == summary.cached_tokens and data["cache_saving_usd"] == str(summary.cache_saving)
    first = done[0].result
    assert first is not None
    extra = usage_info(first.usage, first.cost, first.cache_saving).extra
    assert extra["cache_write_input_tokens"] == first.usage.cache_write_tokens
    assert extra["cache_saving_micro_usd"] == round(first.cache_saving * 1_000_000)
