"""Governance controls: prompt-injection detection, the tamper-evident audit trail,
erasure and retention. Each control is usable on its own; `docs/governance.md` maps them
to the NIST AI RMF and the OWASP Top 10 for LLM applications, with the tests that prove
them."""
