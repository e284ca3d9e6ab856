"""Stage 2: what is known about a model and how its request is built. The `Generator` base class
(facts, structured modes, the request body for each mode), the model catalog from ``/models``,
the structured modes learned per model, the pre-flight context-window check and pricing.

    generator  Generator, Facts, Mode: the request a family sends, mode by mode
    catalog    Catalog, ModelInfo, Pricing: the /models catalog, cached on disk
    modes      the structured mode each model and route was seen to accept, remembered
    preflight  offline token estimates; ContextLengthError before a paid request
    pricing    CostEstimate, and the cost of a reply from its usage and the catalog's prices
    safefiles  files written without following planted links, cache files read only when trustworthy

May import: http, replies, schemas and the shared base (result, settings, errors).
Every module here is internal: apps import from ``openrouter_registry``, plugin authors from
``openrouter_registry.plugin``.
"""
