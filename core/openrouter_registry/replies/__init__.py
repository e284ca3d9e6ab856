"""Stage 4: what came back. Decoding answers (bodies, errors sent with HTTP 200, chat replies, SSE
chunks, embeddings), the structured-reply parsers and the candidate search behind them, the
repairs for models' known habits, and the worker that parses long replies off the event loop.

    decode      Reply, typed errors from error bodies, usage and cost
    structured  the parse_structured chain and the strict parsers plugins reuse
    candidates  JSON candidates in free text, in bounded, linear time
    habits      repairs for habits seen in real replies (curly quotes, raw newlines, ...)
    offload     long replies parsed in a worker thread

May import: schemas and the shared base (result, settings, errors). Every module here is internal:
plugin authors get the strict parsers from ``openrouter_registry.plugin``.
"""
