"""Which project a request writes to: the write key from Basic auth, Bearer, or the body.

Every place a key can be sent must agree; an unknown key or a disagreement is a 401 and nothing
is written. Keys are never logged.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from fastapi import Request

from services.common.http import ApiError
from services.common.projects import Project, ProjectDirectory

BODY_KEY_FIELDS = ("writeKey", "api_key")


def _header_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        # binascii.Error, UnicodeDecodeError, and a non-ASCII value ("Basic \x80"): all ValueError
        except ValueError as exc:
            raise ApiError(401, "unauthorized", "malformed Basic authorization header") from exc
        return decoded.partition(":")[0] or None
    if scheme == "bearer":
        return value.strip() or None
    return None


async def resolve_project(
    request: Request,
    body: Any,
    directory: ProjectDirectory,
    body_fields: Iterable[str] = BODY_KEY_FIELDS,
    fallback: Iterable[Any] = (),
) -> Project:
    """The project whose write key the request carries; `fallback` keys (PostHog's per-event
    tokens) count only when the request itself names no key."""
    keys = {k for k in [_header_key(request)] if k}
    if isinstance(body, dict):
        keys |= {v for f in body_fields if isinstance(v := body.get(f), str) and v}
    if not keys:
        keys = {k for k in fallback if isinstance(k, str) and k}
    if not keys:
        raise ApiError(
            401,
            "unauthorized",
            "no write key: send it as the Basic auth username, `writeKey` or `api_key`",
        )
    if len(keys) > 1:
        raise ApiError(401, "unauthorized", "the write keys in this request disagree")
    project = await directory.by_write_key(keys.pop())
    if project is None:
        raise ApiError(401, "unauthorized", "unknown write key")
    return project
