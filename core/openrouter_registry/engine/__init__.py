"""Stage: the engine. One call from start to end: `Engine.generate` (resolve, prepare, send, check,
re-ask or fall back, result), `Engine.stream` (`TextStream`) and `Engine.embed`; `observe` turns a
call's steps into `CallEvent`s and (`otel`, loaded only when the app set a provider) OpenTelemetry
spans and metrics.

May import: plugins, models, http, replies, schemas and the shared base (result, settings, errors).
Imported by: the adapters (batch, Parlant) and the facade (`openrouter_registry.service`).

Every module here is internal: import `OpenRouterService` from `openrouter_registry`.
"""
