"""Every error openrouter-registry raises, under one base class.

Messages say what went wrong and what to do about it. None of them ever contains the API key:
errors are built from status codes, OpenRouter's own error messages, model ids and generation ids,
and every text that came from a server passes through `scrub` (in the constructors below) before it
is stored, so an upstream that echoes the key cannot get it into an exception or a log record.
"""

from __future__ import annotations

from decimal import Decimal
import builtins
import logging
import re
import warnings
from typing import Any

__all__ = [
    "OpenRouterError",
    "ConfigurationError",
    "SettingsError",
    "MissingAPIKeyError",
    "PluginError",
    "HeaderError",
    "APIError",
    "BadRequestError",
    "ContextLengthError",
    "AuthenticationError",
    "InsufficientCreditsError",
    "ModerationError",
    "ModelNotAvailableError",
    "RateLimitError",
    "ProviderError",
    "InvalidResponseError",
    "TimeoutError",
    "PoolTimeoutError",
    "ConnectionError",
    "CertificateError",
    "UnsafeFileError",
    "StructuredOutputError",
    "TruncatedOutputError",
    "scrub",
    "remember_secret",
]

DASHBOARD_KEYS = "https://openrouter.ai/settings/keys"

# --- scrubbing: keys never reach a message ----------------------------------------------------------

#: What a key is replaced with.
REDACTED = "[redacted key]"
#: Characters that print as nothing: an echo split by them still shows the key to a reader.
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff")
#: Anything shaped like an OpenRouter key, whoever's it is (in any case, split by invisible characters or not).
_KEY_SHAPE = re.compile("sk-or-[A-Za-z0-9_" + re.escape("".join(sorted(_INVISIBLE))) + "-]{6,}", re.IGNORECASE)
#: Keys this process was given (`Secret` registers each one); bounded, the most recent kept.
_SECRETS: dict[str, str] = {}  # key -> its lower-case form
_MAX_SECRETS = 1024
#: Shorter values are not scrubbed (a 3-letter test key would otherwise blank words out of messages).
_MIN_SECRET = 8


def remember_secret(value: str) -> None:
    """Register ``value`` (an API key) so that `scrub` removes it from every message."""
    if isinstance(value, str) and len(value.strip()) >= _MIN_SECRET:
        _SECRETS.pop(value, None)
        _SECRETS[value] = value.lower()
        while len(_SECRETS) > _MAX_SECRETS:
            del _SECRETS[next(iter(_SECRETS))]




def scrub(text: str) -> str:
    """``text`` without any key this process knows, nor anything shaped like an OpenRouter key: also an
    echo in another case (``SK-OR-V1-...``) or split by invisible characters (zero-width spaces and joiners,
    soft hyphens, BOMs).

    Every text built from a server's answer goes through here before it reaches an exception or a
    log record (the constructors of `APIError` and `StructuredOutputError` call it)."""
    if not isinstance(text, str):
        return text
    if "sk-or-" in text or "SK-OR-" in text.upper():
        text = _KEY_SHAPE.sub(REDACTED, text)
    for secret in sorted(_SECRETS, key=len, reverse=True):  # longest first: a key may start with another
        if secret in text:
            text = text.replace(secret, REDACTED)
    if _SECRETS:
        if not text.isascii():  # invisible characters are not ASCII
            text = _scrub_disguised(text)
        else:
            lowered = text.lower()
            if any(folded in lowered for folded in _SECRETS.values()):
                text = _scrub_disguised(text)
    return text


def _scrub_disguised(text: str) -> str:
    """Replace the echoes of known keys that differ from them only in case or by invisible characters."""
    kept = [(i, c.lower() if len(c.lower()) == 1 else c) for i, c in enumerate(text) if c not in _INVISIBLE]
    folded = "".join(c for _, c in kept)
    spans: list[tuple[int, int]] = []
    for secret in sorted(_SECRETS, key=len, reverse=True):
        needle = secret.lower()
        start = folded.find(needle)
        while start != -1:
            spans.append((kept[start][0], kept[start + len(needle) - 1][0] + 1))
            start = folded.find(needle, start + len(needle))
    if not spans:
        return text
    pieces, last = [], 0
    for begin, end in sorted(spans):
        if begin < last:
            begin = last
        if begin >= end:
            continue
        pieces += [text[last:begin], REDACTED]
        last = end
    return "".join(pieces) + text[last:]


def _scrubbed(value: Any, depth: int = 0) -> Any:
    """``value`` (decoded JSON metadata) with every string scrubbed; nesting past 32 levels dropped."""
    if isinstance(value, str):
        return scrub(value)
    if depth > 32:
        return None
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: _scrubbed(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, depth + 1) for v in value]
    return value


def _scrub_optional(text: str | None) -> str | None:
    return None if text is None else scrub(text)


class _ScrubFilter(logging.Filter):
    """Scrubs keys out of the library's log records (message and arguments, formatted once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


#: The library's logger, and the HTTP libraries' loggers whose DEBUG records quote response headers
#: (a filter applies only to records logged on its own logger, so each one is named).
_SCRUBBED_LOGGERS = (
    "openrouter_registry",
    "openrouter_registry.replies.structured",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)
for _name in _SCRUBBED_LOGGERS:
    logging.getLogger(_name).addFilter(_ScrubFilter())


class OpenRouterError(Exception):
    """Base class of every error this library raises."""


class ConfigurationError(OpenRouterError, ValueError):
    """The settings, the arguments or the environment are wrong. Fix the configuration; retrying won't help."""


class SettingsError(ConfigurationError):
    """A setting (environment variable or explicit argument) holds a malformed value."""

    def __init__(self, variable: str, expected: str, got: str | None = None) -> None:
        self.variable = variable
        self.expected = expected
        message = f"{variable} must be {expected}"
        if got is not None:
            message += f", got {got}"
        super().__init__(message)


class UnsafeFileError(ConfigurationError):
    """A file the library was asked to write is a symlink, a FIFO, a device, a directory or a hard link
    to another file: it is refused, never followed or replaced (another local user may have planted it)."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was configured. The message starts with the documented `OPENROUTER_API_KEY is not set`."""

    def __init__(self) -> None:
        super().__init__(
            "OPENROUTER_API_KEY is not set: export OPENROUTER_API_KEY=<your key> "
            f"(create one at {DASHBOARD_KEYS}) or pass api_key=..."
        )


class PluginError(OpenRouterError):
    """A plugin misbehaved (failed to load, broke its hook contract)."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class HeaderError(PluginError):
    """A plugin returned a header name or value that cannot be sent (CR/LF, non-ASCII, reserved)."""


class APIError(OpenRouterError):
    """OpenRouter (or the provider behind it) answered with an error.

    `status` is the HTTP status (or the `error.code` of an error delivered inside an HTTP 200),
    `model` the model that was asked for, `generation_id` OpenRouter's id when one was given,
    `provider` the upstream provider when OpenRouter named it, and `metadata` the raw
    `error.metadata` object.
    """

    remedy: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        model: str | None = None,
        generation_id: str | None = None,
        provider: str | None = None,
        metadata: dict[str, Any] | None = None,
        attempts: int = 1,
    ) -> None:
        self.api_message = scrub(message)
        self.status = status
        self.model = _scrub_optional(model)
        self.generation_id = _scrub_optional(generation_id)
        self.provider = _scrub_optional(provider)
        self.metadata = _scrubbed(dict(metadata or {}))
        self.attempts = attempts
        super().__init__(self._compose())

    def __str__(self) -> str:
        # composed on demand: the generation path adds the attempts of earlier modes and re-asks
        return self._compose()

    def _compose(self) -> str:
        parts = [self.api_message.rstrip(".") + "."]
        context = []
        if self.status is not None:
            context.append(f"status {self.status}")
        if self.model:
            context.append(f"model {self.model}")
        if self.provider:
            context.append(f"provider {self.provider}")
        if self.generation_id:
            context.append(f"generation {self.generation_id}")
        if self.attempts > 1:
            context.append(f"after {self.attempts} attempts")
        if context:
            parts.append("(" + ", ".join(context) + ")")
        if self.remedy:
            parts.append(self.remedy)
        return " ".join(parts)


class BadRequestError(APIError):
    """HTTP 400: the request was refused as invalid. Check the parameters (model id, max_tokens, schema)."""

    remedy = "Check the request parameters (model id, max_tokens, response_format)."


class ContextLengthError(BadRequestError):
    """Raised before any request is sent: the prompt's offline token estimate plus ``max_tokens`` clearly
    exceeds the model's context window. Carries ``context_window``, ``estimated_tokens`` and ``max_tokens``;
    ``attempts`` is 0 (nothing was sent, nothing was billed)."""

    remedy = "Shorten the prompt, lower max_tokens, or use a model with a larger context window."

    def __init__(self, *, model: str, context_window: int, estimated_tokens: int, max_tokens: int | None) -> None:
        self.context_window = context_window
        self.estimated_tokens = estimated_tokens
        self.max_tokens = max_tokens
        asked = f" plus max_tokens {max_tokens}" if max_tokens else ""
        super().__init__(
            f"The prompt (at least {estimated_tokens} tokens by an offline estimate){asked} does not fit in the "
            f"context window of {context_window} tokens",
            model=model,
            attempts=0,
        )


class AuthenticationError(APIError):
    """HTTP 401: the key is missing, invalid or disabled."""

    remedy = f"Check OPENROUTER_API_KEY: it must be a valid, enabled key ({DASHBOARD_KEYS})."


class InsufficientCreditsError(APIError):
    """HTTP 402: the account cannot pay for this request."""

    remedy = "Add credits at https://openrouter.ai/settings/credits or lower max_tokens."


class ModerationError(APIError):
    """HTTP 403: the input was flagged by moderation. `reasons` and `flagged_input` come from OpenRouter."""

    remedy = "Rephrase the flagged input or use a model without moderation."

    def __init__(self, message: str, **kwargs: Any) -> None:
        metadata = kwargs.get("metadata") or {}
        reasons = metadata.get("reasons")
        self.reasons: list[str] = [scrub(str(r)) for r in reasons] if isinstance(reasons, list) else []
        flagged = metadata.get("flagged_input")
        self.flagged_input: str | None = scrub(flagged) if isinstance(flagged, str) else None
        super().__init__(message, **kwargs)

    def _compose(self) -> str:
        text = super()._compose()
        if self.reasons:
            text += f" Reasons: {', '.join(map(str, self.reasons))}."
        return text


class ModelNotAvailableError(APIError):
    """HTTP 404: the model does not exist, or no provider serves it with the requested parameters."""

    remedy = "Check the model id at https://openrouter.ai/models or try a different model."


class RateLimitError(APIError):
    """HTTP 429 after every retry. The message starts with `OpenRouter API rate limit exceeded`."""

    remedy = (
        "Check your balance and usage limits at https://openrouter.ai/settings/credits, "
        "consider upgrading your plan, or try a different model (free models allow 20 requests a minute)."
    )

    def _compose(self) -> str:
        return "OpenRouter API rate limit exceeded: " + super()._compose()


class ProviderError(APIError):
    """HTTP 5xx (or a provider failure reported in an HTTP 200) after every retry."""

    remedy = "The upstream provider failed; try again later or use a different model or provider."


class InvalidResponseError(ProviderError):
    """OpenRouter answered something that is not a usable response (not JSON, no choices, no
    embeddings). Transient: the same request usually succeeds when sent again."""


class TimeoutError(APIError, builtins.TimeoutError):
    """The request timed out (HTTP 408 or a client-side timeout) after every retry."""

    remedy = "Raise OPENROUTER_TIMEOUT, lower max_tokens, or try a faster model."


class PoolTimeoutError(TimeoutError):
    """No connection of the local pool came free within OPENROUTER_TIMEOUT: nothing was sent to OpenRouter.

    Raised at once, never retried: the limit is this process's own (too many requests in flight for
    ``OPENROUTER_MAX_CONNECTIONS``), not a failure of OpenRouter.
    """

    remedy = "Raise OPENROUTER_MAX_CONNECTIONS or send fewer requests at once (nothing was sent to OpenRouter)."


class ConnectionError(APIError, builtins.ConnectionError):
    """OpenRouter could not be reached after every retry."""

    remedy = "Check your network and OPENROUTER_BASE_URL."


class CertificateError(ConnectionError):
    """The TLS certificate of OpenRouter (or of the proxy in between) failed verification. Never retried:
    the same certificate would fail again. The message names OpenSSL's reason."""

    remedy = (
        "Check the system clock, OPENROUTER_BASE_URL, and SSL_CERT_FILE / SSL_CERT_DIR (a corporate proxy that "
        "re-signs TLS needs its CA certificate there)."
    )


class StructuredOutputError(OpenRouterError):
    """The model's reply could not be turned into data that validates against the schema.

    Carries the raw `text` of the last reply, the validation `errors`, the `usage` and `cost`
    spent on every attempt, and the `model` and `generation_id`.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        errors: list[str] | None = None,
        model: str | None = None,
        generation_id: str | None = None,
        usage: Any = None,
        cost: Decimal | None = None,
        attempts: int = 1,
    ) -> None:
        self.text = scrub(text)
        self.errors = [scrub(error) for error in errors or []]
        self.model = model = _scrub_optional(model)
        self.generation_id = generation_id = _scrub_optional(generation_id)
        self.usage = usage
        self.cost = cost
        self.attempts = attempts
        context = []
        if model:
            context.append(f"model {model}")
        if generation_id:
            context.append(f"generation {generation_id}")
        if attempts > 1:
            context.append(f"after {attempts} attempts")
        full = scrub(message)
        if context:
            full += " (" + ", ".join(context) + ")"
        if self.errors:
            full += ": " + "; ".join(self.errors[:5])
        super().__init__(full)


class TruncatedOutputError(StructuredOutputError):
    """The reply was cut off (`finish_reason: "length"`) before the structure was complete."""


class ToolLoopError(OpenRouterError):
    """`OpenRouterService.run_tools` reached ``max_rounds`` and the model still asked for tools.

    Carries the ``transcript`` (every message sent and received, tool results included), the
    ``rounds`` run, and the ``usage``, ``cost`` and ``attempts`` summed over every round."""

    def __init__(
        self,
        message: str,
        *,
        transcript: list[dict[str, Any]],
        rounds: int,
        usage: Any = None,
        cost: Decimal | None = None,
        attempts: int = 0,
    ) -> None:
        self.transcript = transcript
        self.rounds = rounds
        self.usage = usage
        self.cost = cost
        self.attempts = attempts
        super().__init__(scrub(message))


def warn_moved(old: str, new: str, *, stacklevel: int = 3) -> None:
    """The DeprecationWarning for a pre-0.2 import path: ``old`` still works in 0.1, ``new`` is the one to use.
    ``stacklevel`` 3 points at the caller of the module ``__getattr__`` or loader that calls this."""
    warnings.warn(f"{old} is deprecated and goes away in 0.2: {new}", DeprecationWarning, stacklevel=stacklevel)
