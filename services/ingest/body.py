"""Request bodies: read with a byte cap while streaming, gunzip with the *decompressed* size capped.

A 1 MB gzip that would expand to 1 GB is refused after `limit` bytes of output, in bounded memory.
A body that starts with gzip's magic bytes is inflated, whatever its headers say: posthog-js
sends its gzip bodies as `text/plain` with neither a Content-Encoding header nor, since its
requests dropped it, a `compression` parameter, and PostHog's capture looks at the bytes too.
No JSON text starts with them. Strings holding NUL (`\\u0000`) get U+FFFD instead, as PostHog
does: PostgreSQL text and jsonb cannot store NUL, and one such event must not wedge the consumer
downstream.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request

from services.common.http import ApiError
from services.ingest.body_budget import BodyBudget

ACCEPTED_TYPES = ("application/json", "text/plain", "")
FORM_TYPE = "application/x-www-form-urlencoded"
GZIP_MAGIC = b"\x1f\x8b"


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than {limit} bytes")


@dataclass(frozen=True)
class Body:
    data: Any
    size: int  # bytes of JSON after decompression


async def read_json_body(request: Request, limit: int) -> Any:
    return (await read_body(request, limit)).data


async def read_body(
    request: Request,
    limit: int,
    gzip: bool = False,
    form: bool = False,
    budget: BodyBudget | None = None,
) -> Body:
    """Parse the JSON body; `gzip=True` when the route knows it is compressed without a header.
    The bytes read (inflated) are charged to `budget` as they come, for the request's scope.

    A body typed as a form that holds JSON is JSON: RudderStack's Node SDK sends its gzipped
    JSON as `application/x-www-form-urlencoded` (axios's default type for a buffer), and
    RudderStack's server takes it. A real form is refused, except where `form=True` (PostHog's
    routes): there its `data` field holds the JSON, as is or in base64, which is what posthog-js
    sends with `compression=base64`, when its host offers no gzip or its gzip fails."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    typed_form = content_type == FORM_TYPE
    if content_type not in ACCEPTED_TYPES and not typed_form:
        raise ApiError(415, "unsupported_media_type", "send application/json (or text/plain JSON)")
    encoding = request.headers.get("content-encoding", "identity").strip().lower() or "identity"
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or absent")
    charge = (lambda size: budget.take(request.scope, size)) if budget else _free
    raw = await _read(request.stream(), limit, gzip or encoding == "gzip", charge)
    if typed_form and raw.lstrip()[:1] not in (b"{", b"["):
        if not form:
            raise ApiError(415, "unsupported_media_type", "a form body; send JSON as the body")
        raw = _form_data(raw)
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
    return Body(data, len(raw))


def _free(size: int) -> None:
    return None


async def _read(
    stream: AsyncIterator[bytes], limit: int, gzip: bool, charge: Callable[[int], None]
) -> bytes:
    """The body's bytes, inflated when `gzip` or when they start with gzip's magic bytes, each
    chunk charged before it is kept."""
    head = b""
    async for chunk in stream:  # enough of the body to see whether it starts as gzip does
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    inflater = zlib.decompressobj(wbits=31) if gzip or head.startswith(GZIP_MAGIC) else None
    chunks: list[bytes] = []
    size = 0

    def take(chunk: bytes) -> None:
        nonlocal size
        if inflater is None:
            charge(len(chunk))
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            return
        # max_length bounds each step's output; the rest stays in unconsumed_tail.
        data = inflater.decompress(chunk, limit + 1 - size)
        while True:
            charge(len(data))
            chunks.append(data)
            size += len(data)
            if size > limit:
                raise _too_large(limit)
            if not inflater.unconsumed_tail:
                break
            data = inflater.decompress(inflater.unconsumed_tail, limit + 1 - size)

    try:
        take(head)
        async for chunk in stream:
            take(chunk)
        if inflater is not None and not inflater.eof:
            raise ApiError(400, "invalid_gzip", "gzip body is truncated")
    except zlib.error as exc:
        raise ApiError(400, "invalid_gzip", "the body is not valid gzip") from exc
    return b"".join(chunks)


def _form_data(raw: bytes) -> bytes:
    """The JSON in a form body's `data` field: as is, or in base64 (standard or URL-safe)."""
    try:
        fields = parse_qs(raw.decode(), strict_parsing=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_form", "the body is not a valid form") from exc
    compression = fields.get("compression", [""])[0].lower()
    if compression not in ("", "base64"):
        raise ApiError(
            415, "unsupported_encoding", f"form field compression={compression} is not supported"
        )
    if len(fields.get("data", [])) != 1:
        raise ApiError(400, "invalid_form", "a form body needs one `data` field")
    data = fields["data"][0].strip()
    if data[:1] in ("{", "["):
        return data.encode()
    # A `+` sent unescaped arrives as a space; padding may be missing.
    text = data.replace(" ", "+").replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            400, "invalid_form", "the form's `data` is neither JSON nor base64 JSON"
        ) from exc


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
