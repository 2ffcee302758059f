"""The events an SDK's request body carried, decoded as the ingest decodes it (gzip known by its
first bytes, a PostHog form's `data` in base64, a batch, an array or one event): for tests that
watch what clients send."""

from __future__ import annotations

import base64
import gzip
from typing import Any
from urllib.parse import parse_qs

import orjson


def events_of(body: bytes) -> list[dict[str, Any]]:
    if body.startswith(b"\x1f\x8b"):
        body = gzip.decompress(body)
    elif body.startswith(b"data="):
        body = base64.b64decode(parse_qs(body.decode())["data"][0])
    data = orjson.loads(body)
    if isinstance(data, dict):
        data = data.get("batch", [data])
    return list(data)


def message_ids(body: bytes) -> list[str]:
    """Each event's messageId (Segment) or uuid (PostHog)."""
    return [str(e.get("messageId") or e.get("uuid")) for e in events_of(body)]
