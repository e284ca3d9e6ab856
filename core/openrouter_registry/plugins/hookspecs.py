"""The hooks a plugin may implement (pluggy project name ``openrouter_registry``).

A plugin is any module or object with functions marked ``@hookimpl`` whose names are the hooks below.
Install it as a distribution with an entry point in the group ``openrouter_registry`` (the entry
point's name is the plugin's name), or register it at run time with ``registry.register(obj)``.
A hookimpl may accept any subset of a hook's arguments, by name; an unknown hook or argument name
makes the plugin invalid (reported with "did you mean ...").

The isolation rule. The registry calls each plugin's hookimpl separately, inside a guard:

- A call that raises, or returns what the hook's contract forbids (e.g. ``resolve_generator``
  returning a string), is skipped for that call only: the other plugins and the core go on (for
  ``parse_structured``: the next parser, at last the core's). It is logged at ERROR once per plugin,
  hook and exception type, on one line naming the plugin, its distribution and version, the hook,
  the model and the exception; every failure is logged with its full traceback at DEBUG. The plugin
  shows ``degraded`` in ``openrouter-registry plugins`` (with its failure count and last error)
  until that hook succeeds again.
- A plugin is disabled (``failed``, unregistered for the life of the registry) only when it is
  clearly broken: it fails to import or validate, or one of its hooks failed ``DISABLE_AFTER`` (5)
  calls in a row with no success in between *and then* fails a probe call with harmless input (the
  plugin's first claimed model id, else ``openrouter-registry/probe``; text ``"{}"``; schema None).
  A hook that fails only on some data (a ``RecursionError`` on a hostile reply, a ``KeyError`` for
  an unknown model) works on the probe, so it is never disabled.
- A method of a plugin's `Generator` that raises (anything but an `OpenRouterError`) is contained the
  same way, named ``Class.method`` in the ERROR line: before the request (``facts``, ``build_body``
  and what it calls) the next candidate serves the call; after the billed request a ``finish_text``
  that raises lets the raw text go on to the parsers. Generator class attributes
  (``structured_modes``, ``context_window``, ``max_output_tokens``) are checked when the plugin loads:
  a bad value fails the plugin.
- A header that cannot be sent (CR/LF, non-ASCII, ``Authorization`` or another reserved name) is
  dropped with an error line; the plugin's other headers are sent and the plugin is not disabled.
  ``build_headers`` is called at load (for ``openrouter-registry/probe``, ``openai/gpt-4o`` and up to
  five claimed ids) so that such a header is reported before the first request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ..http.events import CallEvent
    from .matching import Candidate, Resolution
    from ..settings import Settings

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
    name (ascending: ``"alpha"`` beats ``"zeta"``), and never by registration order. ``priority``
    belongs to the candidate (or to the ``ModelTable`` that builds it), not to the plugin. The core
    always adds a ``fallback`` candidate, so a plugin should not claim models it knows nothing about.

    Raising skips this plugin for this model (see the isolation rule); so does a generator class
    whose constructor raises: the next candidate wins.
    """


@hookspec
def claimed_models() -> Sequence[str] | None:
    """List the model ids this plugin claims exactly (its ``Match.EXACT`` ids).

    Called by ``Registry.plugins()`` (and so by ``openrouter-registry plugins``) for display only;
    it never influences resolution. Return a sequence of model ids, or None.
    """


@hookspec
def build_headers(model: str, settings: Settings, resolution: Resolution) -> Mapping[str, str] | None:
    """Add HTTP headers to every request for ``model``.

    Called by the generation path each time it builds a request (chat, stream or embeddings).
    The core's own headers (``HTTP-Referer`` from ``OPENROUTER_HTTP_REFERER``, ``X-Title`` from
    ``OPENROUTER_SITE_NAME``, ``Content-Type``) come first; the mappings returned by plugins are merged
    on top in plugin-name order; ``Authorization`` is set by the core last and cannot be read or
    replaced by a plugin: a plugin's ``Authorization`` is dropped with an error line, never sent.
    Also called once when the plugin loads (see the module docstring), so keep it cheap and pure.

    :param model: the model id being requested.
    :param settings: the effective `Settings` (the key inside is masked).
    :param resolution: the `Resolution` serving the call: ``resolution.plugin`` is the name of the
        plugin whose generator won the model (``resolution.generator`` the generator itself). A plugin
        that adds headers only to the calls its own generators serve checks
        ``resolution.plugin == "<its entry-point name>"``; accept the argument only if you need it.

    Return a mapping of header names to values, or None. A header whose name or value contains CR,
    LF or any non-ASCII character is dropped, with a `HeaderError` line naming the plugin.
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
    nothing for text you cannot parse: return None (a parser that raises is skipped for that reply
    and logged as a plugin failure).

    A family plugin usually gets this hook from `openrouter_registry.plugins.family.family_hooks(TABLE,
    parser, prefix=...)`, which calls ``parser(text, schema)`` for ids with that prefix and passes
    the rest; the parser must never raise: reuse the strict ones in `openrouter_registry.replies.structured`
    (``parse_clean_json``, ``parse_embedded_json``, ``parse_python_literal``) or check your own against
    `openrouter_registry.testing.hostile_replies`.
    """


@hookspec
def on_event(event: CallEvent) -> None:
    """Observe one step of a call: cost to a database, an exporter of your own, a progress display.

    Called by the generation path (``generate``, ``stream``, ``embed``, through ``Registry.notify``)
    for every `CallEvent` of every call, in order: ``request``, then any ``retry``, ``fallback`` and
    ``reask`` (each followed by its own ``request`` except ``retry``), then one ``response`` or one
    ``error``. ``event.call_id`` ties the events of one call together. The service's own
    ``on_event=`` callable sees the same events, after the plugins.

    :param event: a frozen `CallEvent`; the API key is never in it.

    The return value is ignored. It runs on the event loop, inside the call: keep it quick and hand
    slow work (a database write) to a queue. A hookimpl that raises is isolated like every other
    hook (see the isolation rule): logged, skipped, and never changes the call's outcome. No plugin
    implementing it costs nothing: the events are not even built.
    """
