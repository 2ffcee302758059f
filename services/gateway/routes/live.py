"""`GET /v1/live`: persons active in the last 5 and 30 minutes, events per minute for the hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.live import Live, LiveMinute, read_live
from services.gateway.render import Format, respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["engagement"])


class LiveOut(Live):
    freshness: Freshness


@router.get("/v1/live", response_model=LiveOut)
async def live(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    format: Annotated[Format, Query(description="json (default) or csv (the minutes)")] = "json",
) -> Response:
    """By event time, as of now (an answer is reused for at most a second)."""
    state: GatewayState = request.app.state.pulse
    view, freshness = await state.read_fresh(
        project.id, lambda conn: read_live(conn, project.id, datetime.now(UTC))
    )
    body = LiveOut(**view.model_dump(), freshness=freshness)
    rows: list[LiveMinute] = view.minutes
    return respond(format, body, rows, "live")
