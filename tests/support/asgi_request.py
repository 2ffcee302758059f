"""A Starlette request over a body in memory, sent in chunks as a client would: for unit tests
of body reading, with no server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request


def asgi_request(body: bytes, headers: dict[str, str], chunk: int = 65536) -> Request:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    receiver: Callable[[], Awaitable[dict[str, Any]]] = receive
    return Request(scope, receiver)
