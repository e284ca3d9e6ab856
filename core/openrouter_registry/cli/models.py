"""`openrouter-registry models [QUERY] [--supports PARAM]... [--json] [--refresh]`: the model catalog,
one row per model, with the facts this library will use for it and the generator that serves it."""

from __future__ import annotations

import argparse
import json
import logging
from decimal import Decimal
from typing import Any

from .exits import EXIT_OK

__all__ = ["register", "cmd_models", "model_rows"]

COLUMNS = ("id", "context", "max output", "USD/M in", "USD/M out", "mode", "plugin", "generator")


def register(sub: Any) -> None:
    """Add the ``models`` command to the CLI's subparsers."""
    p = sub.add_parser("models", help="list OpenRouter's models with limits, prices, mode and generator")
    p.add_argument("query", metavar="QUERY", nargs="?", help="only ids or names containing this (any case)")
    p.add_argument("--supports", metavar="PARAM", action="append", default=[],
                   help="only models that accept this parameter (e.g. structured_outputs); repeatable")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--refresh", action="store_true", help="fetch the catalog now, whatever the cache's age")
    p.set_defaults(handler=cmd_models)


def model_rows(query: str | None, supports: list[str], refresh: bool) -> list[dict[str, Any]]:
    """One dict per matching catalog model (the ``--json`` objects). Raises `ConfigurationError` when the
    catalog is off, `OpenRouterError` when it can be neither fetched nor read from the cache."""
    from ..models.catalog import load_catalog_blocking
    from ..errors import ConfigurationError, OpenRouterError
    from ..models.modes import MODE_MEMORY
    from ..plugins.registry import get_registry

    registry = get_registry()
    settings = registry.default_settings()
    if not settings.catalog:
        raise ConfigurationError("the model catalog is off: unset OPENROUTER_CATALOG or set it to on")
    with _FetchFailure() as failure:  # the one message below says it all: no "going on without it" first
        catalog = load_catalog_blocking(settings, refresh=refresh)
    if catalog is None:
        reason = f" ({failure.reason})" if failure.reason else ""
        raise OpenRouterError(
            f"the model catalog is unavailable: {settings.base_url}/models could not be fetched{reason} and "
            "nothing is cached; check your network and OPENROUTER_BASE_URL"
        )
    needle = (query or "").lower()
    rows = []
    for info in sorted(catalog.models.values(), key=lambda i: i.id):
        if needle and needle not in info.id.lower() and needle not in (info.name or "").lower():
            continue
        if supports and not set(supports) <= set(info.supported_parameters or ()):
            continue
        resolution = registry.resolve(info.id, settings)
        facts = resolution.generator.facts()
        learned = MODE_MEMORY.get(info.id, "", settings)
        modes = list(facts.structured_modes)
        if learned in modes:
            modes = modes[modes.index(learned):]
        rows.append({
            "id": info.id,
            "context_window": facts.context_window,
            "max_output_tokens": facts.max_output_tokens,
            "pricing": info.pricing.to_dict(),
            "supported_parameters": None if info.supported_parameters is None else list(info.supported_parameters),
            "structured_modes": modes,
            "plugin": resolution.plugin,
            "generator": type(resolution.generator).__name__,
        })
    return rows


class _FetchFailure(logging.Filter):
    """Holds back the library's "could not fetch the model catalog ...; going on without it" warning
    while the ``models`` command loads the catalog, keeping its reason for the command's own error
    (a command that cannot go on without the catalog says one thing). Other records pass."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""
        self._logger = logging.getLogger("openrouter_registry")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Could not fetch the model catalog") and len(record.args or ()) >= 2:
            self.reason = str(record.args[1])  # type: ignore[index]  # (base_url, reason)
            return False
        return True

    def __enter__(self) -> _FetchFailure:
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self)


def _per_million(price: str | None) -> str:
    if price is None:
        return "-"
    from ..models.catalog import decimal_text

    value = Decimal(price) * 1_000_000
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else decimal_text(value)  # exact, never rounded


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """The text table; every cell through `terminal.safe` (upstream text never drives the terminal)."""
    from .terminal import safe

    raw = [
        (
            r["id"],
            str(r["context_window"] or "-"),
            str(r["max_output_tokens"] or "-"),
            _per_million(r["pricing"]["prompt"]),
            _per_million(r["pricing"]["completion"]),
            r["structured_modes"][0],
            r["plugin"],
            r["generator"],
        )
        for r in rows
    ]
    cells = [tuple(safe(str(value)) for value in row) for row in raw]
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    numeric = {1, 2, 3, 4}

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if i in numeric else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(COLUMNS), *(line(c) for c in cells)]


def cmd_models(args: argparse.Namespace) -> int:
    import sys

    rows = model_rows(args.query, args.supports, args.refresh)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        print("\n".join(_table(rows)))
    else:
        print("no model matches", file=sys.stderr)
    return EXIT_OK
