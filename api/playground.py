"""The web playground: one static page served by the API (no front-end build step)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
