"""JSON on the hot path: `fast_loads` (orjson, with the json module's answers) and `MAPPING`.

Every request decodes a reply body and the structured content inside it. orjson reads them about
four times sooner than the json module, but not always the same way: it turns an integer beyond 64
bits into a float, and refuses what the json module reads (NaN, Infinity, 1e999, lone surrogate
escapes, a BOM). `fast_loads` gives orjson's value only where it is the json module's value too and
says `MISS` otherwise, so that the caller's own json-module decoder (with its own rules and error
messages) decides.

``isinstance(value, Mapping)`` runs the ABC's ``__instancecheck__`` in Python for every plain dict
(about a third of a microsecond; decoding a reply asks a dozen times). ``isinstance(value, MAPPING)``
answers a dict in C and gives the same answer for every other value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from orjson import loads as _orjson_loads

__all__ = ["MAPPING", "MISS", "fast_loads"]

MAPPING: Final[tuple[type[dict[Any, Any]], type[Mapping[Any, Any]]]] = (dict, Mapping)

#: What `fast_loads` returns when the json module must decide.
MISS: Final[Any] = object()

# 19 digits in a row may be an integer beyond 64 bits (read as a float by orjson); found by mapping
# every digit to "0" and everything else to " " (a regex takes twenty times longer)
_DIGITS_AS_ZEROS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19


def fast_loads(data: str | bytes) -> Any:
    """``json.loads(data)`` when orjson can give exactly that value, else `MISS`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_RUN in raw.translate(_DIGITS_AS_ZEROS):
        return MISS
    try:
        return _orjson_loads(data)
    except ValueError:
        return MISS
