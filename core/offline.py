"""Offline-first process defaults: no telemetry, no hub downloads unless asked for.

Called by every entry point (CLI, API factory, tests) before heavy libraries import.
`setdefault` keeps any value the user exported, so turning a download back on is one
env var (e.g. `HF_HUB_OFFLINE=0` with `RAG_EMBEDDING__ALLOW_DOWNLOAD=true`).
"""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}


def apply_offline_defaults() -> None:
    """Set telemetry-off and offline env vars unless the user already set them."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
