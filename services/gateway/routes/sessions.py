"""`GET /v1/sessions` (SPEC §5): sessions, dwell time, events per session, bounce rate per day.

With `breakdown=<key>` (a key the project tracks: GET /v1/breakdowns) the response adds the same
figures per value of that key: a session counts under each value its person carried on its day
(queries/sessions.py), the null group last as in /v1/activity, and `breakdown_backfill` as
/v1/activity has it; CSV then has one line per value and day.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range, tracked_breakdown
from services.gateway.queries.breakdown import Backfill
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.sessions import (
    Rebuild,
    SessionsDay,
    SessionsRow,
    SessionsSeries,
    read_rebuild,
    read_sessions,
    read_sessions_breakdown,
)
from services.gateway.render import respond, respond_split
from services.gateway.routes.breakdowns import SPLIT_FIELDS, read_split

router = APIRouter(tags=["engagement"])


class SessionsOut(BaseModel):
    days: list[SessionsDay]
    breakdown: list[SessionsSeries] | None = Field(
        default=None, description="present only with `?breakdown=`"
    )
    breakdown_backfill: Backfill | None = Field(
        default=None, description="present only with `?breakdown=`, as in /v1/activity"
    )
    # "running" while the sessions are rebuilt after the project's session settings changed
    rebuild: Rebuild
    freshness: Freshness


@router.get("/v1/sessions", response_model=SessionsOut)
async def sessions(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    breakdown: Annotated[str | None, Depends(tracked_breakdown)],
) -> Response:
    """Per day (sessions count on the day they start): a session ends after the project's
    session timeout (default 30 minutes) without an active event and lasts at most its cap
    (default 24 h); durations in seconds from first to last event. `rebuild` is "running" while
    the sessions are recomputed after those settings changed."""

    async def unsplit(conn: AsyncConnection) -> tuple[Rebuild, list[SessionsDay]]:
        # The state first: "complete" then promises the days read after it.
        rebuild = await read_rebuild(conn, project.id)
        return rebuild, await read_sessions(conn, project.id, span.start, span.stop)

    (rebuild, days), series, backfill, freshness = await read_split(
        request.app.state.pulse,
        project.id,
        breakdown,
        unsplit,
        lambda conn, key: read_sessions_breakdown(conn, project.id, key, span.start, span.stop),
    )
    body = SessionsOut(
        days=days,
        breakdown=series,
        breakdown_backfill=backfill,
        rebuild=rebuild,
        freshness=freshness,
    )
    if series is None:  # the answer as it is without a breakdown
        return respond(span.format, body, days, "sessions", exclude=SPLIT_FIELDS)
    rows = [SessionsRow(value=s.value, **d.model_dump()) for s in series for d in s.days]
    return respond_split(span.format, body, rows, SessionsRow, "sessions")
