"""`GET /v1/lifecycle`, `/v1/stickiness`, `/v1/events` (SPEC §5).

`/v1/lifecycle` and `/v1/stickiness` with `breakdown=<key>` (a key the project tracks: GET
/v1/breakdowns) add the counts or histograms per value of that key (queries/lifecycle.py,
queries/stickiness.py), the null group last as in /v1/activity, and `breakdown_backfill` as
/v1/activity has it; CSV then has one line per value and period.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range, tracked_breakdown
from services.gateway.queries.breakdown import Backfill
from services.gateway.queries.events import EventCount, read_events
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.lifecycle import (
    LifecyclePeriod,
    LifecycleSeries,
    LifecycleValueRow,
    read_lifecycle,
    read_lifecycle_breakdown,
)
from services.gateway.queries.periods import Period
from services.gateway.queries.stickiness import (
    StickinessPeriod,
    StickinessRow,
    StickinessSeries,
    StickinessValueRow,
    read_stickiness,
    read_stickiness_breakdown,
)
from services.gateway.render import respond, respond_split
from services.gateway.routes.breakdowns import SPLIT_FIELDS, read_split
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])


class LifecycleOut(BaseModel):
    periods: list[LifecyclePeriod]
    breakdown: list[LifecycleSeries] | None = Field(
        default=None, description="present only with `?breakdown=`"
    )
    breakdown_backfill: Backfill | None = Field(
        default=None, description="present only with `?breakdown=`, as in /v1/activity"
    )
    freshness: Freshness


class StickinessOut(BaseModel):
    periods: list[StickinessRow]
    breakdown: list[StickinessSeries] | None = Field(
        default=None, description="present only with `?breakdown=`"
    )
    breakdown_backfill: Backfill | None = Field(
        default=None, description="present only with `?breakdown=`, as in /v1/activity"
    )
    freshness: Freshness


class EventsOut(BaseModel):
    events: list[EventCount]
    freshness: Freshness


@router.get("/v1/lifecycle", response_model=LifecycleOut)
async def lifecycle(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    period: Annotated[Period, Query(description="day, week (ISO, Monday first) or month")] = "day",
    breakdown: Annotated[str | None, Depends(tracked_breakdown)] = None,
) -> Response:
    """New, returning, resurrecting and dormant (negative) persons per whole calendar period;
    with `breakdown`, also per value of the key: each person under the values they carried in
    the period (dormant ones: in the period before), with their own status."""
    rows, series, backfill, freshness = await read_split(
        request.app.state.pulse,
        project.id,
        breakdown,
        lambda conn: read_lifecycle(conn, project.id, span.start, span.stop, period),
        lambda conn, key: read_lifecycle_breakdown(
            conn, project.id, key, span.start, span.stop, period
        ),
    )
    body = LifecycleOut(
        periods=rows, breakdown=series, breakdown_backfill=backfill, freshness=freshness
    )
    if series is None:  # the answer as it is without a breakdown
        return respond(span.format, body, rows, "lifecycle", exclude=SPLIT_FIELDS)
    lines = [LifecycleValueRow(value=s.value, **p.model_dump()) for s in series for p in s.periods]
    return respond_split(span.format, body, lines, LifecycleValueRow, "lifecycle")


@router.get("/v1/stickiness", response_model=StickinessOut)
async def stickiness(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    period: Annotated[StickinessPeriod, Query(description="week or month")] = "week",
    breakdown: Annotated[str | None, Depends(tracked_breakdown)] = None,
) -> Response:
    """Per period, how many persons were active on exactly 1..7 (week) or 1..31 (month) days."""
    rows, series, backfill, freshness = await read_split(
        request.app.state.pulse,
        project.id,
        breakdown,
        lambda conn: read_stickiness(conn, project.id, span.start, span.stop, period),
        lambda conn, key: read_stickiness_breakdown(
            conn, project.id, key, span.start, span.stop, period
        ),
    )
    body = StickinessOut(
        periods=rows, breakdown=series, breakdown_backfill=backfill, freshness=freshness
    )
    if series is None:  # the answer as it is without a breakdown
        return respond(span.format, body, rows, "stickiness", exclude=SPLIT_FIELDS)
    lines = [StickinessValueRow(value=s.value, **p.model_dump()) for s in series for p in s.periods]
    return respond_split(span.format, body, lines, StickinessValueRow, "stickiness")


@router.get("/v1/events", response_model=EventsOut)
async def events(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    limit: Annotated[int, Query(ge=1, le=1000, description="how many event names")] = 100,
) -> Response:
    """Active events by name over the range: total count and distinct persons."""
    state: GatewayState = request.app.state.pulse
    rows, freshness = await state.read_fresh(
        project.id, lambda conn: read_events(conn, project.id, span.start, span.stop, limit)
    )
    return respond(span.format, EventsOut(events=rows, freshness=freshness), rows, "events")
