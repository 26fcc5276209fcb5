"""Identity and limits for the HTTP API: who is asking, and how much they may ask.

This package owns the credentials and the per-principal limits; `api/security.py` only
wires them into a FastAPI dependency, and nothing here imports FastAPI.

- `auth.keys`: API keys (`rag_<id>_<secret>`) in the metadata database; only a hash of
  the secret is stored, and every rejection looks the same to the caller.
- `auth.oidc`: bearer JWTs from an identity provider, verified against its JWKS (a file
  or a URL); tenant, role and groups come from configurable claims.
- `auth.authenticator`: picks one of the above by `RAG_AUTH__MODE` and returns the
  `Principal` every scope derives from.
- `auth.limits`: requests per minute and LLM tokens per day per principal (the `limits`
  library, in memory or on Redis), and a bound on generations in flight in this process.
"""
