"""The model catalog: what OpenRouter publishes about every model at ``GET {base_url}/models``.

    catalog = await load_catalog(settings)        # None when off, or when nothing could be had
    info = catalog.get("mistralai/mixtral-8x7b-instruct") if catalog else None
    info.context_length, info.max_completion_tokens, info.pricing.prompt, info.structured_modes()

`ModelInfo` values are frozen attrs classes built with the one cattrs converter of this module, from
the wire format (nested ``architecture``, ``top_provider``, ``pricing`` with prices as strings) or
from the disk cache (the same values, flat). Unknown fields are ignored, missing ones are None, a
malformed entry is skipped (one warning for the whole list). Prices are `decimal.Decimal` USD per
token; OpenRouter's negative placeholder ("-1": a variable price, e.g. ``openrouter/auto``) is None.

Loading, in order: what this process already holds; the disk cache (``OPENROUTER_CACHE_DIR``, one
file per base URL; none for a local server unless that is set) when it is younger than
``OPENROUTER_CATALOG_TTL``; else one GET with a short
deadline (`FETCH_TIMEOUT`, no retries, no key). The fetched list is written atomically (a temporary
file, then ``os.replace``), so several processes can share the cache dir. When the fetch fails, the
stale cache is used (one warning); with neither, the catalog is None and everything works as it does
without one. After a failure the fetch is not tried again for `RETRY_AFTER_FAILURE` seconds.
Nothing happens at import; ``OPENROUTER_CATALOG=off`` turns all of it off. Nothing here raises
into a generation: every failure is a logged warning and a None.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import cattrs

from ..settings import Settings

if TYPE_CHECKING:  # asyncio and hashlib load on first use: resolving a model must not import them
    import asyncio

__all__ = [
    "ModelInfo",
    "ReasoningFacts",
    "Pricing",
    "Catalog",
    "load_catalog",
    "settled",
    "loaded_catalog",
    "lookup",
    "parse_models",
    "cache_dir",
    "decimal_text",
    "modes_from_parameters",
    "FETCH_TIMEOUT",
    "RETRY_AFTER_FAILURE",
]

log = logging.getLogger("openrouter_registry")

#: Seconds the whole catalog fetch may take (connect to last byte); a generation waits at most this long.
FETCH_TIMEOUT = 5.0
#: After a failed fetch, seconds before the next try (the stale cache, or nothing, serves meanwhile).
RETRY_AFTER_FAILURE = 300.0
#: The largest /models body accepted (the real one is about 1.5 MB).
MAX_BODY_BYTES = 32 * 1024 * 1024
CACHE_FORMAT = 1
APP_NAME = "openrouter-registry"


@attrs.frozen
class Pricing:
    """USD per token (``request``: per request; ``image``: per image), None when unknown or variable."""

    prompt: Decimal | None = None
    completion: Decimal | None = None
    request: Decimal | None = None
    image: Decimal | None = None
    input_cache_read: Decimal | None = None
    input_cache_write: Decimal | None = None
    internal_reasoning: Decimal | None = None

    def per_million(self, which: str) -> Decimal | None:
        """The price of a million tokens of ``which`` (``"prompt"``, ``"completion"``...), or None."""
        value: Decimal | None = getattr(self, which)
        return None if value is None else value * 1_000_000

    def to_dict(self) -> dict[str, str | None]:
        """Prices as decimal strings (exact), None when unknown."""
        return {k: None if v is None else decimal_text(v) for k, v in attrs.asdict(self).items()}


@attrs.frozen
class ReasoningFacts:
    """What the catalog says about a model's reasoning: the efforts it takes, whether it can be turned off."""

    supported_efforts: tuple[str, ...] | None = None
    default_effort: str | None = None
    default_enabled: bool | None = None
    supports_max_tokens: bool | None = None
    mandatory: bool | None = None


@attrs.frozen
class ModelInfo:
    """One model as OpenRouter lists it. ``max_completion_tokens`` is the top provider's output limit;
    ``supported_parameters`` is None when the listing did not say (older API versions)."""

    id: str
    name: str | None = None
    context_length: int | None = None
    max_completion_tokens: int | None = None
    pricing: Pricing = Pricing()
    supported_parameters: tuple[str, ...] | None = None
    input_modalities: tuple[str, ...] = ()
    output_modalities: tuple[str, ...] = ()
    tokenizer: str | None = None
    expiration_date: str | None = None
    #: The listing's ``reasoning`` object (``supported_efforts``, ``default_effort``, ``mandatory``, ...).
    reasoning: ReasoningFacts | None = None

    def structured_modes(self) -> tuple[str, ...] | None:
        """The structured-output modes its parameters allow, best first (see `modes_from_parameters`)."""
        return modes_from_parameters(self.supported_parameters)


def modes_from_parameters(parameters: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``structured_outputs`` -> json_schema first; ``response_format`` -> json_object; ``tools`` without
    either -> tools (one forced function call); prompt always last (it needs no parameter). None when
    the parameters are unknown."""
    if parameters is None:
        return None
    modes = []
    if "structured_outputs" in parameters:
        modes.append("json_schema")
    if "response_format" in parameters:
        modes.append("json_object")
    if not modes and "tools" in parameters:
        modes.append("tools")
    modes.append("prompt")
    return tuple(modes)


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain positional text ("0.0000025", never "2.5E-6")."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- conversion: the one cattrs converter for catalog values -------------------------------------

_converter = cattrs.Converter()


#: Bounds on a catalog price (USD per token, request or image): at most `MAX_PRICE_DIGITS` significant
#: digits, at least 10**`MIN_PRICE_EXPONENT` when not zero, below `MAX_PRICE`. Real prices sit far
#: inside them (0.0000025, 0.02); "1e999999999" would print as a billion digits and overflow every sum.
MAX_PRICE_DIGITS = 30
MIN_PRICE_EXPONENT = -30
MAX_PRICE = Decimal(1_000_000)
#: Context windows and output limits above this many tokens are not real (the largest today is a few million).
MAX_TOKEN_COUNT = 1_000_000_000
#: A model id: printable ASCII without spaces, at most this long (a hostile id cannot forge a table row).
MAX_ID_LENGTH = 256


def _price(value: Any, _: type) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"a price must be a decimal string, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > 64:
        raise ValueError(f"not a price: {text[:20]!r}... ({len(text)} characters)")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a price: {value!r}") from None
    if not price.is_finite():
        raise ValueError(f"not a price: {value!r}")
    if price < 0:
        return None  # OpenRouter's "-1": variable (openrouter/auto)
    if price == 0:
        return Decimal(0)
    if len(price.as_tuple().digits) > MAX_PRICE_DIGITS or price.adjusted() < MIN_PRICE_EXPONENT or price >= MAX_PRICE:
        raise ValueError(f"price {text!r} is out of range (0 or 1e{MIN_PRICE_EXPONENT} to {MAX_PRICE} USD)")
    return price


def _count(value: Any, _: type) -> int | None:
    if isinstance(value, bool):
        raise ValueError("a token count must be an integer, got a bool")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 20:
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"a token count must be an integer, got {str(value)[:40]!r}")
    if value > MAX_TOKEN_COUNT:
        raise ValueError(f"a token count of {str(value)[:40]} is out of range (at most {MAX_TOKEN_COUNT})")
    return value if value > 0 else None  # 0 means "unknown" in OpenRouter's listings


def _model_id(entry: Mapping[str, Any]) -> None:
    id = entry.get("id")
    if not isinstance(id, str) or not 0 < len(id) <= MAX_ID_LENGTH or not id.isascii() or not id.isprintable() or " " in id:
        shown = repr(id)[:60] if isinstance(id, str) else type(id).__name__
        raise ValueError(f"id {shown} is not a model id (printable ASCII, no spaces, 1 to {MAX_ID_LENGTH} characters)")


def _text(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


_converter.register_structure_hook(Decimal, _price)
_converter.register_structure_hook(int, _count)
_converter.register_structure_hook(str, _text)
_converter.register_unstructure_hook(Decimal, decimal_text)


_REASONING_FACTS = frozenset(attrs.fields_dict(ReasoningFacts))
_REASONING_FLAGS = frozenset({"default_enabled", "supports_max_tokens", "mandatory"})


def _reasoning(value: Any, _: type) -> ReasoningFacts:
    """The facts `_flatten` kept (each of its type already): built directly (cattrs takes no ``bool | None``)."""
    efforts = value.get("supported_efforts")
    return ReasoningFacts(**{**value, "supported_efforts": tuple(efforts) if efforts is not None else None})


_converter.register_structure_hook(ReasoningFacts, _reasoning)


def _flatten(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The wire format (nested ``architecture`` and ``top_provider``) as `ModelInfo`'s flat fields;
    a flat (cached) entry passes through."""
    flat = {k: entry[k] for k in ("id", "name", "context_length", "pricing", "supported_parameters", "expiration_date") if entry.get(k) is not None}
    reasoning = entry.get("reasoning")
    if isinstance(reasoning, Mapping):  # a malformed reasoning object is no facts, not a skipped model
        flat["reasoning"] = {
            k: v for k, v in reasoning.items()
            if k in _REASONING_FACTS and (isinstance(v, bool) if k in _REASONING_FLAGS else
                                          isinstance(v, str) if k == "default_effort" else
                                          isinstance(v, list) and all(isinstance(e, str) for e in v))
        }
    architecture = entry.get("architecture")
    if isinstance(architecture, Mapping):
        for key in ("tokenizer", "input_modalities", "output_modalities"):
            if architecture.get(key) is not None:
                flat[key] = architecture[key]
    top = entry.get("top_provider")
    if isinstance(top, Mapping) and top.get("max_completion_tokens") is not None:
        flat["max_completion_tokens"] = top["max_completion_tokens"]
    for key in ("tokenizer", "input_modalities", "output_modalities", "max_completion_tokens"):
        if key not in flat and entry.get(key) is not None:
            flat[key] = entry[key]
    return flat


def parse_models(entries: Any, *, source: str = "/models") -> dict[str, ModelInfo]:
    """`ModelInfo` by id from a ``data`` list (wire or cached form). Malformed entries are skipped,
    with one warning naming how many and the first problem; never raises."""
    if not isinstance(entries, list):
        log.warning("The model catalog from %s is not a list of models; ignoring it", source)
        return {}
    builder = _Models(source)
    for entry in entries:
        builder.add(entry)
    return builder.finish()


class _Models:
    """`parse_models` one entry at a time (`add`), for a listing read in steps (`read_listing`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.models: dict[str, ModelInfo] = {}
        self.skipped: list[str] = []
        self.index = 0

    def add(self, entry: Any) -> None:
        index, self.index = self.index, self.index + 1
        try:
            if not isinstance(entry, Mapping):
                raise ValueError(f"not an object but {type(entry).__name__}")
            _model_id(entry)
            info = _converter.structure(_flatten(entry), ModelInfo)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, RecursionError, ArithmeticError) as exc:
            name = entry.get("id") if isinstance(entry, Mapping) else None
            reason = "; ".join(str(e) for e in getattr(exc, "exceptions", [])) or str(exc)
            shown = ascii(name)[1:-1][:80] if isinstance(name, str) and name else f"entry {index}"
            self.skipped.append(f"{shown}: {reason}"[:300])
            return
        self.models[info.id] = info

    def finish(self) -> dict[str, ModelInfo]:
        if self.skipped:
            log.warning(
                "Skipped %d malformed model(s) in the catalog from %s (first: %s)",
                len(self.skipped), self.source, self.skipped[0],
            )
        return self.models


_WHITESPACE = re.compile(r"[ \t\n\r]*")
#: What `read_listing` puts in place of the list it handed out item by item.
LISTED: Any = object()


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_listing(text: str, key: str, each: Callable[[Any], None]) -> dict[str, Any]:
    """Read the JSON object ``text`` in steps: the items of its list ``key`` are decoded one at a time
    and handed to ``each`` (then dropped), every other field is returned (``key`` maps to `LISTED`).
    No single C call decodes more than one item, so a worker thread doing this gives the interpreter
    lock back to the event loop between items (one ``json.loads`` of a 30 MB catalog held it for a
    third of a second, and freeing the million objects it made for another tenth). Strict JSON (NaN
    and Infinity refused); raises ValueError (or RecursionError) for anything else."""
    scan = json.JSONDecoder(parse_constant=_not_json).raw_decode
    match = _WHITESPACE.match

    def skip(text: str, position: int) -> re.Match[str]:
        found = match(text, position)
        assert found is not None  # the pattern matches the empty string anywhere
        return found

    def expect(position: int, chars: str) -> tuple[str, int]:
        char = text[position:position + 1]
        if not char or char not in chars:
            raise ValueError(f"expected {' or '.join(chars)} at character {position}")
        return char, skip(text, position + 1).end()

    _, i = expect(skip(text, 0).end(), "{")
    fields: dict[str, Any] = {}
    if text[i:i + 1] == "}":
        i += 1
    else:
        while True:
            name, i = scan(text, i)
            if not isinstance(name, str):
                raise ValueError(f"expected a field name at character {i}")
            _, i = expect(skip(text, i).end(), ":")
            if name == key and text[i:i + 1] == "[":
                i = skip(text, i + 1).end()
                if text[i:i + 1] == "]":
                    i += 1
                else:
                    while True:
                        item, i = scan(text, i)
                        each(item)
                        del item
                        char, i = expect(skip(text, i).end(), ",]")
                        if char == "]":
                            break
                fields[name] = LISTED
            else:
                fields[name], i = scan(text, i)
            char, i = expect(skip(text, i).end(), ",}")
            if char == "}":
                break
    if skip(text, i).end() != len(text):
        raise ValueError(f"extra data after the object at character {i}")
    return fields


@attrs.frozen
class Catalog:
    """Every model OpenRouter listed, by id, and when the list was fetched (``time.time()``)."""

    models: Mapping[str, ModelInfo] = attrs.field(repr=lambda m: f"<{len(m)} models>")
    fetched_at: float
    source: str

    def get(self, model: str) -> ModelInfo | None:
        """The entry for ``model``; a variant (``:nitro``) without its own entry gets its base model's."""
        info = self.models.get(model)
        if info is None and ":" in model:
            info = self.models.get(model.split(":", 1)[0])
        return info

    def __len__(self) -> int:
        return len(self.models)

    def age(self) -> float:
        return max(0.0, time.time() - self.fetched_at)


# --- the disk cache --------------------------------------------------------------------------------


def cache_dir(settings: Settings) -> Path | None:
    """``OPENROUTER_CACHE_DIR``; else the user cache dir from platformdirs (imported only here), except
    for a local server (a loopback base URL, e.g. the demo's or a plugin's tests'), whose catalog and
    modes stay in memory instead of leaving a file per random port in the user's cache: None."""
    if settings.cache_dir:
        return Path(settings.cache_dir).expanduser()
    if _is_local(settings.base_url):
        return None
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


@functools.lru_cache(maxsize=64)  # asked on every request (the modes file lookup): parse each URL once
def _is_local(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cache_file(settings: Settings, kind: str) -> Path | None:
    """``<cache dir>/<kind>-<hash of the base URL>.json`` (one file per API, so a local test server's
    catalog never stands in for OpenRouter's), or None when nothing is cached on disk (see `cache_dir`)."""
    import hashlib

    folder = cache_dir(settings)
    if folder is None:
        return None
    digest = hashlib.sha256(settings.base_url.encode()).hexdigest()[:16]
    return folder / f"{kind}-{digest}.json"


def write_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same directory and
    ``os.replace``: a reader (another process too) sees the old file or the new one, never half. The
    directory is created 0700; the temporary file is made with ``O_EXCL`` and a random name (mode 0600),
    and the rename replaces a planted symlink itself, never what it points to."""
    import orjson  # one C call a tenth as long as the json module's encoder (it holds the interpreter lock)

    from .safefiles import private_dir, write_beside

    private_dir(path.parent)
    encoded = orjson.dumps(data)

    def fill(handle: IO[bytes]) -> None:
        handle.write(encoded)

    write_beside(path, fill)


#: The largest cache file read back (the catalog's is about 1 MB; a larger one is ignored with a warning).
MAX_CACHE_BYTES = 2 * MAX_BODY_BYTES
#: Seconds a cache timestamp may lie in the future (clock skew between machines sharing a dir); beyond it, stale.
CLOCK_SKEW = 300.0


def read_json(path: Path, *, max_bytes: int | None = None) -> Any | None:
    """The JSON in the cache file ``path``; None when the file does not exist; a warning and None when
    it cannot be trusted (see `safefiles.read_trusted`: not a regular file, too large, another user's,
    writable by others) or is not JSON (too deeply nested included). Never raises."""
    from .safefiles import read_trusted

    data = read_trusted(path, max_bytes=MAX_CACHE_BYTES if max_bytes is None else max_bytes)
    if data is None:
        return None
    try:
        return _loads(data)
    except (ValueError, RecursionError, MemoryError) as exc:
        log.warning("Ignoring the unreadable cache file %s (%s)", path, type(exc).__name__)
        return None


def _read_cache(settings: Settings) -> Catalog | None:
    with _no_collection():
        return _read_cache_file(settings)


def _read_cache_file(settings: Settings) -> Catalog | None:
    from .safefiles import read_trusted

    path = cache_file(settings, "catalog")
    if path is None:
        return None
    data = read_trusted(path, max_bytes=MAX_CACHE_BYTES)
    if data is None:
        return None
    builder = _Models(str(path))
    try:
        fields = read_listing(data.decode("utf-8"), "models", builder.add)
    except (ValueError, RecursionError, MemoryError) as exc:
        log.warning("Ignoring the unreadable cache file %s (%s)", path, type(exc).__name__)
        return None
    fetched_at = fields.get("fetched_at")
    if (
        fields.get("format") != CACHE_FORMAT or fields.get("models") is not LISTED or isinstance(fetched_at, bool)
        or not isinstance(fetched_at, (int, float)) or not math.isfinite(fetched_at)
    ):
        log.warning("Ignoring the cache file %s: not a catalog this version wrote", path)
        return None
    if fetched_at > time.time() + CLOCK_SKEW:
        log.warning("The cache file %s says it was written in the future; treating it as stale", path)
        fetched_at = 0.0
    source = fields.get("source")
    return Catalog(builder.finish(), float(fetched_at), source if isinstance(source, str) else str(path))


def _write_cache(settings: Settings, catalog: Catalog) -> None:
    with _no_collection():
        _write_cache_file(settings, catalog)


def _write_cache_file(settings: Settings, catalog: Catalog) -> None:
    path = cache_file(settings, "catalog")
    if path is None:
        return
    payload = {
        "format": CACHE_FORMAT,
        "source": catalog.source,
        "fetched_at": catalog.fetched_at,
        "models": [_converter.unstructure(info) for info in catalog.models.values()],
    }
    try:
        write_atomic(path, payload)
    except (OSError, ValueError) as exc:
        log.warning("Could not write the model catalog cache %s (%s); it will be fetched again", path, exc)


# --- fetching --------------------------------------------------------------------------------------


async def _fetch(settings: Settings) -> Catalog:
    """One GET of ``{base_url}/models`` within `FETCH_TIMEOUT` (no key, no retry). Raises on failure."""
    import asyncio
    import ssl
    import sys

    if "httpx" not in sys.modules:  # a first import takes a few hundred ms: not on the event loop
        await asyncio.to_thread(__import__, "httpx")
    import httpx

    url = settings.base_url + "/models"
    async with asyncio.timeout(FETCH_TIMEOUT):
        # the process's shared CA context (making one costs more than the fetch); none for plain http
        from ..http.backends import ssl_context

        verify: ssl.SSLContext | bool = False if url.startswith("http://") else ssl_context()
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False, verify=verify) as client:
            async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                if not response.is_success:
                    raise ValueError(f"HTTP {response.status_code}")
                body = bytearray()
                async for piece in response.aiter_bytes():
                    body += piece
                    if len(body) > MAX_BODY_BYTES:
                        raise ValueError(f"more than {MAX_BODY_BYTES} bytes")
    # parsed in a worker thread: a 1.5 MB catalog is tens of milliseconds of Python, a hostile 30 MB
    # one a second or more, and the event loop keeps serving replies meanwhile
    return await asyncio.to_thread(_parse_body, bytes(body), url)


def _loads(data: bytes) -> Any:
    """orjson; the json module for what orjson refuses (a small cache file's bytes: the caller bounds them)."""
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data, parse_constant=_not_json)


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Automatic garbage collection paused while a worker thread builds or writes a catalog: a 30 MB
    catalog is a few hundred thousand objects, and each full collection their growth triggered walked
    the whole heap holding the interpreter lock (up to half a second here, measured with
    ``gc.callbacks``). Nothing cyclic is made meanwhile; the collector's state is restored after (it
    stays off when the application had turned it off)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse_body(body: bytes, url: str) -> Catalog:
    with _no_collection():
        return _parse_json_body(body, url)


def _parse_json_body(body: bytes, url: str) -> Catalog:
    builder = _Models(url)
    fields = read_listing(body.decode("utf-8"), "data", builder.add)
    if fields.get("data") is not LISTED:
        raise ValueError('not {"data": [...]}')
    return Catalog(builder.finish(), time.time(), url)


# --- the process-wide store ------------------------------------------------------------------------

_Key = tuple[str, str]


class _Store:
    """What this process holds, per (base URL, cache dir): the catalog, when a fetch last failed,
    and one in-flight load per event loop (concurrent calls wait for it instead of fetching again)."""

    def __init__(self) -> None:
        self.catalogs: dict[_Key, Catalog] = {}
        self.failed_at: dict[_Key, float] = {}
        self.warned: set[_Key] = set()
        self.lock = threading.Lock()
        self.loads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def load_lock(self, key: _Key) -> asyncio.Lock:
        import asyncio

        loop = asyncio.get_running_loop()
        with self.lock:
            return self.loads.setdefault(loop, {}).setdefault(key, asyncio.Lock())

    def clear(self) -> None:
        with self.lock:
            self.catalogs.clear()
            self.failed_at.clear()
            self.warned.clear()


_STORE = _Store()


def _key(settings: Settings) -> _Key:
    return (settings.base_url, settings.cache_dir or "")


def loaded_catalog(settings: Settings) -> Catalog | None:
    """The catalog this process holds for ``settings`` (no I/O), or None."""
    if not settings.catalog:
        return None
    return _STORE.catalogs.get(_key(settings))


def lookup(model: str, settings: Settings) -> ModelInfo | None:
    """The loaded catalog's entry for ``model`` (no I/O), or None."""
    catalog = loaded_catalog(settings)
    return catalog.get(model) if catalog is not None else None


def _fresh(catalog: Catalog | None, settings: Settings) -> bool:
    return catalog is not None and catalog.age() < settings.catalog_ttl


def settled(settings: Settings) -> bool:
    """True when `load_catalog` (without ``refresh``) would return at once without I/O: the catalog is
    off, held and fresh, or a fetch failed less than `RETRY_AFTER_FAILURE` seconds ago (the disk cache
    was read then). The generation path asks this first, so a call costs no coroutine, lock or file
    check in the steady state, and none either while OpenRouter's ``/models`` is unreachable."""
    if not settings.catalog:
        return True
    key = _key(settings)
    if _fresh(_STORE.catalogs.get(key), settings):
        return True
    failed = _STORE.failed_at.get(key)
    return failed is not None and time.monotonic() - failed < RETRY_AFTER_FAILURE


async def load_catalog(settings: Settings, *, refresh: bool = False, network: bool = True) -> Catalog | None:
    """The catalog for ``settings``: from memory, the disk cache or the network (see the module
    docstring); ``refresh`` fetches now whatever the cache's age; ``network=False`` reads what is held or
    cached, however old, and never fetches. Never raises (a warning instead)."""
    if not settings.catalog:
        return None
    key = _key(settings)
    held = _STORE.catalogs.get(key)
    if (not refresh and settled(settings)) or (held is not None and not network):
        return held
    try:
        async with _STORE.load_lock(key):
            return await _load(settings, key, refresh, network)
    except Exception as exc:  # the catalog never breaks a generation
        log.warning("The model catalog could not be loaded (%s: %s)", type(exc).__name__, exc)
        return _STORE.catalogs.get(key)


async def _load(settings: Settings, key: _Key, refresh: bool, network: bool) -> Catalog | None:
    held = _STORE.catalogs.get(key)
    if _fresh(held, settings) and not refresh:  # another task loaded it while this one waited
        return held
    if held is None:
        import asyncio

        held = await asyncio.to_thread(_read_cache, settings)  # parsing a cached catalog: off the loop
        if held is not None:
            _STORE.catalogs[key] = held
        if _fresh(held, settings) and not refresh:
            return held
    if not network:
        return held
    failed = _STORE.failed_at.get(key)
    if not refresh and failed is not None and time.monotonic() - failed < RETRY_AFTER_FAILURE:
        return held
    try:
        catalog = await _fetch(settings)
    except Exception as exc:
        _STORE.failed_at[key] = time.monotonic()
        if key not in _STORE.warned:
            _STORE.warned.add(key)
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200] if str(exc) else type(exc).__name__
            if held is not None:
                when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(held.fetched_at))
                log.warning("Could not refresh the model catalog from %s (%s); using the one from %s",
                            settings.base_url, reason, when)
            else:
                log.warning("Could not fetch the model catalog from %s (%s); going on without it",
                            settings.base_url, reason)
        return held
    _STORE.failed_at.pop(key, None)
    _STORE.warned.discard(key)
    _STORE.catalogs[key] = catalog
    import asyncio

    await asyncio.to_thread(_write_cache, settings, catalog)
    return catalog


def load_catalog_blocking(settings: Settings, *, refresh: bool = False, network: bool = True) -> Catalog | None:
    """`load_catalog` for synchronous callers (the CLI), outside any running event loop."""
    import asyncio

    return asyncio.run(load_catalog(settings, refresh=refresh, network=network))


def reset() -> None:
    """Forget every catalog this process holds (tests; the disk cache stays)."""
    _STORE.clear()
