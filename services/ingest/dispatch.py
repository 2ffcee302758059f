"""The ingest's POST routes, dispatched by exact path ahead of FastAPI.

Every SDK request is a POST to one of a fixed set of paths, so a dict lookup finds its handler.
Going through FastAPI's middleware stack, router, dependency solving and exception middleware
instead cost more CPU than the ingest work itself (see bench/ingest.py). FastAPI still serves
everything else: `/livez`, `/readyz`, `/metrics`, CORS preflights, and the `{"code","message"}`
404/405.

A handler takes the Starlette request and returns None for the one success answer, exactly
`200 {"success": true}` (sent from prebuilt bytes), or raises `ApiError`; this layer renders
errors (through the handler's route family, e.g. PostHog adds `detail`), answers an unexpected
exception with a 500 and logs it, and adds the CORS header browser SDKs need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.http import ApiError, error_response
from services.common.logging import get_logger
from services.ingest.body_budget import BodyBudget

log = get_logger(__name__)

Handler = Callable[[Request], Awaitable[None]]
ErrorRenderer = Callable[[ApiError], Response]

# The route label metrics use for a request this layer handled.
ROUTE_KEY = "pulse.route"

SUCCESS_BODY = b'{"success":true}'
_SUCCESS_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(SUCCESS_BODY)).encode()),
]
_CORS_HEADER = (b"access-control-allow-origin", b"*")


def render_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


@dataclass(frozen=True)
class Route:
    handler: Handler
    render_error: ErrorRenderer = render_error


class IngestRoutes:
    """ASGI middleware: POSTs to a known path go to their handler, the rest to `app`."""

    def __init__(self, app: ASGIApp, routes: dict[str, Route], body_budget: BodyBudget) -> None:
        self.app = app
        self.routes = routes
        self.body_budget = body_budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope[ROUTE_KEY] = scope["path"]
        request = Request(scope, receive)
        response: Response | None = None
        try:
            await route.handler(request)
        except ApiError as exc:
            response = route.render_error(exc)
        except Exception:
            log.exception("ingest_request_failed", route=scope["path"])
            response = route.render_error(
                ApiError(500, "internal_error", "unexpected error; it has been logged")
            )
        finally:
            # The body and what was parsed from it are no longer needed (body_budget.py).
            self.body_budget.release(scope)
        # Browser SDKs post from any origin, without credentials (SPEC §3).
        cors = "origin" in request.headers
        if response is not None:
            if cors:
                response.headers["access-control-allow-origin"] = "*"
            await response(scope, receive, send)
            return
        headers = [*_SUCCESS_HEADERS, _CORS_HEADER] if cors else _SUCCESS_HEADERS
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": SUCCESS_BODY})
