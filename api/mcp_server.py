"""The MCP server: `search` and `ask` as tools, over stdio (`rag mcp`) and streamable
HTTP (mounted at `/mcp`), scoped by the caller's credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Mount the streamable HTTP transport on the app."""


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Run what the mounted transport needs (its session manager) during the lifespan."""
    yield
