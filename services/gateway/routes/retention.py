"""`GET /v1/retention` (SPEC §5): cohorts by first activity (or start_event) and their returns.

With `breakdown=<key>` (a key the project tracks: GET /v1/breakdowns) the response adds the same
cohorts per value the members carried on their cohort-defining day, and `breakdown_backfill` as
/v1/activity has it; CSV then has one line per value and cohort."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range, tracked_breakdown
from services.gateway.queries.breakdown import Backfill
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.retention import (
    Cohort,
    RetentionMode,
    RetentionPeriod,
    RetentionSplit,
    RetentionSplitRow,
    read_retention,
    read_retention_breakdown,
)
from services.gateway.render import respond
from services.gateway.routes.breakdowns import require_tracked
from services.gateway.state import GatewayState

router = APIRouter(tags=["retention"])


class RetentionOut(BaseModel):
    cohorts: list[Cohort]
    breakdown: list[RetentionSplit] | None = None
    breakdown_backfill: Backfill | None = None  # as in /v1/activity
    freshness: Freshness


class RetentionSplitRows(BaseModel):
    """The CSV of a breakdown: its rows (and their header when there are none)."""

    rows: list[RetentionSplitRow]


@router.get("/v1/retention", response_model=RetentionOut)
async def retention(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    breakdown: Annotated[str | None, Depends(tracked_breakdown)],
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
    query = (span.start, span.stop, length, period, mode, start_event, return_event)

    async def read(
        conn: AsyncConnection,
    ) -> tuple[list[Cohort], list[RetentionSplit] | None, Backfill | None]:
        if breakdown is None:
            return await read_retention(conn, project.id, *query), None, None
        backfill = await require_tracked(conn, state, project.id, breakdown)
        cohorts, splits = await read_retention_breakdown(conn, project.id, breakdown, *query)
        return cohorts, splits, backfill

    (cohorts, splits, backfill), freshness = await state.read_fresh(project.id, read)
    body = RetentionOut(
        cohorts=cohorts, breakdown=splits, breakdown_backfill=backfill, freshness=freshness
    )
    if splits is None:
        return respond(span.format, body, cohorts, "retention")
    rows = [RetentionSplitRow(value=s.value, **c.model_dump()) for s in splits for c in s.cohorts]
    if span.format == "csv":
        return respond("csv", RetentionSplitRows(rows=rows), rows, "retention")
    return respond("json", body, rows, "retention")
