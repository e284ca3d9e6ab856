"""A real Parlant server (subprocess, offline) whose NLP service is ours, pointed at the local server.

Each test starts ``tests/parlant_app.py`` with a temporary PARLANT_HOME and free ports, creates a
session over Parlant's REST API, sends a customer message, and checks that the agent's reply is the
text the local OpenRouter server produced, and that every schema Parlant asked for went through our
registry (and over our one HTTP client).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_registry.models.generator import SCHEMA_MARKER
from openrouter_registry.models.modes import MODE_MEMORY
from openrouter_registry.testing import FakeOpenRouter

pytestmark = pytest.mark.out_of_process  # the Parlant server is a child process

APP = Path(__file__).resolve().parent / "parlant_app.py"
REPLY = "Hello from the local OpenRouter server! How can I help you today?"

# The schemas Parlant 3.3 asks its NLP service for at start-up.
STARTUP_SCHEMAS = {
    "GenericResponseAnalysisSchema",
    "GenericActionableGuidelineMatchesSchema",
    "GenericObservationalGuidelineMatchesSchema",
    "MessageSchema",
    "CannedResponseDraftSchema",
    "CannedResponseSelectionSchema",
    "SingleToolBatchSchema",
    "GuidelineContinuousPropositionSchema",
    "CustomerDependentActionSchema",
    "AgentIntentionProposerSchema",
    "JourneyNextStepSelectionSchema",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def schema_name_of(body: dict[str, Any]) -> str | None:
    """The schema a chat request asked for: response_format's name, else the title in the system message."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return str(response_format["json_schema"]["name"])
    for message in body["messages"]:
        if message["role"] == "system" and SCHEMA_MARKER in message["content"]:
            schema, _ = json.JSONDecoder().raw_decode(message["content"].rsplit(SCHEMA_MARKER, 1)[1].lstrip())
            return str(schema.get("title"))
    return None


class ParlantProcess:
    def __init__(self, port: int, report: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.report_path, self.process, self.log = report, process, log
        self.client = httpx.Client(base_url=self.url, timeout=90, trust_env=False)

    def wait_ready(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the Parlant server exited ({self.process.returncode}):\n{self.log.read_text()[-4000:]}")
            if self.report_path.exists():
                try:
                    if self.client.get("/healthz").status_code == 200:
                        return dict(json.loads(self.report_path.read_text()))
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        pytest.fail(f"the Parlant server was not ready after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def agent_named(self, name: str, timeout: float = 120) -> str:
        """The id of the agent called ``name``, once the script has created it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the Parlant server exited ({self.process.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                answer = self.client.get("/agents")
                for agent in answer.json() if answer.status_code == 200 else []:
                    if agent["name"] == name:
                        return str(agent["id"])
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"no agent {name!r} after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def converse(self, agent_id: str, message: str, expect: str = REPLY) -> list[str]:
        """Send one customer message; the texts of the agent's messages up to the one that reads ``expect``."""
        session = self.client.post("/sessions", json={"agent_id": agent_id, "title": "test"},
                                   params={"allow_greeting": "false"})
        assert session.status_code == 201, session.text
        sid = session.json()["id"]
        sent = self.client.post(f"/sessions/{sid}/events",
                                json={"kind": "message", "source": "customer", "message": message})
        assert sent.status_code == 201, sent.text
        offset, messages = sent.json()["offset"] + 1, []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answer = self.client.get(
                f"/sessions/{sid}/events",
                params={"min_offset": offset, "source": "ai_agent", "kinds": "message,status", "wait_for_data": 30},
            )
            if answer.status_code == 504:
                continue
            assert answer.status_code == 200, answer.text
            for event in answer.json():
                offset = max(offset, event["offset"] + 1)
                if event["kind"] == "message":
                    messages.append(event["data"]["message"])
                    if messages[-1] == expect:
                        return messages
                elif event["data"].get("status") == "error":
                    pytest.fail(f"Parlant reported an error: {event['data']}\n{self.log.read_text()[-4000:]}")
        pytest.fail(f"no message {expect!r} from the agent within 90 s; its messages: {messages}")


GUIDELINE_MATCHED = {
    "checks": [
        {"guideline_id": "1", "condition": "the customer greets you", "rationale": "They said hello.", "applies": True}
    ]
}


def script_replies(server: FakeOpenRouter) -> None:
    """Every other schema gets a generated valid instance; these two carry the turn's meaning."""
    server.set_reply("GenericActionableGuidelineMatchesSchema", GUIDELINE_MATCHED)
    server.set_reply("CannedResponseDraftSchema", lambda valid: {**valid, "response_body": REPLY})


@contextlib.contextmanager
def start(tmp_path: Path, server: FakeOpenRouter, script: Path, *args: str, **env: str) -> Iterator[ParlantProcess]:
    """Run ``script`` (with the ports, then ``args``) as a Parlant server process; kill it afterwards."""
    port, tool_port = free_port(), free_port()
    report, log = tmp_path / "report.json", tmp_path / "parlant.out"
    home = tmp_path / "parlant-home"
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "PARLANT_")) and "proxy" not in k.lower()
    }
    environ.update(
        PARLANT_HOME=str(home),
        NO_PROXY="localhost,127.0.0.1",
        OPENROUTER_API_KEY=server.api_key,
        OPENROUTER_BASE_URL=server.base_url,
        OPENROUTER_HTTP_REFERER="https://github.com/openrouter-registry",
        OPENROUTER_SITE_NAME="parlant e2e",
        **env,
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script), str(port), str(tool_port), str(report), *args],
            cwd=tmp_path, env=environ, stdout=out, stderr=subprocess.STDOUT,
        )
    parlant = ParlantProcess(port, report, process, log)
    try:
        yield parlant
    finally:
        parlant.client.close()
        process.kill()
        process.wait(timeout=30)
    assert not (tmp_path / "parlant-data").exists(), "PARLANT_HOME was not honoured"


def check_served_by_registry(server: FakeOpenRouter, facts: dict[str, Any], generator: str, plugin: str) -> None:
    schemas = facts["schemas"]
    assert STARTUP_SCHEMAS <= set(schemas), sorted(STARTUP_SCHEMAS - set(schemas))
    assert len(schemas) >= 25
    for name, served in schemas.items():
        assert served["class"] == "OpenRouterSchematicGenerator", name
        assert name in served["orig_class"], served  # Gen[Schema]: Parlant keys generators by it
        assert (served["generator"], served["plugin"]) == (generator, plugin), name
        assert served["transport"] == facts["transport"], f"{name} has its own HTTP client"
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    asked = [schema_name_of(r.body) for r in chats]
    assert asked and all(name in schemas for name in asked), asked
    assert {"GenericActionableGuidelineMatchesSchema", "CannedResponseDraftSchema"} <= set(asked)
    for request in chats:
        assert request.headers["authorization"] == f"Bearer {server.api_key}"
        assert request.headers["x-title"] == "parlant e2e"
        assert request.headers["http-referer"] == "https://github.com/openrouter-registry"


def test_configured_form_claude_reply_comes_from_the_local_server(tmp_path: Path) -> None:
    with FakeOpenRouter() as server:
        MODE_MEMORY.clear()
        script_replies(server)
        with start(
            tmp_path, server, APP, "configured", TEST_MODEL="anthropic/claude-3.5-sonnet", TEST_MAX_TOKENS="4096",
            OPENROUTER_MAX_TOKENS="100",
        ) as parlant:
            facts = parlant.wait_ready()
            assert facts["service"] == "openrouter_registry.adapters.parlant.ParlantNLPService"
            assert (facts["model"], facts["generator"], facts["plugin"]) == (
                "anthropic/claude-3.5-sonnet", "OpenRouterClaude35Sonnet", "openrouter_claude"
            )
            assert facts["supports_streaming"] is True
            assert facts["embedder"]["dimensions"] == 3072
            assert facts["embedder"]["id"] == "openrouter/openai/text-embedding-3-large"

            assert parlant.converse(facts["agent_id"], "Hello there!") == [REPLY]
            check_served_by_registry(server, facts, "OpenRouterClaude35Sonnet", "openrouter_claude")
            chats = [r.body for r in server.requests if r.path.endswith("/chat/completions")]
            # max_tokens=4096 (the argument) beats OPENROUTER_MAX_TOKENS=100 and Claude's prompt mode + prefill is used
            assert {b["max_tokens"] for b in chats} == {4096}
            assert all(b["model"] == "anthropic/claude-3.5-sonnet" and "response_format" not in b for b in chats)
            assert all(b["messages"][-1] == {"role": "assistant", "content": "{"} for b in chats)
            temperatures = {b.get("temperature") for b in chats}
            assert temperatures and None not in temperatures  # Parlant's temperature hint is sent

            # an agent with output_mode=STREAM is served by our streaming generator (SSE)
            server.text_reply = "Streamed to you, piece by piece, by the local OpenRouter server."
            before = len(server.requests)
            assert parlant.converse(facts["streaming_agent_id"], "Hi!", expect=server.text_reply) == [server.text_reply]
            streamed = [r.body for r in server.requests[before:] if r.body.get("stream")]
            assert len(streamed) == 1 and streamed[0]["model"] == "anthropic/claude-3.5-sonnet"
            assert streamed[0]["max_tokens"] == 4096


def test_bare_form_uses_env_configuration_and_gpt_json_schema(tmp_path: Path) -> None:
    with FakeOpenRouter() as server:
        MODE_MEMORY.clear()
        script_replies(server)
        with start(tmp_path, server, APP, "bare", OPENROUTER_MODEL="openai/gpt-4o-mini", OPENROUTER_MAX_TOKENS="2000") as parlant:
            facts = parlant.wait_ready()
            assert (facts["model"], facts["generator"], facts["plugin"]) == (
                "openai/gpt-4o-mini", "OpenRouterGPT4OMini", "openrouter_gpt"
            )
            assert parlant.converse(facts["agent_id"], "Hello there!") == [REPLY]
            check_served_by_registry(server, facts, "OpenRouterGPT4OMini", "openrouter_gpt")
            chats = [r.body for r in server.requests if r.path.endswith("/chat/completions")]
            # OPENROUTER_MAX_TOKENS applies to a preset model too
            assert {b["max_tokens"] for b in chats} == {2000}
            assert {b["response_format"]["type"] for b in chats} <= {"json_schema", "json_object"}
            # one kept-alive connection pool: far fewer connections than requests
            connections = {r.connection for r in server.requests}
            assert len(connections) < len(server.requests) or len(server.requests) == 1


def readme_example(form: str) -> str:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "parlant.md").read_text()
    block = readme.split(f"<!-- parlant-example: {form};", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("form", ["bare", "configured"])
def test_readme_parlant_examples_run_as_written(tmp_path: Path, form: str) -> None:
    """The README's two examples, unchanged except for the ports (tests need free ones)."""
    code = readme_example(form)
    assert code.count("p.Server(") == 1
    script = tmp_path / "agent.py"
    script.write_text(
        "import sys\n"
        + code.replace("p.Server(", "p.Server(port=int(sys.argv[1]), tool_service_port=int(sys.argv[2]), ")
    )
    with FakeOpenRouter() as server:
        MODE_MEMORY.clear()
        script_replies(server)
        with start(tmp_path, server, script, OPENROUTER_MODEL="meta-llama/llama-3.3-70b-instruct") as parlant:
            agent_id = parlant.agent_named("AI Assistant")
            assert parlant.converse(agent_id, "Hello there!")[-1] == REPLY  # after Parlant's preamble
        chats = [r.body for r in server.requests if r.path.endswith("/chat/completions")]
        expected = "meta-llama/llama-3.3-70b-instruct" if form == "bare" else "anthropic/claude-3.5-sonnet"
        assert chats and {b["model"] for b in chats} == {expected}
        if form == "configured":
            assert {b["max_tokens"] for b in chats} == {4096}
