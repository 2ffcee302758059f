"""`GET /v1/sessions` (SPEC §5): sessions, dwell time, events per session, bounce rate per day."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.sessions import Rebuild, SessionsDay, read_rebuild, read_sessions
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["engagement"])


class SessionsOut(BaseModel):
    days: list[SessionsDay]
    # "running" while the sessions are rebuilt after the project's session settings changed
    rebuild: Rebuild
    freshness: Freshness


@router.get("/v1/sessions", response_model=SessionsOut)
async def sessions(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
) -> Response:
    """Per day (sessions count on the day they start): a session ends after the project's
    session timeout (default 30 minutes) without an active event and lasts at most its cap
    (default 24 h); durations in seconds from first to last event. `rebuild` is "running" while
    the sessions are recomputed after those settings changed."""
    state: GatewayState = request.app.state.pulse

    async def read(conn: AsyncConnection) -> tuple[list[SessionsDay], Rebuild]:
        # The state first: "complete" then promises the days read after it.
        rebuild = await read_rebuild(conn, project.id)
        return await read_sessions(conn, project.id, span.start, span.stop), rebuild

    (days, rebuild), freshness = await state.read_fresh(project.id, read)
    body = SessionsOut(days=days, rebuild=rebuild, freshness=freshness)
    return respond(span.format, body, days, "sessions")
