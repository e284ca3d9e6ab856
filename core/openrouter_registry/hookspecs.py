"""The hooks a plugin may implement (pluggy project name ``openrouter_registry``).

A plugin is any module or object with functions marked ``@hookimpl`` whose names are the hooks below.
Install it as a distribution with an entry point in the group ``openrouter_registry`` (the entry
point's name is the plugin's name), or register it at run time with ``registry.register(obj)``.
A hookimpl may accept any subset of a hook's arguments, by name.

The registry calls each plugin's hookimpl separately, inside a guard: a plugin whose hook raises is
logged, marked ``failed`` and unregistered, and the call goes on with the other plugins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .matching import Candidate
    from .settings import Settings

PROJECT_NAME = "openrouter_registry"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def resolve_generator(model: str, settings: Settings) -> Candidate | None:
    """Offer a generator for ``model``.

    Called by ``Registry.resolve`` the first time a model id (with the current settings) is resolved;
    the answer is cached until a plugin is registered or unregistered.

    :param model: the model id exactly as the user gave it, variant suffix included
        (``"openai/gpt-4o:nitro"``).
    :param settings: the effective `Settings`.

    Return a `Candidate` (``Candidate(generator=MyGenerator, match=Match.EXACT)``), or None when this
    plugin has nothing for the model. ``ModelTable.match`` builds one from a table of exact ids,
    aliases and family patterns. Every plugin is asked; the registry ranks all candidates by
    ``match`` (exact > alias > family > fallback), then by ``priority`` (higher wins), then by plugin
    name, and never by registration order. The core always adds a ``fallback`` candidate, so a
    plugin should not claim models it knows nothing about.
    """


@hookspec
def claimed_models() -> Sequence[str] | None:
    """List the model ids this plugin claims exactly (its ``Match.EXACT`` ids).

    Called by ``Registry.plugins()`` (and so by ``openrouter-registry plugins``) for display only;
    it never influences resolution. Return a sequence of model ids, or None.
    """


@hookspec
def build_headers(model: str, settings: Settings) -> Mapping[str, str] | None:
    """Add HTTP headers to every request for ``model``.

    Called by the generation path each time it builds a request (chat, stream or embeddings).
    The core's own headers (``HTTP-Referer`` from ``OPENROUTER_HTTP_REFERER``, ``X-Title`` from
    ``OPENROUTER_SITE_NAME``, ``Content-Type``) come first; the mappings returned by plugins are merged
    on top in plugin-name order; ``Authorization`` is set by the core last and cannot be read or
    replaced by a plugin (a plugin that returns it is rejected).

    :param model: the model id being requested.
    :param settings: the effective `Settings` (the key inside is masked).

    Return a mapping of header names to values, or None. A name or value containing CR, LF or any
    non-ASCII character is rejected with `HeaderError` naming the plugin.
    """


@hookspec(firstresult=True)
def parse_structured(model: str, text: str, schema: Mapping[str, Any] | None) -> Any | None:
    """Turn a model's raw reply into JSON data.

    Called by the generation path after every reply when structured output was requested, before
    schema validation. Implementations are tried one after another (``tryfirst`` ones first); the
    first one that returns something other than None wins. The core's generic parser is registered
    ``trylast``: it recovers fences, prose around JSON, trailing commas, Python literals and the like.
    A family plugin should handle only its family's habits (check the ``model`` prefix) and return
    None to pass everything else on.

    :param model: the model id that was requested.
    :param text: the raw reply text (after the generator's ``finish_text``, e.g. a prefill re-added).
    :param schema: the JSON Schema the result will be validated against, or None. Use it to pick
        among several candidate JSON blocks in one reply.

    Return the parsed value (dict, list, str, number, bool; not None), or None to pass. Raise
    nothing for text you cannot parse: return None.
    """
