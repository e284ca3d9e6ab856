"""The example schema of the tests, the benchmarks and the README: a city and its country."""

from __future__ import annotations

from typing import Any

__all__ = ["CITY", "PARIS"]

#: A strict-compatible JSON Schema (every property required, no others).
CITY: dict[str, Any] = {
    "title": "city_country",
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
#: An answer that validates against `CITY`.
PARIS: dict[str, str] = {"city": "Paris", "country": "France"}
