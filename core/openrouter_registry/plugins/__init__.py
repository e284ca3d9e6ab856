"""Stage 1 of a generation: which generator serves a model. The hookspecs, the registry that loads
plugins through entry points and resolves a model to the best matching generator, model matching,
the family helper (`family_hooks`), the core's own plugin (the generic fallback), the plugin
switches (``OPENROUTER_PLUGINS`` / ``OPENROUTER_DISABLE_PLUGINS``) and the load-time plugin checks.

    hookspecs  the four hooks: who calls each, when, and what a result means
    registry   Registry, Resolution, PluginInfo, get_registry: loading, isolation, resolution
    matching   ModelTable, Match, Candidate: exact, alias, variant and family matches
    family     family_hooks: a family plugin as a table plus a parser
    builtin    the core plugin: OpenRouterGeneric for any model
    switches   which plugins the environment enables or disables
    checks     hookimpl signatures, results and names, checked when a plugin loads

May import: models, http, replies, schemas and the shared base (result, settings, errors).
Every module here is internal: apps import from ``openrouter_registry``, plugin authors from
``openrouter_registry.plugin``.
"""
