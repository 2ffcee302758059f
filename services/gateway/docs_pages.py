"""`/docs` (Swagger UI) and `/redoc` pages that work without the internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a self-hosted machine without
outbound access (or behind a strict proxy) `/docs` is blank. These pages take the same assets
from the `fastapi-offline` package (Swagger UI 5, which renders OpenAPI 3.1; ReDoc), served
from `/docs/assets`.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"


def install_docs_pages(app: FastAPI) -> None:
    """Serve /docs and /redoc; the app must be created with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url="/dashboard/favicon.svg",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url="/dashboard/favicon.svg",
            with_google_fonts=False,
        )
