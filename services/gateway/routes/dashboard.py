"""`GET /`: the dashboard page, served from the package's own files (no CDN, works offline).

The page reads the API with a read key the person types in; the key stays in the browser's
session storage. A strict Content-Security-Policy allows only this origin's scripts and styles,
so injected markup cannot run code that would read the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.common.http import ApiError

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _load_assets() -> dict[str, Asset]:
    folder = resources.files("services.gateway") / "dashboard"
    assets = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in MEDIA_TYPES:
            body = item.read_bytes()
            etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
            assets[item.name] = Asset(body, MEDIA_TYPES[suffix], etag)
    return assets


ASSETS = _load_assets()


def _serve(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise ApiError(404, "not_found", f"no dashboard file {name!r}")
    # no-cache: the browser revalidates each load, so an upgraded gateway is picked up at once.
    headers = {"etag": asset.etag, "cache-control": "no-cache", **SECURITY_HEADERS}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def dashboard(request: Request) -> Response:
    return _serve(request, "index.html")


@router.get("/dashboard/{name}")
async def dashboard_file(request: Request, name: str) -> Response:
    return _serve(request, name)
