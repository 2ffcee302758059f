"""Request bodies: read with a byte cap while streaming, gunzip with the *decompressed* size capped.

A 1 MB gzip that would expand to 1 GB is refused after `limit` bytes of output, in bounded memory.
Strings holding NUL (`\\u0000`) get U+FFFD instead, as PostHog does: PostgreSQL text and jsonb
cannot store NUL, and one such event must not wedge the consumer downstream.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from services.common.http import ApiError

ACCEPTED_TYPES = ("application/json", "text/plain", "")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes")


@dataclass(frozen=True)
class Body:
    data: Any
    size: int  # bytes of JSON after decompression


async def read_json_body(request: Request, limit: int) -> Any:
    return (await read_body(request, limit)).data


async def read_body(request: Request, limit: int, gzip: bool = False) -> Body:
    """Parse the JSON body; `gzip=True` when the route knows it is compressed without a header."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise ApiError(415, "unsupported_media_type", "send application/json (or text/plain JSON)")
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or absent")
    if gzip:
        encoding = "gzip"

    inflater = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if inflater is not None:
                # max_length bounds each step's output; the rest stays in unconsumed_tail.
                data = inflater.decompress(chunk, limit + 1 - size)
                while True:
                    chunks.append(data)
                    size += len(data)
                    if size > limit:
                        raise _too_large(limit)
                    if not inflater.unconsumed_tail:
                        break
                    data = inflater.decompress(inflater.unconsumed_tail, limit + 1 - size)
            else:
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
        if inflater is not None and not inflater.eof:
            raise ApiError(400, "invalid_gzip", "gzip body is truncated")
    except zlib.error as exc:
        raise ApiError(400, "invalid_gzip", "Content-Encoding is gzip but the body is not") from exc

    raw = b"".join(chunks)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
    # JSON can only carry NUL escaped, so a body without the escape needs no walk.
    if b"\\u0000" in raw:
        try:
            data = _without_nul(data)
        except RecursionError as exc:
            raise ApiError(400, "invalid_json", "body is nested too deeply") from exc
    return Body(data, size)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
