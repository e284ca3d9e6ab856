"""Structured-output benchmark: requests, cost and wall time per VALID answer, ours vs Parlant's adapter.

    .venv/bin/python benchmarks/bench_structured.py [--runs 20] [--import-runs 3]
        [--no-jsonfinder] [--lenient-fallback]

Nothing touches the network: both clients talk to `openrouter_registry.testing.FakeOpenRouter` on
127.0.0.1, which words JSON the way each model family does (clean JSON for GPT, prose + a fenced block
for Claude, a preamble + a trailing comma for Llama), refuses ``response_format`` for
mistralai/mixtral-8x7b-instruct with OpenRouter's real error bodies, and bills every completion
(``usage.cost``, also kept in ``server.generations``).

Each of the 5 seed models is asked ``--runs`` times for the same small JSON Schema, by

- ours:     ``OpenRouterService(...).generate(prompt, schema=SCHEMA, model=m)`` in one ``async with``;
            a call that raises counts as no valid answer.
- baseline: what Parlant 3.3's built-in OpenRouter adapter (parlant/adapters/nlp/openrouter_service.py)
            does, with the real ``openai.AsyncOpenAI`` client (one for the run): one user message with
            the schema described in the prompt and ``response_format={"type": "json_object"}``; on a
            BadRequestError whose text names JSON mode / json_object, the same call again without
            response_format and with Parlant's "respond with ONLY valid JSON" system message (on every
            call: Parlant keeps no memory of it); parse with Parlant's ``normalize_json_output`` (strip a
            ```json fence) + ``json.loads``, falling back to ``jsonfinder.only_json`` as Parlant 3.3.2
            does (``--no-jsonfinder``: json.loads only); a failed try (API error, reply that does not
            parse or validate) makes Parlant's engine run the whole generation again, 3 tries per answer.

Both clients are measured in the same run, interleaved ask by ask (alternating which goes first), and
counted the same way: requests from ``len(server.requests)``, cost from what the server billed
(``server.generations``; refused requests are not billed, as on OpenRouter), validity with the same
jsonschema validator, wall time per ask (all of its requests and tries). One warm-up ask per client on
another model (google/gemini-pro-1.5) is not counted.

Caveat of the local server (not of the clients): it answers instantly, so the times are client
overhead plus loopback round trips. It bills prompt tokens for the message text and for a schema sent
in ``response_format.json_schema``, and reads a schema after ``JSON Schema:`` in a system message or,
failing that, in a user message (where the baseline puts it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import jsonschema
import openai

from openrouter_registry import OpenRouterService, Registry, Settings
from openrouter_registry.models.generator import SCHEMA_MARKER
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.testing import FakeOpenRouter
from openrouter_registry.testing.schemas import CITY, PARIS

try:  # Parlant's adapter imports it at module level
    import jsonfinder  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - installed with parlant
    jsonfinder = None

MODELS: tuple[str, ...] = (
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-sonnet",
    "meta-llama/llama-3.3-70b-instruct",
    "mistralai/mixtral-8x7b-instruct",
)
CLIENTS = ("ours", "baseline")
WARM_UP_MODEL = "google/gemini-pro-1.5"
SCHEMA: dict[str, Any] = CITY
ANSWER = PARIS
PROMPT = "In which city and country is the Eiffel Tower? Give the city and the country."
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# What Parlant's adapter sends (parlant/adapters/nlp/openrouter_service.py, 3.3.2).
PARLANT_JSON_INSTRUCTION = (
    "IMPORTANT: You must respond with ONLY valid JSON. No explanatory text before or after the JSON. "
    "The response must be a valid JSON object."
)
PARLANT_TRIES = 3  # the engine's `for generation_attempt in range(3)` around a schematic generation
# Parlant's prompts carry the expected JSON inline, in the one user message; SCHEMA_MARKER is the
# wording by which the local server recognises a schema.
BASELINE_PROMPT = (
    f"{PROMPT}\n\nProduce a JSON object that validates against this "
    f"{SCHEMA_MARKER}{json.dumps(SCHEMA, separators=(',', ':'))}"
)


@attrs.frozen
class Outcome:
    """What one ask gave: a valid answer or not, the cost the client saw, the errors on the way."""

    valid: bool
    client_cost: float
    errors: Counter[str]


@attrs.define
class Tally:
    """One (model, client) cell: what its asks cost."""

    valid: int = 0
    asks: int = 0
    requests: int = 0
    cost: float = 0.0  # what the server billed
    client_cost: float = 0.0  # what the client itself reported (a cross-check)
    seconds: list[float] = attrs.field(factory=list)
    errors: Counter[str] = attrs.field(factory=Counter)  # failed tries, by exception type

    def add(self, other: Tally) -> None:
        self.valid += other.valid
        self.asks += other.asks
        self.requests += other.requests
        self.cost += other.cost
        self.client_cost += other.client_cost
        self.seconds += other.seconds
        self.errors.update(other.errors)


# --- the baseline: Parlant 3.3's OpenRouter adapter, step by step ----------------------------------


def normalize_json_output(raw_output: str) -> str:
    """parlant.adapters.nlp.common.normalize_json_output (3.3.2), verbatim."""
    json_start = raw_output.find("```json")
    if json_start != -1:
        json_start = json_start + 7
    else:
        json_start = 0
    json_end = raw_output[json_start:].rfind("```")
    if json_end == -1:
        json_end = len(raw_output[json_start:])
    return raw_output[json_start : json_start + json_end].strip()


def parlant_parse(raw_content: str, use_jsonfinder: bool) -> Any:
    """The value Parlant's adapter hands to ``schema.model_validate`` for a reply text."""
    finder = jsonfinder if use_jsonfinder else None
    if not raw_content.strip() or raw_content.strip() == "{}":
        return {}
    try:
        content = json.loads(normalize_json_output(raw_content))
    except json.JSONDecodeError:
        if finder is None:
            return {}
        try:
            return finder.only_json(raw_content)[2]
        except Exception:
            return {}
    if (not content or content == {}) and finder is not None:
        try:
            content = finder.only_json(raw_content)[2]
        except Exception:
            pass
    return content


class Baseline:
    """Parlant's do_generate (JSON mode, then without it, on every call) inside the engine's 3 tries."""

    def __init__(self, client: openai.AsyncOpenAI, use_jsonfinder: bool, lenient_fallback: bool) -> None:
        self.client = client
        self.use_jsonfinder = use_jsonfinder
        self.lenient_fallback = lenient_fallback

    def is_json_mode_error(self, error: openai.BadRequestError) -> bool:
        """Parlant's test: "JSON mode" or "json_object" in ``str(error)``. The installed openai SDK puts only
        ``error.message`` there ("Provider returned error" for OpenRouter's provider errors; the reason
        is in ``error.metadata.raw``). ``--lenient-fallback`` also reads the error body, as if
        ``str(error)`` still included it (openai-python 1.x did)."""
        text = str(error)
        if self.lenient_fallback:
            text += " " + json.dumps(error.body, default=str)
        return "JSON mode" in text or "json_object" in text.lower()

    async def do_generate(self, model: str) -> tuple[Any, float]:
        """One Parlant schematic generation: the parsed value and the cost the client saw (raises like Parlant)."""
        try:
            response = await self.client.chat.completions.create(
                messages=[{"role": "user", "content": BASELINE_PROMPT}],
                model=model,
                response_format={"type": "json_object"},
            )
        except openai.BadRequestError as error:
            if not self.is_json_mode_error(error):
                raise
            response = await self.client.chat.completions.create(
                messages=[
                    {"role": "system", "content": PARLANT_JSON_INSTRUCTION},
                    {"role": "user", "content": BASELINE_PROMPT},
                ],
                model=model,
            )
        cost = float(getattr(response.usage, "cost", None) or 0.0) if response.usage is not None else 0.0
        raw_content = response.choices[0].message.content or "{}"
        return parlant_parse(raw_content, self.use_jsonfinder), cost

    async def ask(self, model: str) -> Outcome:
        client_cost = 0.0
        errors: Counter[str] = Counter()
        for _ in range(PARLANT_TRIES):
            try:
                data, cost = await self.do_generate(model)
            except Exception as error:  # the engine logs a failed attempt and tries again
                errors[type(error).__name__] += 1
                continue
            client_cost += cost
            if VALIDATOR.is_valid(data):  # pydantic's model_validate in Parlant
                return Outcome(True, client_cost, errors)
            errors["ValidationError"] += 1
        return Outcome(False, client_cost, errors)


# --- ours --------------------------------------------------------------------------------------------


async def ours_ask(service: OpenRouterService, model: str) -> Outcome:
    try:
        result = await service.generate(PROMPT, schema=SCHEMA, model=model)
    except Exception as error:  # any exception: no valid answer (its type is listed under the table)
        return Outcome(False, float(getattr(error, "cost", None) or 0.0), Counter({type(error).__name__: 1}))
    if not VALIDATOR.is_valid(result.content):
        return Outcome(False, float(result.cost or 0.0), Counter({"invalid content returned": 1}))
    return Outcome(True, float(result.cost or 0.0), Counter())


# --- measuring --------------------------------------------------------------------------------------


async def measure(server: FakeOpenRouter, ask: Callable[[], Awaitable[Outcome]]) -> Tally:
    """One ask, with the requests and the bill it caused on the server."""
    requests_before, generations_before = len(server.requests), len(server.generations)
    start = time.perf_counter()
    outcome = await ask()
    elapsed = time.perf_counter() - start
    billed = list(server.generations.values())[generations_before:]
    return Tally(
        valid=int(outcome.valid),
        asks=1,
        requests=len(server.requests) - requests_before,
        cost=sum(float(g["total_cost"]) for g in billed),
        client_cost=outcome.client_cost,
        seconds=[elapsed],
        errors=outcome.errors,
    )


async def run(
    runs: int, *, use_jsonfinder: bool, lenient_fallback: bool
) -> dict[tuple[str, str], Tally]:
    MODE_MEMORY.clear()  # ours learns refused modes per process: start from nothing
    tallies = {(m, c): Tally() for m in MODELS for c in CLIENTS}
    with FakeOpenRouter() as server:
        server.set_reply(SCHEMA["title"], ANSWER)  # the same content for both clients
        settings = Settings.from_env({}, api_key=server.api_key, base_url=server.base_url)
        service = OpenRouterService(settings, registry=Registry(environ={}))
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)
        baseline = Baseline(client, use_jsonfinder, lenient_fallback)
        try:
            async with service:
                await measure(server, lambda: ours_ask(service, WARM_UP_MODEL))
                await measure(server, lambda: baseline.ask(WARM_UP_MODEL))
                for model in MODELS:
                    asks: list[tuple[str, Callable[[], Awaitable[Outcome]]]] = [
                        ("ours", lambda m=model: ours_ask(service, m)),  # type: ignore[misc]
                        ("baseline", lambda m=model: baseline.ask(m)),  # type: ignore[misc]
                    ]
                    for i in range(runs):
                        for name, ask in asks if i % 2 == 0 else asks[::-1]:
                            tallies[(model, name)].add(await measure(server, ask))
        finally:
            await client.close()
    return tallies


# --- cold imports (optional) ------------------------------------------------------------------------

IMPORT_CASES: tuple[tuple[str, str], ...] = (
    ("python -c pass", "pass"),
    (
        "ours: openrouter_registry + transport, decode, validation, jsonschema, plugins, resolve",
        "import jsonschema\n"
        "from openrouter_registry import Registry\n"
        "from openrouter_registry.http import transport\n"
        "from openrouter_registry.replies import decode, structured\n"
        "from openrouter_registry.schemas import validation, schema\n"
        "Registry(environ={}).resolve('openai/gpt-4o')",
    ),
    ("baseline as benchmarked: openai + jsonschema + jsonfinder", "import openai, jsonschema, jsonfinder"),
    ("Parlant's adapter module (parlant.adapters.nlp.openrouter_service)", "import parlant.adapters.nlp.openrouter_service"),
)


def time_imports(runs: int) -> list[tuple[str, float | None]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER", "PYTHON"))}
    samples: dict[str, list[float]] = {label: [] for label, _ in IMPORT_CASES}
    failed: set[str] = set()
    for round_ in range(runs + 1):  # round 0 only warms the OS file cache
        for label, code in IMPORT_CASES:
            if label in failed:
                continue
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                failed.add(label)  # not importable here: n/a, and why on stderr
                print(f"{label}: the import failed: {done.stderr.decode(errors='replace').strip().splitlines()[-1:]}",
                      file=sys.stderr)
            elif round_:
                samples[label].append(elapsed)
    return [(label, statistics.median(samples[label]) if samples[label] else None) for label, _ in IMPORT_CASES]


# --- the table --------------------------------------------------------------------------------------


def row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def cells(label: str, name: str, tally: Tally, ours: Tally) -> list[str]:
    if tally.valid:
        requests = f"{tally.requests / tally.valid:.2f}"
        cost = f"{tally.cost / tally.valid:.8f}"
    else:
        requests = f"n/a ({tally.requests} sent)"
        cost = f"n/a ({tally.cost:.8f} spent)"

    def ratio(ours_cost: float) -> str:
        if name == "ours":
            return "—"
        if tally.valid and ours.valid and ours_cost > 0:
            return f"{(tally.cost / tally.valid) / (ours_cost / ours.valid):.2f}"
        return "n/a"

    median = f"{statistics.median(tally.seconds) * 1e3:.1f}" if tally.seconds else "n/a"
    return [
        label, name, f"{tally.valid}/{tally.asks}", requests, cost,
        ratio(ours.cost), median,
    ]


def render(tallies: Mapping[tuple[str, str], Tally]) -> list[str]:
    header = [
        "model", "client", "valid/N", "requests per valid answer", "cost per valid answer (USD)",
        "cost x ours", "median ms per call",
    ]
    lines = [row(header), row(["---"] * 2 + ["---:"] * (len(header) - 2))]
    totals = {name: Tally() for name in CLIENTS}
    for model in MODELS:
        for name in CLIENTS:
            totals[name].add(tallies[(model, name)])
            lines.append(row(cells(model, name, tallies[(model, name)], tallies[(model, "ours")])))
    for name in CLIENTS:
        lines.append(row(cells(f"**total, {len(MODELS)} models**", name, totals[name], totals["ours"])))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="asks per model and client (default 20)")
    parser.add_argument("--import-runs", type=int, default=3, help="cold-import runs per stack (0: skip)")
    parser.add_argument(
        "--no-jsonfinder", action="store_true", help="baseline parses with json.loads only (no jsonfinder fallback)"
    )
    parser.add_argument(
        "--lenient-fallback",
        action="store_true",
        help="baseline also looks for 'JSON mode' in the error body, not only in str(error) as Parlant does",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    use_jsonfinder = not args.no_jsonfinder and jsonfinder is not None
    library_log = logging.getLogger("openrouter_registry")
    library_log.addHandler(logging.NullHandler())
    library_log.propagate = False  # its one mode-fallback warning would land in the middle of the output

    started = time.perf_counter()
    tallies = asyncio.run(
        run(args.runs, use_jsonfinder=use_jsonfinder, lenient_fallback=args.lenient_fallback)
    )
    elapsed = time.perf_counter() - started

    print(
        f"python {sys.version.split()[0]}, openai {openai.__version__}; N={args.runs} asks per model and client, "
        f"interleaved; schema '{SCHEMA['title']}'; local FakeOpenRouter, no network"
    )
    print(
        f"baseline = Parlant 3.3 adapter: json_object, fallback without it when "
        f"{'str(error) or the error body' if args.lenient_fallback else 'str(error)'} names JSON mode; "
        f"normalize_json_output + json.loads{' + jsonfinder' if use_jsonfinder else ' only'}; "
        f"{PARLANT_TRIES} tries per answer"
    )
    print()
    for line in render(tallies):
        print(line)
    print()
    print(
        "requests: HTTP requests the server received, refused ones included. cost: what the server billed "
        "(usage.cost) for all tries, divided by the valid answers. ms: wall time of one ask, all its requests and tries included."
    )
    failures = [
        f"{m} {c}: " + ", ".join(f"{n}x {e}" for e, n in t.errors.most_common())
        for (m, c), t in tallies.items()
        if t.errors
    ]
    if failures:
        print("failed tries: " + "; ".join(failures))
    mismatches = [
        f"{m} {c}: server {t.cost:.10f} vs client {t.client_cost:.10f}"
        for (m, c), t in tallies.items()
        if abs(t.cost - t.client_cost) > 1e-9 + 1e-6 * t.cost
    ]
    if mismatches:
        print("cost the client reported differs from what the server billed: " + "; ".join(mismatches))
    print(f"generation benchmark: {elapsed:.1f} s")

    if args.import_runs > 0:
        print()
        print(f"cold import in a fresh interpreter, median of {args.import_runs} interleaved runs")
        print(row(["stack", "median ms"]))
        print(row(["---", "---:"]))
        for label, seconds in time_imports(args.import_runs):
            print(row([label, "n/a" if seconds is None else f"{seconds * 1e3:.0f}"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
