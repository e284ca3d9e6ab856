"""``--model`` (and ``resolve MODEL``) checked as the flag the user typed: an id no request could carry
is a usage error naming the flag (not ``OPENROUTER_MODEL``), and an id without its vendor
(``gpt-4o``) gets a did-you-mean from the model catalog and the plugins' claimed models."""

from __future__ import annotations

import difflib

from ..errors import ConfigurationError
from ..settings import Settings, is_model_id

__all__ = ["check_model_flag", "vendor_hint"]


def _known_ids(settings: Settings, network: bool) -> list[str]:
    from ..models.catalog import load_catalog_blocking
    from ..plugins.registry import get_registry

    known = {model for info in get_registry().plugins() for model in info.models}
    if settings.catalog:
        catalog = load_catalog_blocking(settings, network=network)
        if catalog is not None:
            known.update(catalog.models)
    return sorted(known)


def suggestions(model: str, known: list[str]) -> list[str]:
    """Ids in ``known`` that ``model`` (written without its ``vendor/``) probably means: those whose own
    name is ``model`` (any case, a ``:variant`` ignored), else the closest names; at most three."""
    wanted = model.lower().split(":", 1)[0]
    by_name: dict[str, list[str]] = {}
    for full in known:
        by_name.setdefault(full.rpartition("/")[2].lower().split(":", 1)[0], []).append(full)
    exact = by_name.get(wanted, [])
    if exact:
        return exact[:3]
    close = difflib.get_close_matches(wanted, list(by_name), n=3, cutoff=0.75)
    return [full for name in close for full in by_name[name]][:3]


def vendor_hint(model: str, settings: Settings, *, network: bool) -> str | None:
    """For an id without ``vendor/``: a sentence saying so, with a did-you-mean when one is known."""
    if "/" in model:
        return None
    found = suggestions(model, _known_ids(settings, network))
    said = f"model ids name their vendor ('vendor/model'), and {model!r} does not"
    if found:
        return f"{said}; did you mean {' or '.join(repr(f) for f in found)}?"
    return f"{said}; `openrouter-registry models {model}` lists the ids that contain it"


def check_model_flag(model: str | None, flag: str, settings: Settings) -> None:
    """Refuse a ``flag`` value that is not a model id, or that lacks its vendor (with a did-you-mean):
    `ConfigurationError` naming the flag. None (the flag not given) passes."""
    if model is None:
        return
    if not is_model_id(model):
        raise ConfigurationError(
            f"{flag} must be a model id such as 'openai/gpt-4o' (no spaces or control characters), got {model!r}"
        )
    hint = vendor_hint(model, settings, network=True)
    if hint is not None:
        raise ConfigurationError(f"{flag}: {hint}")
