"""`GET /v1/activity`: daily DAU/WAU/MAU, new users, events, stickiness (SPEC §5).

With `breakdown=<key>` (one of PULSE_BREAKDOWN_KEYS) the response adds the same series per value
of that key; CSV then has one line per value and day.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.http import ApiError
from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.activity import ActivityDay, read_activity
from services.gateway.queries.breakdown import BreakdownRow, BreakdownSeries, read_breakdown
from services.gateway.queries.freshness import Freshness, read_freshness
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])


class ActivityOut(BaseModel):
    days: list[ActivityDay]
    breakdown: list[BreakdownSeries] | None = None
    freshness: Freshness


@router.get("/v1/activity", response_model=ActivityOut)
async def activity(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    breakdown: Annotated[
        str | None,
        Query(description="split by this event property / trait (one of PULSE_BREAKDOWN_KEYS)"),
    ] = None,
) -> Response:
    state: GatewayState = request.app.state.pulse
    if breakdown is not None and breakdown not in state.settings.breakdown_key_list:
        tracked = ", ".join(state.settings.breakdown_key_list) or "none"
        raise ApiError(
            422,
            "invalid_parameter",
            f"breakdown: {breakdown!r} is not tracked (tracked: {tracked}; "
            "set PULSE_BREAKDOWN_KEYS on the metrics service and the gateway)",
        )
    async with state.engine.connect() as conn:
        days = await read_activity(conn, project.id, span.start, span.stop)
        series = (
            await read_breakdown(conn, project.id, breakdown, span.start, span.stop)
            if breakdown
            else None
        )
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    body = ActivityOut(days=days, breakdown=series, freshness=freshness)
    if series is None:
        return respond(span.format, body, days, "activity")
    rows = [BreakdownRow(value=s.value, **d.model_dump()) for s in series for d in s.days]
    return respond(span.format, body, rows, "activity")
