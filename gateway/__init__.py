"""The LLM gateway: a `Generator` that routes, falls back, degrades, meters and checks.

Read `gateway.py` first: it walks the ladder and calls the others.

- `gateway.gateway`: `LlmGateway`, the `Generator` (and streaming generator) the service
  calls: route, fit the prompt, breaker and retries, grounding check, ledger row; the
  extractive generator as the last rung.
- `gateway.catalog`: the model catalog (`catalog.toml`): models with prices, context
  windows and tags, routing policy, per-tenant budgets; validated whole at start.
- `gateway.routing`: which models may answer a request, in which order, and why
  (sensitivity, budget state, rules/cost/latency strategy).
- `gateway.resilience`: retries of transient errors with full-jitter backoff (tenacity),
  and the per-model circuit breaker.
- `gateway.prompting`: versioned prompt templates (`prompts/*.vN.toml`), passages fenced
  as data, fitting the prompt to a model's context window, the citation check.
- `gateway.providers`: `build_chat_model`, which picks the adapter for a catalog entry.
- `gateway.openai_chat`, `gateway.anthropic_chat`: the `ChatModel` adapters on the
  providers' SDKs (OpenAI and every OpenAI-compatible server; Anthropic).
- `gateway.wire`: what the adapters share: SDK errors as `ProviderError`s (transient or
  not), defensive reading of replies, the token estimate.
- `gateway.cache`: the semantic answer cache (`AnswerCache`): `CachedAnswer` entries in a
  vector-store collection, scoped by tenant and groups, TTL, invalidation by cited document.
- `gateway.ledger`: the cost ledger (`Ledger`) on SQLAlchemy: one row per answer, budgets
  and cost reports.
- `gateway.local_model`: the offline model (SmolLM2 on llama-cpp-python's server).

Decisions: docs/adr/0011 (the SDKs, our own breaker), 0012 (routing and degradation),
0013 (the cache threshold).
"""
