"""The gateway's OpenAPI document (`/openapi.json`, shown at `/docs`), complete and accurate.

FastAPI derives operations and models from the routes; this adds what it cannot see: the two
bearer credentials, errors as `{"code", "message"}` (not FastAPI's `{"detail"}`), CSV bodies for
`?format=csv`, and the caching headers and `304` of the read endpoints (caching.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.gateway.caching import ADMIN_PREFIX, READ_PREFIX

DESCRIPTION = """\
Pulse's read API: product analytics for one project per read key, pipeline status, and project
administration with the admin token.

* **Reads** take `Authorization: Bearer <read key>`; the key decides the project. Dates are
  `YYYY-MM-DD` in the project's timezone, `from` and `to` inclusive. Every read carries
  `freshness`: the `receivedAt` of the newest applied event and the events not yet applied.
* **CSV**: reads that return rows accept `format=csv`.
* **Caching**: reads answer with `ETag` and `Cache-Control: private, max-age=…`; send the tag
  back in `If-None-Match` to get `304 Not Modified` while nothing changed.
* **Errors** are `{"code", "message"}`: `401` unknown key, `404` not found, `422` a bad parameter
  (the message names it).
* The dashboard is at `/`; Prometheus metrics, product KPIs included, at `/metrics`.
"""

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "a short machine-readable code"},
        "message": {"type": "string", "description": "what was wrong and what to do"},
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
CACHE_HEADERS = {
    "ETag": {"description": "digest of the body", "schema": {"type": "string"}},
    "Cache-Control": {"description": "`private, max-age=N`", "schema": {"type": "string"}},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _document(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    admin = path.startswith(ADMIN_PREFIX)
    operation["security"] = [{"adminToken": []}] if admin else [{"readKey": []}]
    responses["401"] = _error("unknown or missing " + ("admin token" if admin else "read key"))
    if "422" in responses or operation.get("parameters") or operation.get("requestBody"):
        responses["422"] = _error("a parameter is invalid; the message names it")
    if "{" in path:
        responses.setdefault("404", _error("no such resource"))
    if admin or method != "get":
        return  # only reads are cached (caching.py): writes answer no-store, never 304
    params = operation.get("parameters", [])
    ok = responses.get("200", {})
    ok["headers"] = {**ok.get("headers", {}), **CACHE_HEADERS}
    if any(p.get("name") == "format" for p in params):
        ok.setdefault("content", {})["text/csv"] = {
            "schema": {"type": "string"},
            "example": "date,dau,wau,mau,new_users,events,stickiness\n",
        }
    params.append(
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "an ETag from an earlier response: 304 when it is still current",
            "schema": {"type": "string"},
        }
    )
    operation["parameters"] = params
    responses["304"] = {"description": "not modified since the ETag sent in `If-None-Match`"}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=DESCRIPTION,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        "readKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "a project's read key (`pr_…`): reads that project's numbers",
        },
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "PULSE_ADMIN_TOKEN: manages projects",
        },
    }
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(READ_PREFIX):
            continue
        for method, operation in operations.items():
            _document(path, method, operation)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
