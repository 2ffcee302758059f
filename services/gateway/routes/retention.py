"""`GET /v1/retention` (SPEC §5): cohorts by first activity (or start_event) and their returns.

With `breakdown=<key>` (one of PULSE_BREAKDOWN_KEYS) the response adds the same cohorts per value
the members carried on their cohort-defining day; CSV then has one line per value and cohort.
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
from services.gateway.queries.freshness import Freshness, read_freshness
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
from services.gateway.state import GatewayState

router = APIRouter(tags=["retention"])


class RetentionOut(BaseModel):
    cohorts: list[Cohort]
    breakdown: list[RetentionSplit] | None = None
    freshness: Freshness


class RetentionSplitRows(BaseModel):
    """The CSV of a breakdown: its rows (and their header when there are none)."""

    rows: list[RetentionSplitRow]


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
    breakdown: Annotated[
        str | None,
        Query(
            description="split the cohorts by the value of this event property / trait on each "
            "member's cohort-defining day (one of PULSE_BREAKDOWN_KEYS)"
        ),
    ] = None,
) -> Response:
    """Cohorts whose first active day (or first `start_event`) is in [from, to]."""
    state: GatewayState = request.app.state.pulse
    if breakdown is not None and breakdown not in state.settings.breakdown_key_list:
        tracked = ", ".join(state.settings.breakdown_key_list) or "none"
        raise ApiError(
            422,
            "invalid_parameter",
            f"breakdown: {breakdown!r} is not tracked (tracked: {tracked}; "
            "set PULSE_BREAKDOWN_KEYS on the metrics service and the gateway)",
        )
    query = (span.start, span.stop, length, period, mode, start_event, return_event)
    splits: list[RetentionSplit] | None = None
    async with state.engine.connect() as conn:
        if breakdown is None:
            cohorts = await read_retention(conn, project.id, *query)
        else:
            cohorts, splits = await read_retention_breakdown(conn, project.id, breakdown, *query)
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    body = RetentionOut(cohorts=cohorts, breakdown=splits, freshness=freshness)
    if splits is None:
        return respond(span.format, body, cohorts, "retention")
    rows = [RetentionSplitRow(value=s.value, **c.model_dump()) for s in splits for c in s.cohorts]
    if span.format == "csv":
        return respond("csv", RetentionSplitRows(rows=rows), rows, "retention")
    return respond("json", body, rows, "retention")
