"""Stage 3: the request on the wire. The pooled transport with its deadlines, retries and typed
errors, the two HTTP stacks under it, SSE line splitting, the request headers, and retry events.

    transport  Transport: post_json and streams, retries (backoff), every failure typed
    backends   the aiohttp pool under httpx's API, the httpx client, one CA context per process
    sselines   SSE lines split at CR, LF and CRLF only, size-capped
    headers    the core's headers, plugin headers merged and checked, Authorization last
    events     CallEvent (what on_event observers get), RetryEvent and observe_retries: one event per retry

May import: replies (a reply body is decoded as it arrives), schemas and the shared base
(result, settings, errors). Every module here is internal; apps import from ``openrouter_registry``.
"""
