"""HTTP pieces every service shares: `{"code","message"}` errors, health routes, request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.db import database_unavailable
from services.common.logging import get_logger

log = get_logger(__name__)

REQUESTS = Counter(
    "pulse_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "pulse_http_request_duration_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class JsonResponse(Response):
    """JSON rendered by orjson (fast, and datetimes as ISO-8601)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error a client sees as `{"code", "message"}` with an HTTP status (and headers)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Never FastAPI's `{"detail"}`: SDKs read `code`/`message` and retry what they cannot parse."""

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # pydantic prefixes a validator's own message with "Value error, ": not for a caller
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        return error_response(422, "invalid_parameter", problems)

    async def on_timeout(_: Request, exc: Exception) -> Response:
        # A database statement over its command timeout (services/common/db.py): the service is
        # fine, this one answer is too costly right now. A client may retry or ask for less.
        return error_response(
            503,
            "timeout",
            "the answer took too long to compute; retry, or ask for a shorter range",
            {"Retry-After": "5"},
        )

    async def on_database_error(request: Request, exc: Exception) -> Response:
        if database_unavailable(exc):
            log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
            return error_response(
                503,
                "database_unavailable",
                "the database cannot be reached right now; retry shortly",
                {"Retry-After": "5"},
            )
        # Handled here, not by on_unexpected, so it is logged here.
        log.error("unexpected_error", path=request.url.path, exc_info=exc)
        return await on_unexpected(request, exc)

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        return error_response(500, "internal_error", "unexpected error; it has been logged")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(TimeoutError, on_timeout)
    for error in (OSError, asyncpg.PostgresError, DBAPIError):
        app.add_exception_handler(error, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (set by the router), so labels stay bounded."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class RequestMetrics:
    """Request count and latency per route template, method and status.

    A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware
    runs each request in a task group and pipes the body through a stream, a cost every cheap
    answer (a 304, a reused response) would pay again.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers: an exception becomes a 500 outside this layer

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route, method = _route_template(scope), scope["method"]
            REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)
            REQUESTS.labels(route, method, str(status)).inc()


def install_request_metrics(app: FastAPI) -> None:
    app.add_middleware(RequestMetrics)


def install_health_routes(app: FastAPI, ready: Callable[[], Awaitable[tuple[bool, Any]]]) -> None:
    """`/livez` process up; `/readyz` dependencies reachable (503 while draining); `/metrics`."""

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        ok, detail = await ready()
        return JsonResponse(
            {"status": "ok" if ok else "unavailable", "checks": detail},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
