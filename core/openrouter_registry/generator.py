"""`Generator`: what the registry knows about a model, and how to build a request for it.

A generator class carries a model's facts (context window, maximum output tokens, the
structured-output modes it supports, best first) and its request shaping. The registry creates one
instance per model id (``Generator(model, settings)``); the generation path asks it for the request
body of the current mode and for the reply text to parse. Plugins subclass it and override the
class attributes, and any of ``response_format``, ``shape_messages``, ``finish_text``, ``build_body``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

from .memo import SchemaMemo
from .settings import Settings

__all__ = ["Generator", "Mode", "ALL_MODES", "SCHEMA_MARKER", "schema_name", "schema_instruction", "is_strict_compatible"]

Mode = Literal["json_schema", "json_object", "prompt"]
ALL_MODES: tuple[Mode, ...] = ("json_schema", "json_object", "prompt")

Message = Mapping[str, Any]

#: What precedes the schema in the system message of json_object and prompt modes.
SCHEMA_MARKER = "JSON Schema:\n"


def schema_name(schema: Mapping[str, Any]) -> str:
    """A ``response_format.json_schema.name`` (``[a-zA-Z0-9_-]``, at most 64 characters) for a schema."""
    title = str(schema.get("title") or "response")
    name = re.sub(r"[^a-zA-Z0-9_-]+", "_", title).strip("_")[:64]
    return name or "response"


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The system-message text that asks for JSON matching ``schema`` (json_object and prompt modes)."""
    return (
        "Respond with a single JSON value that validates against this JSON Schema. "
        "Output only the JSON: no prose, no code fences, no comments.\n"
        f"{SCHEMA_MARKER}{json.dumps(schema, separators=(',', ':'), ensure_ascii=False)}"
    )


def is_strict_compatible(schema: Any) -> bool:
    """True when ``schema`` meets OpenAI strict mode's rules (every object closed, every property required)."""
    if isinstance(schema, list):
        return all(is_strict_compatible(s) for s in schema)
    if not isinstance(schema, Mapping):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties", True) is not False:
            return False
        if set(schema.get("required") or []) != set(props):
            return False
    return all(is_strict_compatible(v) for k, v in schema.items() if k not in ("enum", "const", "default"))


#: ``name`` and ``strict`` of a schema's ``response_format.json_schema``, worked out once per schema object.
_NAME_AND_STRICT: SchemaMemo[dict[str, Any]] = SchemaMemo(
    lambda schema: {"name": schema_name(schema), "strict": is_strict_compatible(schema)}
)


@attrs.frozen(slots=False)
class Generator:
    """Serves one model id. Subclass it (no decorator needed) and override the class attributes.

    ``model`` is the id as the user gave it (a variant suffix such as ``:free`` is kept and sent);
    ``settings`` the effective settings.
    """

    model: str
    settings: Settings = attrs.field(repr=False)

    #: Tokens of context the model accepts, when known.
    context_window: ClassVar[int | None] = None
    #: The most tokens the model can produce in one reply, when known. Requests are capped to it.
    max_output_tokens: ClassVar[int | None] = None
    #: Structured-output modes, best first: "json_schema" (strict response_format), "json_object",
    #: "prompt" (the schema in the system message, no response_format).
    structured_modes: ClassVar[tuple[Mode, ...]] = ALL_MODES
    #: One line for `openrouter-registry resolve`.
    description: ClassVar[str] = ""

    # --- facts -----------------------------------------------------------------------------------

    def max_tokens_for(self, requested: int | None = None) -> int | None:
        """The ``max_tokens`` to send: the call's, else the settings', capped by ``max_output_tokens``."""
        value = requested if requested is not None else self.settings.max_tokens
        if value is None:
            return None
        if self.max_output_tokens is not None:
            value = min(value, self.max_output_tokens)
        return value

    def info(self) -> dict[str, Any]:
        """What `resolve --json` shows about this generator."""
        return {
            "generator": type(self).__name__,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "structured_modes": list(self.structured_modes),
        }

    # --- request shaping -------------------------------------------------------------------------

    def response_format(self, mode: Mode, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The ``response_format`` for ``mode``, or None when the mode sends none."""
        if schema is None or mode == "prompt":
            return None
        if mode == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {**_NAME_AND_STRICT(schema), "schema": schema},
        }

    def shape_messages(
        self, messages: Sequence[Message], mode: Mode, schema: Mapping[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The messages to send. In json_object and prompt modes the schema goes into the system message."""
        shaped = [dict(m) for m in messages]
        if schema is None or mode == "json_schema":
            return shaped
        instruction = schema_instruction(schema)
        if shaped and shaped[0].get("role") == "system" and isinstance(shaped[0].get("content"), str):
            shaped[0]["content"] = f"{shaped[0]['content']}\n\n{instruction}"
        else:
            shaped.insert(0, {"role": "system", "content": instruction})
        return shaped

    def build_body(
        self,
        messages: Sequence[Message],
        *,
        mode: Mode,
        schema: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> dict[str, Any]:
        """The JSON body of a chat completion request. ``extra_body`` keys pass through to OpenRouter
        (``provider``, ``models``, ``reasoning``...); the keys built here win over it."""
        body: dict[str, Any] = dict(extra_body or {})
        body["model"] = self.model
        body["messages"] = self.shape_messages(messages, mode, schema)
        limit = self.max_tokens_for(max_tokens)
        if limit is not None:
            body["max_tokens"] = limit
        if temperature is not None:
            body["temperature"] = temperature
        response_format = self.response_format(mode, schema)
        if response_format is not None:
            body["response_format"] = response_format
        else:
            body.pop("response_format", None)
        if stream:
            body["stream"] = True
        return body

    def finish_text(self, text: str, mode: Mode, schema: Mapping[str, Any] | None) -> str:
        """The reply text to parse (a generator that prefilled the reply puts the prefill back here)."""
        return text
