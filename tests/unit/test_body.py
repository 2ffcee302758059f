"""Request bodies: JSON, text/plain JSON, gzip with the decompressed size capped."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import Request

from services.common.http import ApiError
from services.ingest.body import read_json_body


def _request(body: bytes, headers: dict[str, str], chunk: int = 65536) -> Request:
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


async def test_plain_and_text_plain_json() -> None:
    assert await read_json_body(
        _request(b'{"a":1}', {"content-type": "application/json"}), 100
    ) == {"a": 1}
    assert await read_json_body(
        _request(b"[1]", {"content-type": "text/plain;charset=UTF-8"}), 100
    ) == [1]


async def test_gzip_is_inflated() -> None:
    body = gzip.compress(b'{"batch": []}')
    got = await read_json_body(
        _request(body, {"content-type": "application/json", "content-encoding": "gzip"}), 100
    )
    assert got == {"batch": []}


async def test_gzip_bomb_is_refused_after_the_limit() -> None:
    # 64 MB of zeros compress to ~64 KB; refused once 1 MB has been inflated.
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024))
    assert len(bomb) < 100 * 1024
    with pytest.raises(ApiError) as caught:
        await read_json_body(
            _request(bomb, {"content-type": "application/json", "content-encoding": "gzip"}),
            1024 * 1024,
        )
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"x" * 2000, {"content-type": "application/json"}, 413, "payload_too_large"),
        (b"{nope", {"content-type": "application/json"}, 400, "invalid_json"),
        (b"{}", {"content-type": "application/xml"}, 415, "unsupported_media_type"),
        (
            b"{}",
            {"content-type": "application/json", "content-encoding": "gzip"},
            400,
            "invalid_gzip",
        ),
        (
            b"{}",
            {"content-type": "application/json", "content-encoding": "br"},
            415,
            "unsupported_encoding",
        ),
        (gzip.compress(b"{}")[:-6], {"content-encoding": "gzip"}, 400, "invalid_gzip"),
    ],
)
async def test_bad_bodies_get_a_clear_error(
    body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await read_json_body(_request(body, headers), 1000)
    assert (caught.value.status, caught.value.code) == (status, code)
