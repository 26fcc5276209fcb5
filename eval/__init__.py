"""Evaluation: IR metrics, answer metrics, benchmarks and regression gates.

ranx and ragas come from the `eval` extra: in `make setup`'s environment, not in the
image (requirements-runtime.lock), where `rag eval` says so instead of a traceback.
"""

from __future__ import annotations

from core.errors import ConfigError


def eval_extra_missing(exc: ImportError) -> ConfigError:
    """The error to raise when an eval library fails to import."""
    return ConfigError(
        f"{exc.name or 'an evaluation library'} is not installed: the eval extra is not in "
        "this environment (the image installs requirements-runtime.lock only); run the "
        "evals from `make setup`'s .venv, or `pip install 'rag-reference[eval]'`"
    )
