"""The test kit shipped with openrouter-registry: a local OpenRouter-compatible HTTP server.

Plugin authors get its names from ``openrouter_registry.plugin``; this package is where they live.

    from openrouter_registry.testing import FakeOpenRouter, Scripted, RecordedRequest

    with FakeOpenRouter() as server:
        server.base_url        # "http://127.0.0.1:<port>/api/v1"
        server.api_key         # the one key it accepts ("sk-or-v1-local-test-key" by default)
        server.enqueue(Scripted(status=429, json={"error": {"message": "slow down", "code": 429}},
                                headers={"Retry-After": "1"}))
        server.set_reply("weather", {"city": "Paris"})
        server.refuse_modes["acme/model"] = {"json_schema", "json_object"}
        ...
        server.enqueue(Scripted.chat(content='Sure: {"city": "Paris"}', model="acme/writer-1"))
        server.enqueue(Scripted.stream("Bonjour !", model="acme/writer-1"))   # for service.stream(...)
        server.requests        # every request but GET /models (chat, embeddings...), in arrival order
        server.catalog_requests  # the GET /models requests (the model catalog's fetches)
        server.all_requests    # both, in arrival order

From a shell (a server for another process, e.g. an app under development):

    python -m openrouter_registry.testing [--host 127.0.0.1] [--port 8080] [--api-key KEY]

prints ``OPENROUTER_BASE_URL=...`` and ``OPENROUTER_API_KEY=...`` lines and serves until Ctrl-C or
SIGTERM (see ``__main__``).

Used by the test suite, by ``openrouter-registry demo`` when no API key is set, and by plugin
authors' tests. It sits above the service (``soak`` drives one): it may import the facade and
every stage; only the command line imports it. The names below are its interface; its modules
(``server``, ``loadserver``, ``faultserver``, ...) are internal. Importing it costs only the standard library and attrs; the JSON-Schema instance
generator (`instance_for`) imports jsonschema on first use.
"""

from __future__ import annotations

from .instances import UnsatisfiableSchemaError, instance_for
from .server import DEFAULT_API_KEY, MODELS, PRICES, FakeOpenRouter, RecordedRequest, Scripted, price_of

__all__ = [
    "FakeOpenRouter",
    "Scripted",
    "RecordedRequest",
    "instance_for",
    "UnsatisfiableSchemaError",
    "DEFAULT_API_KEY",
    "MODELS",
    "PRICES",
    "price_of",
]
