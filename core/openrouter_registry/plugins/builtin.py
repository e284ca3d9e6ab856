"""The core's own plugin (name ``openrouter_registry``): the generic generator that serves any
OpenRouter model as a fallback, and the generic reply parser, registered ``trylast``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models.generator import ALL_MODES, Generator
from .hookspecs import hookimpl
from .matching import Candidate, Match
from ..settings import Settings


class OpenRouterGeneric(Generator):
    """Any OpenRouter model. Its modes come from the model catalog's ``supported_parameters`` when the
    catalog lists the model; otherwise it tries strict json_schema first, then json_object, then the
    schema in the prompt, and the generation path learns which one works and remembers it."""

    structured_modes = ALL_MODES
    modes_from_catalog = True  # any model: OpenRouter's supported_parameters say which modes to try
    description = "generic OpenRouter generator (any model)"


@hookimpl
def resolve_generator(model: str, settings: Settings) -> Candidate:
    return Candidate(OpenRouterGeneric, Match.FALLBACK, reason="any OpenRouter model")


@hookimpl(trylast=True)
def parse_structured(text: str, schema: Mapping[str, Any] | None) -> Any | None:
    from ..replies.structured import parse_json_reply

    return parse_json_reply(text, schema)
