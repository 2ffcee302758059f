"""`GET /v1/lifecycle`, `/v1/stickiness`, `/v1/events` (SPEC §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.events import EventCount, read_events
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.lifecycle import LifecyclePeriod, read_lifecycle
from services.gateway.queries.periods import Period
from services.gateway.queries.stickiness import StickinessPeriod, StickinessRow, read_stickiness
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])


class LifecycleOut(BaseModel):
    periods: list[LifecyclePeriod]
    freshness: Freshness


class StickinessOut(BaseModel):
    periods: list[StickinessRow]
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
) -> Response:
    """New, returning, resurrecting and dormant (negative) persons per whole calendar period."""
    state: GatewayState = request.app.state.pulse
    rows, freshness = await state.read_fresh(
        project.id, lambda conn: read_lifecycle(conn, project.id, span.start, span.stop, period)
    )
    return respond(span.format, LifecycleOut(periods=rows, freshness=freshness), rows, "lifecycle")


@router.get("/v1/stickiness", response_model=StickinessOut)
async def stickiness(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    period: Annotated[StickinessPeriod, Query(description="week or month")] = "week",
) -> Response:
    """Per period, how many persons were active on exactly 1..7 (week) or 1..31 (month) days."""
    state: GatewayState = request.app.state.pulse
    rows, freshness = await state.read_fresh(
        project.id, lambda conn: read_stickiness(conn, project.id, span.start, span.stop, period)
    )
    body = StickinessOut(periods=rows, freshness=freshness)
    return respond(span.format, body, rows, "stickiness")


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
