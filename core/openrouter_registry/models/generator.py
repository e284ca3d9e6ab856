"""`Generator`: what the registry knows about a model, and how to build a request for it.

A generator class carries a model's facts (context window, maximum output tokens, the
structured-output modes it supports, best first) and its request shaping. The registry creates one
instance per model id (``Generator(model, settings)``); the generation path asks it for the request
body of the current mode and for the reply text to parse. Plugins subclass it and override the
class attributes, and any of ``response_format``, ``shape_messages``, ``finish_text``, ``build_body``.

A generator also knows its model's `ModelInfo` from the model catalog (``model_info``, read from
what the process has loaded, never fetched here), and `Generator.facts` merges the two sources.
Precedence: a fact the generator class states (a plugin's table) wins; the catalog fills what it
leaves unknown (None), and prices come only from the catalog. Structured modes are a plugin's
statement too, except for generators with ``modes_from_catalog`` (the generic one, which serves
every model no plugin claims): they take them from the catalog's ``supported_parameters`` when the
catalog lists them. So a plugin-claimed model behaves the same with or without the catalog, and
any other model gets OpenRouter's own facts.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, cast

import attrs

from .catalog import ModelInfo, Pricing, decimal_text, lookup
from ..schemas.memo import SchemaMemo
from .caching import CachePolicy, place_breakpoints, policy_for
from .preflight import check_fits
from ..settings import Settings

__all__ = [
    "Generator", "Facts", "Mode", "ALL_MODES", "KNOWN_MODES", "SCHEMA_MARKER", "schema_name", "schema_instruction",
    "is_strict_compatible",
]

log = logging.getLogger("openrouter_registry")

Mode = Literal["json_schema", "json_object", "tools", "prompt"]
#: The default order of a generator that states none (the ``tools`` mode is opt-in: a family plugin puts it
#: in its own order, and the catalog adds it for models that list ``tools`` but no JSON mode).
ALL_MODES: tuple[Mode, ...] = ("json_schema", "json_object", "prompt")
#: Every mode there is, in the order they are tried: the JSON modes, one forced function call, the prompt.
KNOWN_MODES: tuple[Mode, ...] = ("json_schema", "json_object", "tools", "prompt")
#: Where a fact came from: the generator class (its plugin's table) or the model catalog.
FactSource = Literal["plugin", "catalog"]

_capped: set[tuple[str, int]] = set()
_capped_lock = threading.Lock()


@attrs.frozen
class Facts:
    """What is known about a model, merged from its generator class and the catalog (see the module
    docstring for the precedence); ``sources`` names where each fact came from (None: unknown)."""

    context_window: int | None
    max_output_tokens: int | None
    structured_modes: tuple[Mode, ...]
    pricing: Pricing | None
    sources: Mapping[str, FactSource | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "structured_modes": list(self.structured_modes),
            "pricing": self.pricing.to_dict() if self.pricing is not None else None,
            "sources": dict(self.sources),
        }

    def explain(self) -> str:
        """One line for ``resolve --explain``."""

        def shown(value: Any, fact: str) -> str:
            return "unknown" if value is None else f"{value} ({self.sources[fact]})"

        modes = " > ".join(self.structured_modes)
        line = (
            f"facts: context {shown(self.context_window, 'context_window')}, "
            f"max output {shown(self.max_output_tokens, 'max_output_tokens')}, "
            f"modes {modes} ({self.sources['structured_modes']})"
        )
        prompt = self.pricing.per_million("prompt") if self.pricing else None
        completion = self.pricing.per_million("completion") if self.pricing else None
        if prompt is not None and completion is not None:
            line += f", USD {decimal_text(prompt)} / {decimal_text(completion)} per million input / output tokens (catalog)"
        else:
            line += ", price unknown"
        return line

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
    #: "tools" (one forced function call whose parameters are the schema), "prompt" (the schema in the
    #: system message, no response_format).
    structured_modes: ClassVar[tuple[Mode, ...]] = ALL_MODES
    #: One line for `openrouter-registry resolve`.
    description: ClassVar[str] = ""
    #: How the family caches prompts (`CachePolicy`); None: the core's table by vendor (`policy_for`).
    #: A family whose minimum prefix differs per model overrides `prompt_cache_policy` instead.
    cache_policy: ClassVar[CachePolicy | None] = None
    #: True when ``structured_modes`` is only a default: the model catalog's ``supported_parameters``
    #: then decide (the generic generator). False: the class's ``structured_modes`` are a plugin's statement.
    modes_from_catalog: ClassVar[bool] = False

    # --- facts -----------------------------------------------------------------------------------

    @property
    def model_info(self) -> ModelInfo | None:
        """The model's catalog entry, from what this process has loaded (no I/O), or None."""
        return lookup(self.model, self.settings)

    def facts(self) -> Facts:
        """The class's facts merged with the catalog's (the class wins where it states a value).
        Merged once per catalog entry: the generation path asks several times per call."""
        info = self.model_info
        cached: tuple[ModelInfo | None, Facts] | None = self.__dict__.get("_merged")
        if cached is not None and cached[0] is info:
            return cached[1]
        facts = self._merge(info)
        object.__setattr__(self, "_merged", (info, facts))  # a cache beside the frozen fields
        return facts

    def _merge(self, info: ModelInfo | None) -> Facts:
        sources: dict[str, FactSource | None] = {}

        def pick(fact: str, stated: int | None, listed: int | None) -> int | None:
            sources[fact] = "plugin" if stated is not None else "catalog" if listed is not None else None
            return stated if stated is not None else listed

        context = pick("context_window", self.context_window, info.context_length if info else None)
        output = pick("max_output_tokens", self.max_output_tokens, info.max_completion_tokens if info else None)
        modes: tuple[Mode, ...] = tuple(self.structured_modes)
        listed_modes = info.structured_modes() if info is not None and self.modes_from_catalog else None
        sources["structured_modes"] = "plugin"
        if listed_modes is not None:
            modes, sources["structured_modes"] = cast("tuple[Mode, ...]", listed_modes), "catalog"
        sources["pricing"] = "catalog" if info is not None else None
        return Facts(context, output, modes, info.pricing if info is not None else None, sources)

    def max_tokens_for(self, requested: int | None = None) -> int | None:
        """The ``max_tokens`` to send: the call's, else the settings', capped by the model's output limit
        (logged once per model and value)."""
        value = requested if requested is not None else self.settings.max_tokens
        if value is None:
            return None
        limit = self.facts().max_output_tokens
        if limit is not None and value > limit:
            with _capped_lock:
                first = (self.model, value) not in _capped
                _capped.add((self.model, value))
            if first:
                log.warning(
                    "max_tokens %d is above the output limit of %s (%d tokens); sending %d", value, self.model, limit, limit
                )
            value = limit
        return value

    def prompt_cache_policy(self) -> CachePolicy:
        """The model's caching policy: the class's `cache_policy`, else the core's table for its vendor.
        Looked up once per generator (the generation path asks on every call)."""
        policy: CachePolicy | None = self.__dict__.get("_cache_policy")
        if policy is None:
            policy = self.cache_policy if self.cache_policy is not None else policy_for(self.model)
            object.__setattr__(self, "_cache_policy", policy)
        return policy

    def info(self) -> dict[str, Any]:
        """What `resolve --json` shows about this generator: its facts, with where each came from."""
        return {"generator": type(self).__name__, **self.facts().to_dict()}

    # --- request shaping -------------------------------------------------------------------------

    def response_format(self, mode: Mode, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The ``response_format`` for ``mode``, or None when the mode sends none."""
        if schema is None or mode in ("prompt", "tools"):
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
        if schema is None or mode in ("json_schema", "tools"):
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
        (``provider``, ``models``, ``reasoning``...); the keys built here win over it.

        Pre-flight: raises `ContextLengthError` when the prompt clearly cannot fit in the model's context
        window with ``max_tokens`` (see `openrouter_registry.models.preflight`); nothing is sent then."""
        body: dict[str, Any] = dict(extra_body or {})
        body["model"] = self.model
        body["messages"] = self.shape_messages(messages, mode, schema)
        if self.settings.prompt_cache == "auto":
            policy = self.prompt_cache_policy()
            if policy.marks:
                body["messages"] = place_breakpoints(body["messages"], policy, self.settings.prompt_cache_ttl)
        limit = self.max_tokens_for(max_tokens)
        if limit is not None:
            body["max_tokens"] = limit
        if temperature is not None:
            body["temperature"] = temperature
        response_format = self.response_format(mode, schema)
        if response_format is not None:
            body["response_format"] = response_format
        elif schema is not None:  # without a schema, a response_format the caller put in extra_body is sent
            body.pop("response_format", None)
        if mode == "tools" and schema is not None:
            body.update(self.tool_mode_fields(schema))
        if stream:
            body["stream"] = True
        check_fits(body, self.model, self.facts().context_window)
        return body

    def tool_mode_fields(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """The request fields of the ``tools`` mode: one function whose parameters are ``schema``, forced."""
        name = schema_name(schema)
        function = {"name": name, "description": "Give the answer as this function's arguments.", "parameters": schema}
        return {"tools": [{"type": "function", "function": function}],
                "tool_choice": {"type": "function", "function": {"name": name}}}

    def finish_text(self, text: str, mode: Mode, schema: Mapping[str, Any] | None) -> str:
        """The reply text to parse (a generator that prefilled the reply puts the prefill back here)."""
        return text
