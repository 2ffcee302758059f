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
from services.gateway.routes.breakdowns import read_split

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
    days, series, backfill, freshness = await read_split(
        request.app.state.pulse,
        project.id,
        breakdown,
        lambda conn: read_activity(conn, project.id, span.start, span.stop),
        lambda conn, key: read_breakdown(conn, project.id, key, span.start, span.stop),
    )
    body = ActivityOut(
        days=days, breakdown=series, breakdown_backfill=backfill, freshness=freshness
    )
    if series is None:
        return respond(span.format, body, days, "activity")
    rows = [BreakdownRow(value=s.value, **d.model_dump()) for s in series for d in s.days]
    return respond_split(span.format, body, rows, BreakdownRow, "activity")
