"""A `/docs` page (Swagger UI) that works without the internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a self-hosted machine without
outbound access (or behind a strict proxy) `/docs` is blank. This page takes Swagger UI 5 (which
renders OpenAPI 3.1) from the `fastapi-offline` package, served from `/docs/assets`. There is no
`/redoc`: ReDoc's bundle still fetches its logo from a CDN.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"


def install_docs_pages(app: FastAPI) -> None:
    """Serve /docs; the app must be created with `docs_url=None, redoc_url=None`."""
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
            # Swagger UI would send the document to validator.swagger.io from a public host.
            swagger_ui_parameters={"validatorUrl": None},
        )
