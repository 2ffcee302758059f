"""Gateway credentials: the read key decides the project; the admin token manages projects."""

from __future__ import annotations

import hmac

from fastapi import Request

from services.common.http import ApiError
from services.common.projects import Project
from services.gateway.state import GatewayState


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>`")
    return value.strip()


async def read_project(request: Request) -> Project:
    """FastAPI dependency: the project whose read key was presented."""
    state: GatewayState = request.app.state.pulse
    project = await state.projects.by_read_key(_bearer(request))
    if project is None:
        raise ApiError(401, "unauthorized", "unknown read key")
    return project


async def require_admin(request: Request) -> None:
    """FastAPI dependency: the caller holds PULSE_ADMIN_TOKEN."""
    state: GatewayState = request.app.state.pulse
    token = _bearer(request)
    if not hmac.compare_digest(token.encode(), state.settings.admin_token.encode()):
        raise ApiError(401, "unauthorized", "unknown admin token")
