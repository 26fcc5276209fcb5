"""`.env.example` must list every knob of `Settings`, and only real ones."""

from __future__ import annotations

import re

from pydantic import BaseModel

from core.settings import Settings
from tests.conftest import PROJECT_ROOT


def _knobs() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"RAG_{name}__{sub}".upper() for sub in annotation.model_fields}
        else:
            names.add(f"RAG_{name}".upper())
    return names


def test_env_example_lists_every_setting() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*(RAG_[A-Z0-9_]+)=", text, flags=re.M))
    assert listed == _knobs()
