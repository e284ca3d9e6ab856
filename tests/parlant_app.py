"""A real Parlant server using openrouter-registry, run as a subprocess by tests/test_parlant_server.py.

    python tests/parlant_app.py PORT TOOL_PORT REPORT.json bare|configured

The environment points OpenRouter at the local server (OPENROUTER_BASE_URL, OPENROUTER_API_KEY)
and PARLANT_HOME at a temporary folder. ``bare`` passes ``NLPServices.openrouter`` itself (env
configuration); ``configured`` calls it with ``model_name=$TEST_MODEL, max_tokens=$TEST_MAX_TOKENS``,
as the README shows. Once the agent and its guideline exist, the script writes what Parlant got from
our service to REPORT.json; then the server serves until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import parlant.sdk as p

from openrouter_registry import NLPServices


async def main(port: int, tool_port: int, report: Path, form: str) -> None:
    nlp_service: Any
    if form == "bare":
        nlp_service = NLPServices.openrouter
    else:
        nlp_service = NLPServices.openrouter(
            model_name=os.environ["TEST_MODEL"], max_tokens=int(os.environ["TEST_MAX_TOKENS"])
        )
    seen: dict[str, Any] = {}

    async def initialize(container: p.Container) -> None:
        seen["nlp"] = container[p.NLPService]

    async with p.Server(
        port=port, tool_service_port=tool_port, nlp_service=nlp_service, initialize_container=initialize
    ) as server:
        agent = await server.create_agent(
            name="Tester",
            description="A helpful assistant powered by OpenRouter.",
            perceived_performance_policy=p.NullPerceivedPerformancePolicy(),
        )
        await agent.create_guideline(condition="the customer greets you", action="greet them back warmly")
        streamer = await server.create_agent(
            name="Streamer",
            description="Streams its replies.",
            output_mode=p.OutputMode.STREAM,
            perceived_performance_policy=p.NullPerceivedPerformancePolicy(),
        )
        nlp = seen["nlp"]
        embedder = await nlp.get_embedder()
        facts = {
            "agent_id": agent.id,
            "streaming_agent_id": streamer.id,
            "service": type(nlp).__module__ + "." + type(nlp).__name__,
            "model": nlp.resolution.model,
            "generator": type(nlp.resolution.generator).__name__,
            "plugin": nlp.resolution.plugin,
            "supports_streaming": nlp.supports_streaming,
            "embedder": {"type": type(embedder).__name__, "dimensions": embedder.dimensions, "id": embedder.id},
            "schemas": {
                t.__name__: {
                    "class": type(g).__name__,
                    "orig_class": repr(getattr(g, "__orig_class__", None)),
                    "generator": g.generator,
                    "plugin": g.plugin,
                    "transport": id(g._service.transport),
                }
                for t, g in nlp.generators.items()
            },
            "transport": id(nlp.service.transport),
        }
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(facts))
        tmp.replace(report)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
