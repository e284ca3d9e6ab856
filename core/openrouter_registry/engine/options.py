"""Per-call options as types: OpenRouter's provider preferences, its plugins, and the keyword
arguments every call takes (`CallOptions`).

    from openrouter_registry import Provider, WebSearch

    await service.generate(
        "...", schema=City,
        provider=Provider(order=["openai", "azure"], allow_fallbacks=False, data_collection="deny"),
        models=["openai/gpt-4o-mini"],          # fallback models, tried in order if the first fails
        plugins=[WebSearch(max_results=3)],
        session_id="user-42",                   # sticky provider routing for a conversation
        timeout=10, max_attempts=2,             # this call only; the service's settings otherwise
    )

`request_fields` checks them (a `ConfigurationError` naming the option, before anything is sent)
and writes them in OpenRouter's request shapes; ``extra_body`` stays for every other field, and a
field given both ways is refused rather than one silently winning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypedDict, get_args

import attrs

from ..errors import ConfigurationError
from ..schemas.fastjson import MAPPING
from ..schemas.inputs import check_extra_body
from ..settings import is_model_id

__all__ = [
    "Provider", "MaxPrice", "WebSearch", "FileParser", "ResponseHealing", "Plugin", "CallOptions",
    "GenerateOptions", "request_fields", "check_transport_options",
]

Sort = Literal["price", "throughput", "latency"]
DataCollection = Literal["allow", "deny"]
Quantization = Literal["int4", "int8", "fp4", "fp6", "fp8", "fp16", "bf16", "fp32", "unknown"]

#: A session id longer than this is refused by OpenRouter (``session_id`` / ``x-session-id``).
MAX_SESSION_ID = 256


def _slugs(value: Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigurationError(f"provider {name} must be a list of provider names such as ['openai', 'azure'], got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"provider {name} must hold non-empty provider names, got {item!r}")
    return tuple(value)


def _choice(value: Any, allowed: Any, name: str) -> None:
    options = get_args(allowed)
    if value is not None and value not in options:
        raise ConfigurationError(f"provider {name} must be one of {', '.join(map(repr, options))}, got {value!r}")


def _flag(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError(f"provider {name} must be True or False, got {value!r}")


def _price(value: Decimal | float | str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
            raise InvalidOperation
        price = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise ConfigurationError(f"max_price {name} must be a number of USD per million tokens, got {value!r}") from None
    if not price.is_finite() or price < 0:
        raise ConfigurationError(f"max_price {name} must be a finite number >= 0 (USD per million tokens), got {value!r}")
    return price


def _prompt_price(value: Any) -> Decimal | None:
    return _price(value, "prompt")


def _completion_price(value: Any) -> Decimal | None:
    return _price(value, "completion")


def _request_price(value: Any) -> Decimal | None:
    return _price(value, "request")


def _image_price(value: Any) -> Decimal | None:
    return _price(value, "image")


@attrs.frozen(kw_only=True)
class MaxPrice:
    """The highest price a provider may charge, in USD per million tokens (``request`` and ``image``:
    USD per request and per image). A provider above it is skipped."""

    prompt: Decimal | None = attrs.field(default=None, converter=_prompt_price)
    completion: Decimal | None = attrs.field(default=None, converter=_completion_price)
    request: Decimal | None = attrs.field(default=None, converter=_request_price)
    image: Decimal | None = attrs.field(default=None, converter=_image_price)

    def to_body(self) -> dict[str, float]:
        """OpenRouter's ``provider.max_price`` object (numbers, the fields that are set)."""
        return {name: float(value) for name, value in attrs.asdict(self).items() if value is not None}


def _max_price(value: MaxPrice | Mapping[str, Any] | None) -> MaxPrice | None:
    if value is None or isinstance(value, MaxPrice):
        return value
    if not isinstance(value, MAPPING):
        raise ConfigurationError(f"provider max_price must be a MaxPrice or a dict, got {type(value).__name__}")
    built: MaxPrice = _build(MaxPrice, value, "max_price")
    return built


def _build(cls: type[Any], fields: Mapping[str, Any], what: str) -> Any:
    known = [f.name for f in attrs.fields(cls)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ConfigurationError(f"{what} has no option {unknown[0]!r}; its options are: {', '.join(known)}")
    return cls(**fields)


def _order(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return _slugs(value, "order")


def _only(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return _slugs(value, "only")


def _ignore(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return _slugs(value, "ignore")


def _quantizations(value: Sequence[str] | None) -> tuple[Quantization, ...] | None:
    names = _slugs(value, "quantizations")
    if names is None:
        return None
    allowed = get_args(Quantization)
    for name in names:
        if name not in allowed:
            raise ConfigurationError(f"provider quantizations must be among {', '.join(allowed)}, got {name!r}")
    return names  # type: ignore[return-value]  # each checked against Quantization above


@attrs.frozen(kw_only=True)
class Provider:
    """OpenRouter's provider preferences for one call (``provider`` in the request body).

    ``order``: providers to try first, in order; ``only`` / ``ignore``: allow or skip providers;
    ``sort``: rank by ``"price"``, ``"throughput"`` or ``"latency"``; ``allow_fallbacks``: may other
    providers serve when these fail (default True upstream); ``require_parameters``: only providers
    that accept every parameter sent (``response_format``, ``tools``...); ``data_collection``:
    ``"deny"`` skips providers that may store prompts; ``zdr``: zero-data-retention endpoints only;
    ``max_price``: a `MaxPrice` (or a dict of its fields); ``quantizations``: e.g. ``["fp8", "bf16"]``.
    Unset fields are not sent. Bad values raise `ConfigurationError` when the value is built."""

    order: tuple[str, ...] | None = attrs.field(default=None, converter=_order)
    only: tuple[str, ...] | None = attrs.field(default=None, converter=_only)
    ignore: tuple[str, ...] | None = attrs.field(default=None, converter=_ignore)
    sort: Sort | None = attrs.field(default=None, validator=lambda _, __, v: _choice(v, Sort, "sort"))
    allow_fallbacks: bool | None = attrs.field(default=None, validator=lambda _, __, v: _flag(v, "allow_fallbacks"))
    require_parameters: bool | None = attrs.field(
        default=None, validator=lambda _, __, v: _flag(v, "require_parameters")
    )
    data_collection: DataCollection | None = attrs.field(
        default=None, validator=lambda _, __, v: _choice(v, DataCollection, "data_collection")
    )
    zdr: bool | None = attrs.field(default=None, validator=lambda _, __, v: _flag(v, "zdr"))
    max_price: MaxPrice | None = attrs.field(default=None, converter=_max_price)
    quantizations: tuple[Quantization, ...] | None = attrs.field(default=None, converter=_quantizations)

    def to_body(self) -> dict[str, Any]:
        """OpenRouter's ``provider`` object: the fields that are set, lists as lists."""
        body: dict[str, Any] = {}
        for field in attrs.fields(Provider):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, MaxPrice):
                body[field.name] = value.to_body()
            elif isinstance(value, tuple):
                body[field.name] = list(value)
            else:
                body[field.name] = value
        return body


def _positive_int(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")


def _optional_text(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")


@attrs.frozen(kw_only=True)
class WebSearch:
    """OpenRouter's ``web`` plugin: search the web and add the results to the prompt (billed per result).
    ``engine``: ``"native"`` (the provider's own search) or ``"exa"``; default: OpenRouter's choice."""

    max_results: int | None = attrs.field(default=None, validator=lambda _, __, v: _positive_int(v, "WebSearch max_results"))
    search_prompt: str | None = attrs.field(
        default=None, validator=lambda _, __, v: _optional_text(v, "WebSearch search_prompt")
    )
    engine: Literal["native", "exa"] | None = attrs.field(
        default=None, validator=lambda _, __, v: _plugin_choice(v, ("native", "exa"), "WebSearch engine")
    )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": "web"}
        body.update({k: v for k, v in attrs.asdict(self).items() if v is not None})
        return body


def _plugin_choice(value: Any, allowed: tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


@attrs.frozen(kw_only=True)
class FileParser:
    """OpenRouter's ``file-parser`` plugin: how PDF files in the messages are read.
    ``pdf_engine``: ``"pdf-text"`` (free, text layer), ``"mistral-ocr"`` (scans, billed) or ``"native"``."""

    pdf_engine: Literal["pdf-text", "mistral-ocr", "native"] | None = attrs.field(
        default=None,
        validator=lambda _, __, v: _plugin_choice(v, ("pdf-text", "mistral-ocr", "native"), "FileParser pdf_engine"),
    )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": "file-parser"}
        if self.pdf_engine is not None:
            body["pdf"] = {"engine": self.pdf_engine}
        return body


@attrs.frozen
class ResponseHealing:
    """OpenRouter's ``response-healing`` plugin: OpenRouter repairs malformed JSON replies before they
    come back (non-streaming requests only; the library still validates what arrives)."""

    def to_body(self) -> dict[str, Any]:
        return {"id": "response-healing"}


Plugin = WebSearch | FileParser | ResponseHealing


class CallOptions(TypedDict, total=False):
    """The keyword arguments `generate` and `stream` take besides the prompt (and ``schema``)."""

    messages: Sequence[Mapping[str, Any]] | None
    model: str | None
    temperature: float | None
    max_tokens: int | None
    extra_body: Mapping[str, Any] | None
    timeout: float | None
    max_attempts: int | None
    provider: Provider | Mapping[str, Any] | None
    models: Sequence[str] | None
    plugins: Sequence[Plugin] | None
    session_id: str | None
    #: Tools, reasoning: see the "Tools, reasoning and the rest of a reply" guide for the values they take.
    tools: Sequence[Any] | None
    tool_choice: Any
    parallel_tool_calls: bool | None
    reasoning: Any


class GenerateOptions(CallOptions, total=False):
    """`CallOptions` plus ``max_reasks`` (`generate` only)."""

    max_reasks: int | None


def _provider(value: Provider | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, Provider):
        return value.to_body()
    if isinstance(value, MAPPING):
        built: Provider = _build(Provider, value, "provider")
        return built.to_body()
    raise ConfigurationError(f"provider must be a Provider(...) or a dict of its fields, got {type(value).__name__}")


def _models(value: Sequence[str]) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigurationError(f"models must be a non-empty list of model ids (the fallbacks), got {value!r}")
    for item in value:
        if not isinstance(item, str) or not is_model_id(item):
            raise ConfigurationError(f"models must hold model ids such as 'openai/gpt-4o-mini', got {item!r}")
    return list(value)


def _plugins(value: Sequence[Plugin]) -> list[dict[str, Any]]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigurationError(f"plugins must be a list such as [WebSearch()], got {value!r}")
    out = []
    for item in value:
        if not isinstance(item, (WebSearch, FileParser, ResponseHealing)):
            raise ConfigurationError(
                f"plugins must hold WebSearch(...), FileParser(...) or ResponseHealing() values, got {item!r} "
                "(other plugins: extra_body={'plugins': [...]})"
            )
        out.append(item.to_body())
    return out


def _session_id(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SESSION_ID:
        raise ConfigurationError(f"session_id must be a non-empty string of at most {MAX_SESSION_ID} characters, got {value!r}")
    return value


def request_fields(
    extra_body: Mapping[str, Any] | None,
    provider: Provider | Mapping[str, Any] | None = None,
    models: Sequence[str] | None = None,
    plugins: Sequence[Plugin] | None = None,
    session_id: str | None = None,
) -> dict[str, Any] | None:
    """The extra request fields of one call: ``extra_body`` (checked, copied) plus the typed options in
    OpenRouter's shapes. None when there are none. Raises `ConfigurationError` naming a bad option, or
    one given both as an option and in ``extra_body``."""
    fields = check_extra_body(extra_body)
    typed: dict[str, Any] = {}
    if provider is not None:
        typed["provider"] = _provider(provider)
    if models is not None:
        typed["models"] = _models(models)
    if plugins is not None:
        typed["plugins"] = _plugins(plugins)
    if session_id is not None:
        typed["session_id"] = _session_id(session_id)
    if not typed:
        return fields
    for name in typed:
        if fields is not None and name in fields:
            raise ConfigurationError(f"{name} is given both as {name}= and in extra_body: give it once")
    return {**(fields or {}), **typed}


def check_transport_options(timeout: float | None, max_attempts: int | None) -> None:
    """Refuse a per-call ``timeout`` (seconds, > 0) or ``max_attempts`` (>= 1) no request could use."""
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0
    ):
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    _positive_int(max_attempts, "max_attempts")
