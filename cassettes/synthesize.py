"""Write the family success-path cassettes that tests/test_cassettes.py replays.

No OpenRouter key was available where this project started, so these cassettes were not recorded
live: each request body is exactly what openrouter-registry sends (built by the resolved generator),
and each response copies the shape of a real recording in ../shared/reference/recordings/ (envelope
keys and order, `gen-<epoch>-<id>` ids, provider names, keep-alive whitespace before the JSON,
usage with `cost`, `cost_details`, token details, response headers), with each family's reply habit
(clean JSON for GPT, a reply continuing the `{` prefill for Claude, a preamble and a trailing comma
for Llama). Replace them with live recordings by running the tests with a key and
OPENROUTER_RECORD_MODE=all (see tests/test_cassettes.py).

    .venv/bin/python cassettes/synthesize.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from test_cassettes import CITY, PROMPT  # noqa: E402

from openrouter_registry import Registry, Settings  # noqa: E402

URL = "https://openrouter.ai/api/v1/chat/completions"
PADDING = "\n         \n\n         \n"

# (model, cassette, response model, provider, reply text, id, created, usage, fingerprint, native finish)
FAMILIES: list[dict[str, Any]] = [
    {
        "model": "openai/gpt-4o",
        "file": "gpt-4o-json-schema.yaml",
        "provider": "OpenAI",
        "text": '{"city":"Lyon","country":"France"}',
        "id": "gen-1763031204-kXq3Vb8yXwQp2TnR7LmA",
        "usage": (71, 10, 0.0002775),
        "fingerprint": "fp_cbf1785567",
        "native": "stop",
    },
    {
        "model": "openai/gpt-4o-mini",
        "file": "gpt-4o-mini-json-schema.yaml",
        "provider": "Azure",
        "text": '{"city":"Lyon","country":"France"}',
        "id": "gen-1783991210-6zlIfB2SPC7v7XdAo5sr",
        "usage": (71, 10, 0.00001665),
        "fingerprint": "fp_965c8b9ecf",
        "native": "stop",
    },
    {
        "model": "anthropic/claude-3.5-sonnet",
        "file": "claude-3.5-sonnet-prompt-prefill.yaml",
        "provider": "Anthropic",
        "text": '\n  "city": "Lyon",\n  "country": "France"\n}',
        "id": "gen-1758747135-a3UPmBa2D2nS6ur8f3Wg",
        "usage": (188, 21, 0.000879),
        "fingerprint": None,
        "native": "end_turn",
    },
    {
        "model": "meta-llama/llama-3.3-70b-instruct",
        "file": "llama-3.3-70b-json-schema.yaml",
        "provider": "DeepInfra",
        "text": 'Here is the JSON:\n\n{"city": "Lyon", "country": "France",}',
        "id": "gen-1748705423-ZKp1VCd6sHg0fJoN7Wmq",
        "usage": (86, 19, 0.00001476),
        "fingerprint": None,
        "native": "stop",
    },
]


def response_body(family: dict[str, Any]) -> str:
    prompt, completion, cost = family["usage"]
    created = int(family["id"].split("-")[1])
    body = {
        "id": family["id"],
        "object": "chat.completion",
        "created": created,
        "model": family["model"],
        "provider": family["provider"],
        "system_fingerprint": family["fingerprint"],
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
                "native_finish_reason": family["native"],
                "message": {"role": "assistant", "content": family["text"], "refusal": None, "reasoning": None},
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost": cost,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0, "video_tokens": 0},
            "cost_details": {"upstream_inference_cost": cost},
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0, "audio_tokens": 0},
        },
    }
    return PADDING + json.dumps(body, separators=(",", ":"))


def main() -> None:
    settings = Settings.from_env(
        {}, api_key="unused", http_referer="https://github.com/openrouter-registry", site_name="openrouter-registry tests"
    )
    registry = Registry(environ={})
    for family in FAMILIES:
        generator = registry.generator(family["model"], settings)
        mode = generator.structured_modes[0]
        body = generator.build_body([{"role": "user", "content": PROMPT}], mode=mode, schema=CITY, temperature=0)
        headers = {
            "Content-Type": "application/json",
            "HTTP-Referer": "https://github.com/openrouter-registry",
            "X-Title": "openrouter-registry tests",
        }
        request = Request("POST", URL, json.dumps(body, separators=(",", ":")).encode(), headers)
        response = {
            "status": {"code": 200, "message": "OK"},
            "headers": {
                "Content-Type": ["application/json"],
                "X-Generation-Id": [family["id"]],
                "Access-Control-Expose-Headers": ["X-Generation-Id,X-Provider-Name,cf-ray"],
                "Server": ["cloudflare"],
            },
            "body": {"string": response_body(family)},
        }
        text = serialize({"requests": [request], "responses": [response]}, yamlserializer)
        (HERE / family["file"]).write_text(text)
        print(f"wrote {family['file']} ({mode})")


if __name__ == "__main__":
    main()
