"""`GET /v1/activity`: daily DAU/WAU/MAU, new users, events, stickiness (SPEC §5).

With `breakdown=<key>` (a key the project tracks: GET /v1/breakdowns) the response adds the same
series per value of that key, then the null group (`"value": null`: the events that carried no
value), and `breakdown_backfill`: "running" while the values of the history from before the key
was tracked are still being filled in, then "complete"; CSV has one line per value and day (an
empty value for the null group)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range, tracked_breakdown
from services.gateway.queries.activity import ActivityDay, read_activity
from services.gateway.queries.breakdown import (
    Backfill,
    BreakdownRow,
    BreakdownSeries,
    read_breakdown,
)
from services.gateway.queries.freshness import Freshness
from services.gateway.render import respond, respond_split
from services.gateway.routes.breakdowns import require_tracked
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])


class ActivityOut(BaseModel):
    days: list[ActivityDay]
    breakdown: list[BreakdownSeries] | None = None
    breakdown_backfill: Backfill | None = None
    freshness: Freshness


@router.get("/v1/activity", response_model=ActivityOut)
async def activity(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    breakdown: Annotated[str | None, Depends(tracked_breakdown)],
) -> Response:
    state: GatewayState = request.app.state.pulse

    async def read(
        conn: AsyncConnection,
    ) -> tuple[list[ActivityDay], list[BreakdownSeries] | None, Backfill | None]:
        days = await read_activity(conn, project.id, span.start, span.stop)
        if breakdown is None:
            return days, None, None
        backfill = await require_tracked(conn, state, project.id, breakdown)
        series = await read_breakdown(conn, project.id, breakdown, span.start, span.stop)
        return days, series, backfill

    (days, series, backfill), freshness = await state.read_fresh(project.id, read)
    body = ActivityOut(
        days=days, breakdown=series, breakdown_backfill=backfill, freshness=freshness
    )
    if series is None:
        return respond(span.format, body, days, "activity")
    rows = [BreakdownRow(value=s.value, **d.model_dump()) for s in series for d in s.days]
    return respond_split(span.format, body, rows, BreakdownRow, "activity")
