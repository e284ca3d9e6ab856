"""What a Parlant turn costs, with and without prompt caching: a real Parlant server on this library.

    .venv/bin/python benchmarks/bench_parlant_cost.py [--models anthropic/claude-3.5-sonnet,openai/gpt-4o] [--turns 6]

For each model, a Parlant server (a subprocess, offline, ``PARLANT_HOME`` in a temporary folder) runs an
airline customer-service agent with 15 guidelines, 2 glossary terms and a journey of 4 states, against the
bundled local server (`FakeOpenRouter`), which bills prompt caching like OpenRouter (Anthropic: breakpoints,
writes 1.25x, reads 0.1x; OpenAI: automatic from 1,024 tokens, reads 0.5x; tokens are characters / 4). Two
conversations of ``--turns`` customer messages each: the first one cold (the cache is emptied after the
server's start-up evaluations, so nothing is cached when the conversation starts), the second one warm (another
session of the same agent with another customer's messages, as in production: only what sessions share, such
as Parlant's per-schema instructions, is read from the first one's cache). Each model runs again with ``OPENROUTER_PROMPT_CACHE=off``, the
baseline for "requests per turn". The local server answers each Parlant prompt from the JSON skeleton at its end
(the ids of the guidelines and journey steps it asks about; see `answer`), so matching, the journey and the reply
run as with a model.

Per turn it prints chat requests, input tokens, tokens read from and written to the cache, and the input USD
at the model's list price without caching and as billed with it. Targets (issue 18): Claude saves at least
55% of input cost cold and 70% warm; gpt-4o at least 35% cold; requests per turn no higher than with caching
off; the exit status is 1 when one is missed (the savings are checked for 6-turn conversations only). Prices: Claude 3.5 Sonnet $3/M input, gpt-4o $2.50/M input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

LATENCY = 1.0  # seconds before the local server answers a request (--latency)
PRICES = {"anthropic/claude-3.5-sonnet": 3.0e-6, "openai/gpt-4o": 2.5e-6}
MULTIPLIERS = {"anthropic": (0.1, 1.25), "openai": (0.5, 1.0)}  # read, write
MESSAGES = [
    "Hi, I booked a flight to Lisbon for next Tuesday and I need to change it.",
    "My booking reference is QX7L2P.",
    "Can I move it to Friday instead? Same time if possible.",
    "What will that cost me? I have a standard economy fare.",
    "Also, can I add a checked bag to the new flight?",
    "Great, please confirm everything and send me the details by email.",
]
# the second (warm) conversation: another customer, so only what sessions share can be read from the cache
WARM_MESSAGES = [
    "Hello, I need to move my flight to Madrid that leaves this Thursday.",
    "The reference is ZK4M9R, booked under Jordan Lee.",
    "Could you put me on the Sunday morning flight instead?",
    "How much is the change fee on my standard economy ticket?",
    "And I'd like a window seat on the new flight, if one is free.",
    "Perfect, go ahead and confirm, and email me the new itinerary.",
]
GUIDELINES = [
    ("the customer wants to change a flight", "ask for the booking reference before anything else"),
    ("the customer gives a booking reference", "repeat it back to confirm it"),
    ("the customer asks about fees", "explain the change fee of the fare class, without guessing"),
    ("the customer asks for a refund", "explain the refund policy of their fare"),
    ("the customer is upset", "acknowledge the frustration before solving the problem"),
    ("the customer asks about baggage", "state the allowance of their fare and the price of an extra bag"),
    ("the customer asks for a seat change", "offer the seats available on the flight"),
    ("the customer mentions a medical need", "offer special assistance and explain how to request it"),
    ("the customer asks about loyalty points", "tell them their balance is shown in the app"),
    ("the customer asks about a delay", "give the latest estimated departure time"),
    ("the customer wants to speak to a human", "offer to transfer them to an agent"),
    ("the customer asks to confirm", "summarize every change before confirming"),
    ("the customer asks for an email", "confirm the email address on the booking"),
    ("the customer travels with a pet", "explain the pet policy and its fees"),
    ("the customer greets you", "greet them back and ask how you can help"),
]
TERMS = [
    ("Booking reference", "A six-character code that identifies a reservation, such as QX7L2P."),
    ("Standard economy", "The fare class with one free change (fee applies) and one cabin bag."),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the Parlant server (runs in its own process) ------------------------------------------------------


async def serve(port: int, tool_port: int, ready: Path) -> None:
    import parlant.sdk as p

    from openrouter_registry import NLPServices

    async with p.Server(port=port, tool_service_port=tool_port, nlp_service=NLPServices.openrouter) as server:
        agent = await server.create_agent(
            name="Skyline", description="The customer-service agent of Skyline Airways. Be precise and brief.",
            perceived_performance_policy=p.NullPerceivedPerformancePolicy(),
        )
        for condition, action in GUIDELINES:
            await agent.create_guideline(condition=condition, action=action)
        for name, description in TERMS:
            await agent.create_term(name=name, description=description)
        journey = await agent.create_journey(
            title="Change a flight", description="Move a booking to another date.",
            conditions=["the customer wants to change a flight"],
        )
        asked = await journey.initial_state.transition_to(chat_state="Ask for the booking reference")
        date = await asked.target.transition_to(chat_state="Ask for the new date", condition="the reference was given")
        fee = await date.target.transition_to(chat_state="State the change fee", condition="a date was chosen")
        await fee.target.transition_to(chat_state="Confirm the change", condition="the customer accepts the fee")
        ready.write_text(json.dumps({"agent_id": agent.id}))
    # leaving the block is where p.Server serves, until the process is terminated


# --- the upstream's answers ------------------------------------------------------------------------------
#
# The local server answers every schema with a valid instance. Parlant's prompts end with the JSON they
# want back ("OUTPUT FORMAT"), listing the ids of the guidelines, journey steps and events they ask about;
# an answer must use those ids, so the answer is that skeleton, with its placeholders filled from the valid
# instance, and each open yes/no answered no. A guideline "applies" when its condition shares a word with the
# customer's latest message, so
# the turns exercise what a real agent does (matching, journeys, a reply) and the count of requests per turn
# depends on the conversation, as it does with a real model.

FENCE = re.compile(r"```json\s*\n(.*?)```", re.S)
BARE_PLACEHOLDER = re.compile(r'(:\s*)(<[^"\n]*>)(\s*,?\s*)$', re.M)
STOPWORDS = frozenset("the a an to of for and or is are be it my me i you your customer agent asks about wants "
                      "with on in can this that their they them".split())
latest_message = {"text": ""}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in STOPWORDS}


def skeleton_of(messages: list[Any] | None) -> Any:
    """The last JSON block of the prompt that parses (Parlant's output format), or None."""
    import json_repair

    text = "\n".join(
        m["content"] if isinstance(m.get("content"), str)
        else "".join(part.get("text", "") for part in m.get("content") or [] if isinstance(part, dict))
        for m in messages or [] if isinstance(m, dict)
    )
    for block in reversed(FENCE.findall(text)):
        try:
            value = json_repair.loads(BARE_PLACEHOLDER.sub(lambda m: f'{m[1]}"{m[2]}"{m[3]}', block))
        except Exception:
            continue
        if isinstance(value, (dict, list)) and value:
            return value
    return None


def placeholder(value: Any) -> bool:
    return isinstance(value, str) and ("<" in value and ">" in value or value.strip() in ("", "..."))


def fill(valid: Any, skeleton: Any) -> Any:
    """``skeleton`` with its placeholders (and missing values) taken from ``valid``, of the same shape."""
    if isinstance(valid, dict) and isinstance(skeleton, dict):
        # a list the skeleton does not ask for (an optional one) is left empty: its items would carry
        # made-up ids
        out = {k: [] if isinstance(v, list) and k not in skeleton else v for k, v in valid.items()}
        for key, value in skeleton.items():
            out[key] = fill(valid.get(key, _ABSENT), value)
        if "applies" in out and isinstance(out.get("condition"), str):
            out["applies"] = bool(words(out["condition"]) & words(latest_message["text"]))
        return {k: v for k, v in out.items() if v is not _ABSENT}
    if isinstance(valid, list) and isinstance(skeleton, list):
        template = valid[0] if valid else _ABSENT
        return [fill(template, item) for item in skeleton]
    if valid is _ABSENT:  # an optional field the valid instance left out: the skeleton, made concrete
        if isinstance(skeleton, dict):
            return {k: fill(_ABSENT, v) for k, v in skeleton.items()}
        if isinstance(skeleton, list):
            return [fill(_ABSENT, v) for v in skeleton]
        if isinstance(skeleton, str) and "BOOL" in skeleton:
            return False
        return skeleton
    if isinstance(valid, bool):  # a yes/no the prompt leaves open ("<BOOL>"): no, the answer of nothing special
        return skeleton if isinstance(skeleton, bool) else False if isinstance(skeleton, str) else valid
    if isinstance(valid, (int, float)):
        return skeleton if isinstance(skeleton, (int, float)) and not isinstance(skeleton, bool) else valid
    if isinstance(valid, str):
        return skeleton if isinstance(skeleton, str) and not placeholder(skeleton) else valid
    return valid


_ABSENT: Any = object()


def answer(valid: Any, messages: list[Any] | None) -> Any:
    skeleton = skeleton_of(messages)
    if skeleton is None or type(skeleton) is not type(valid):
        return valid
    return fill(valid, skeleton)


# --- the driver --------------------------------------------------------------------------------------------


def bill(generations: list[dict[str, Any]], model: str) -> dict[str, float]:
    price = PRICES[model]
    read, write = MULTIPLIERS[model.split("/", 1)[0]]
    prompt = sum(g["tokens_prompt"] for g in generations)
    cached = sum(g.get("native_tokens_cached", 0) for g in generations)
    written = sum(g.get("native_tokens_cache_write", 0) for g in generations)
    return {
        "requests": len(generations), "input_tokens": prompt, "cached": cached, "written": written,
        "usd_plain": prompt * price, "usd_cached": ((prompt - cached - written) + cached * read + written * write) * price,
    }


def converse(model: str, turns: int, cache: str, work: Path, latency: float = LATENCY) -> dict[str, Any]:
    from openrouter_registry.testing import FakeOpenRouter
    from openrouter_registry.testing.caching import PromptCache

    # every answer takes LATENCY seconds, as a model's does: a prefix that a request writes is readable only
    # once that request was answered, so the requests that Parlant sends at once do not read each other's
    with FakeOpenRouter(latency=latency) as fake:
        fake.set_reply("*", answer)
        home = work / f"home-{model.replace('/', '-')}-{cache}"
        home.mkdir()
        ready = home / "ready.json"
        port, tool_port = free_port(), free_port()
        env = {**os.environ, "PARLANT_HOME": str(home), "OPENROUTER_BASE_URL": fake.base_url,
               "OPENROUTER_API_KEY": fake.api_key, "OPENROUTER_MODEL": model, "OPENROUTER_CATALOG": "off",
               "OPENROUTER_PROMPT_CACHE": cache}
        log = (home / "parlant.log").open("wb")
        process = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(tool_port), str(ready)],
                                   env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the Parlant server did not start: {(home / 'parlant.log').read_text()[-3000:]}")
                time.sleep(0.2)
            agent_id = json.loads(ready.read_text())["agent_id"]
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, trust_env=False)
            while True:  # the agent exists before the server listens
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the Parlant server did not listen: {(home / 'parlant.log').read_text()[-3000:]}")
                time.sleep(0.2)
            startup = bill(list(fake.generations.values()), model)
            # cold means cold: nothing of the start-up's evaluations stays in the cache
            fake.prompt_cache = PromptCache()
            conversations = []
            for messages in (MESSAGES, WARM_MESSAGES):
                sid = client.post("/sessions", json={"agent_id": agent_id, "title": "bench"},
                                  params={"allow_greeting": "false"}).json()["id"]
                rows = []
                for message in messages[:turns]:
                    latest_message["text"] = message
                    before = len(fake.generations)
                    sent = client.post(f"/sessions/{sid}/events", json={"kind": "message", "source": "customer", "message": message})
                    wait_for_reply(client, sid, sent.json()["offset"] + 1)
                    settle(fake, 2 * latency + 0.5)
                    rows.append(bill(list(fake.generations.values())[before:], model))
                conversations.append(rows)
        finally:
            process.terminate()
            process.wait(30)
            log.close()
    # a failed attempt (an answer Parlant could not use) would be retried and add requests: there must be none
    text = (home / "parlant.log").read_text(errors="replace")
    failures = len(re.findall(r"Attempt \d+ failed|Traceback \(most recent call last\)", text))
    return {"startup": startup, "conversations": conversations, "parlant_failures": failures}


def wait_for_reply(client: httpx.Client, sid: str, offset: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        answer = client.get(f"/sessions/{sid}/events",
                            params={"min_offset": offset, "source": "ai_agent", "kinds": "message", "wait_for_data": 60})
        if answer.status_code == 200 and answer.json():
            return
    raise SystemExit("no reply from the agent within 180 s")


def settle(fake: Any, quiet: float) -> None:
    """Until no request arrived for ``quiet`` seconds (Parlant's work after the reply belongs to the turn)."""
    count, since = len(fake.generations), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        if len(fake.generations) != count:
            count, since = len(fake.generations), time.monotonic()


def report(model: str, cache: str, result: dict[str, Any]) -> dict[str, float]:
    print(f"\n{model}, OPENROUTER_PROMPT_CACHE={cache}: start-up {result['startup']['requests']} requests, "
          f"{result['parlant_failures']} failed attempts in Parlant's log")
    print("| conversation | turn | requests | input tokens | cached | written | input USD plain | input USD billed | saved |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals: dict[str, float] = {}
    for number, rows in enumerate(result["conversations"], start=1):
        name = "cold" if number == 1 else "warm"
        for turn, row in enumerate(rows, start=1):
            saved = 1 - row["usd_cached"] / row["usd_plain"] if row["usd_plain"] else 0.0
            print(f"| {name} | {turn} | {row['requests']} | {row['input_tokens']:,} | {row['cached']:,} | {row['written']:,} "
                  f"| ${row['usd_plain']:.4f} | ${row['usd_cached']:.4f} | {saved:.0%} |")
        plain = sum(r["usd_plain"] for r in rows)
        billed = sum(r["usd_cached"] for r in rows)
        totals[f"{name}_saved"] = 1 - billed / plain if plain else 0.0
        totals[f"{name}_requests_per_turn"] = sum(r["requests"] for r in rows) / len(rows)
        print(f"| {name} | all | {sum(r['requests'] for r in rows)} | | | | ${plain:.4f} | ${billed:.4f} | {totals[name + '_saved']:.0%} |")
    turns = [row for rows in result["conversations"] for row in rows]
    totals["requests_per_turn"] = sum(r["requests"] for r in turns) / len(turns)
    return totals


TARGETS = {"anthropic": (0.55, 0.70), "openai": (0.35, None)}  # input cost saved: cold, warm (issue 18)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="anthropic/claude-3.5-sonnet,openai/gpt-4o")
    parser.add_argument("--turns", type=int, default=6, choices=range(1, len(MESSAGES) + 1), metavar="1-6")
    parser.add_argument("--caches", default="auto,off", help="the OPENROUTER_PROMPT_CACHE values to run (auto,off)")
    parser.add_argument("--latency", type=float, default=LATENCY,
                        help=f"seconds the local server takes to answer (default {LATENCY}); below the time "
                        "between Parlant's requests, requests read prefixes written by ones still in flight")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, tool_port, ready = args.serve
        asyncio.run(serve(int(port), int(tool_port), Path(ready)))
        return 0
    for model in args.models.split(","):
        if model not in PRICES:
            parser.error(f"--models: {model!r} has no price here; choose from {', '.join(PRICES)}")
    caches = args.caches.split(",")
    if not set(caches) <= {"auto", "off"}:
        parser.error("--caches takes auto, off or both")
    print(f"bench_parlant_cost: {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, Parlant {version('parlant')}; {args.turns} turns a conversation")
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-parlant-cost-") as work:
        for model in args.models.split(","):
            for cache in caches:
                result = converse(model, args.turns, cache, Path(work), args.latency)
                summary[f"{model} {cache}"] = {**report(model, cache, result), **result}
    print("\n| model | input saved, cold | warm | first cold turn, input USD | requests per turn, caching on | off | targets |")
    print("|---|---|---|---|---|---|---|")
    failed = []
    for model in args.models.split(","):
        on, off = summary.get(f"{model} auto"), summary.get(f"{model} off")
        if on is None:
            continue
        cold_target, warm_target = TARGETS.get(model.split("/", 1)[0], (None, None))
        if args.turns != len(MESSAGES):  # the targets are for the whole conversation
            cold_target = warm_target = None
        checks = []
        if cold_target is not None:
            checks.append((on["cold_saved"] >= cold_target, f"cold >= {cold_target:.0%}"))
        if warm_target is not None:
            checks.append((on["warm_saved"] >= warm_target, f"warm >= {warm_target:.0%}"))
        if off is not None:
            checks.append((on["requests_per_turn"] <= off["requests_per_turn"], "requests <= off"))
        failed += [f"{model}: {name}" for ok, name in checks if not ok]
        first = on["conversations"][0][0]
        per_turn_off = f"{off['requests_per_turn']:.1f}" if off is not None else "-"
        print(f"| {model} | {on['cold_saved']:.0%} | {on['warm_saved']:.0%} | ${first['usd_cached']:.4f} "
              f"(${first['usd_plain']:.4f} uncached) | {on['requests_per_turn']:.1f} | {per_turn_off} | ", end="")
        print(", ".join(("met: " if ok else "MISSED: ") + name for ok, name in checks) + " |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if failed:
        print(f"\ntargets missed: {'; '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
