"""The web playground: one static page served by the API (no front-end build step).

`/playground` is a plain HTML page with its script and stylesheet beside it in
`api/static/playground/`; it calls the public API from the browser like any client
(`/v1/ask/stream`, `/v1/documents`, `/v1/jobs/{id}`), with the API key typed into it when
auth is on. Its Content-Security-Policy allows this origin's files only: no inline script,
no CDN, nothing a document's text could smuggle in (the script inserts text, never HTML).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from core.errors import NotFoundError

router = APIRouter(include_in_schema=False)

_FOLDER = Path(__file__).parent / "static" / "playground"
_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/playground", status_code=307)


@router.get("/playground")
async def page() -> FileResponse:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/playground/{name}")
async def asset(name: str) -> FileResponse:
    if name not in _FILES:  # a fixed list: no path is ever built from the request
        raise NotFoundError(f"no playground file {name[:64]!r}")
    return _file(name, _FILES[name])


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(
        _FOLDER / name, media_type=media_type, headers={"content-security-policy": _CSP}
    )
