"""Request bodies: read with a byte cap while streaming, gunzip with the *decompressed* size capped.

A 1 MB gzip that would expand to 1 GB is refused after `limit` bytes of output, in bounded memory.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import Request

from services.common.http import ApiError

ACCEPTED_TYPES = ("application/json", "text/plain", "")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes")


async def read_json_body(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise ApiError(415, "unsupported_media_type", "send application/json (or text/plain JSON)")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or absent")

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
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
