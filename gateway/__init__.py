"""The LLM gateway: prompting and grounding today; providers, routing, fallback, semantic
cache and cost accounting plug in behind the `Generator` port as the gateway grows.

- `gateway.prompting`: versioned prompt templates (`prompts/*.vN.toml`), passages fenced
  as data, and a citation check for model answers.
"""
