"""`GET /v1/retention` (SPEC §5): cohorts by first activity (or start_event) and their returns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.freshness import Freshness, read_freshness
from services.gateway.queries.retention import (
    Cohort,
    RetentionMode,
    RetentionPeriod,
    read_retention,
)
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["retention"])


class RetentionOut(BaseModel):
    cohorts: list[Cohort]
    freshness: Freshness


@router.get("/v1/retention", response_model=RetentionOut)
async def retention(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    length: Annotated[int, Query(ge=0, le=90, description="periods after the cohort's")] = 14,
    period: Annotated[RetentionPeriod, Query(description="day or week (ISO)")] = "day",
    mode: Annotated[
        RetentionMode, Query(description="on: in period c+k; on_or_after: in c+k or later")
    ] = "on",
    start_event: Annotated[
        str | None, Query(description="cohort by first time doing this event (default: any)")
    ] = None,
    return_event: Annotated[
        str | None, Query(description="count a return only for this event (default: any)")
    ] = None,
) -> Response:
    """Cohorts whose first active day (or first `start_event`) is in [from, to]."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        cohorts = await read_retention(
            conn,
            project.id,
            span.start,
            span.stop,
            length,
            period,
            mode,
            start_event,
            return_event,
        )
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    body = RetentionOut(cohorts=cohorts, freshness=freshness)
    return respond(span.format, body, cohorts, "retention")
