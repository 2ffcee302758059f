"""`GET /v1/sessions` (SPEC §5): sessions, dwell time, events per session, bounce rate per day."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.sessions import SessionsDay, read_sessions
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["engagement"])


class SessionsOut(BaseModel):
    days: list[SessionsDay]
    freshness: Freshness


@router.get("/v1/sessions", response_model=SessionsOut)
async def sessions(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
) -> Response:
    """Per day (sessions count on the day they start): a session ends after 30 minutes without an
    active event and lasts at most 24 h; durations in seconds from first to last event."""
    state: GatewayState = request.app.state.pulse
    days, freshness = await state.read_fresh(
        project.id, lambda conn: read_sessions(conn, project.id, span.start, span.stop)
    )
    return respond(span.format, SessionsOut(days=days, freshness=freshness), days, "sessions")
