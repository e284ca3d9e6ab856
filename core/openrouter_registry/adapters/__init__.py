"""Adapters: the library inside a host. ``parlant``: a Parlant ``NLPService`` backed by the engine
(``p.Server(nlp_service=NLPServices.openrouter(...))``); it imports Parlant, so it loads only when
Parlant asks for it.

May import: the engine and every stage below it. An adapter calls the engine and never re-implements
a step of a generation. Every module here is internal: use `NLPServices` from ``openrouter_registry``.
"""
