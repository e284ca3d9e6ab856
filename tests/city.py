"""The schema most tests ask for, and the answer the local server is usually told to give."""

from __future__ import annotations

from typing import Any

CITY: dict[str, Any] = {
    "title": "city_country",
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
PARIS = {"city": "Paris", "country": "France"}
