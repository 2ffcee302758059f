"""Request metrics for the ingest as plain ASGI middleware.

The same series as every service (`pulse_http_requests_total`, `pulse_http_request_duration_seconds`
by route template) plus in-flight requests, without Starlette's BaseHTTPMiddleware: that one runs
each request through an extra task group and body stream, which cost the ingest half its
single-event throughput.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.http import REQUEST_SECONDS, REQUESTS
from services.ingest import metric_defs as m
from services.ingest.dispatch import ROUTE_KEY


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Label lookups lock and hash on every call; the label sets are few, so keep the children.
        self._latency: dict[tuple[str, str], Any] = {}
        self._count: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def observe_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, observe_send)
        finally:
            m.IN_FLIGHT.dec()
            # Either layer that routed the request left its template in the scope.
            route: Any = scope.get("route")
            path = scope.get(ROUTE_KEY) or str(getattr(route, "path", "unmatched"))
            key = (path, scope["method"])
            latency = self._latency.get(key)
            if latency is None:
                latency = self._latency[key] = REQUEST_SECONDS.labels(*key)
            latency.observe(time.perf_counter() - started)
            count_key = (*key, str(status))
            count = self._count.get(count_key)
            if count is None:
                count = self._count[count_key] = REQUESTS.labels(*count_key)
            count.inc()
