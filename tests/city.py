"""The schema most tests ask for, and the answer the local server is usually told to give (shared with
the benchmarks through `openrouter_registry.testing.schemas`)."""

from __future__ import annotations

from openrouter_registry.testing.schemas import CITY, PARIS

__all__ = ["CITY", "PARIS"]
