"""OpenAI-compatible surface: `POST /v1/chat/completions` and `GET /v1/models`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["openai"])
