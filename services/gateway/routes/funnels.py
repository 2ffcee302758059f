"""`/v1/funnels` (SPEC §5, docs/funnels.md): define, list, read and delete a project's funnels.

Every operation takes the project's **read key**, the writes (POST, DELETE) included: funnels are
defined through the gateway by the people using the dashboard, and they hold the read key. The
write key is public (it ships inside apps) and the admin token manages projects, so neither fits.
A funnel belongs to the key's project; another project's funnel is answered 404 like an unknown
id, never with its data.

A new funnel is stored with `backfill: "running"`; the metrics service evaluates it over the
project's whole history and flips it to `"complete"`. Its figures can be read meanwhile.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from services.common.funnels import FunnelDefinition
from services.common.http import ApiError, JsonResponse
from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.freshness import Freshness, read_freshness
from services.gateway.queries.funnel_defs import (
    MAX_FUNNELS_PER_PROJECT,
    Backfill,
    FunnelOut,
    create_funnel,
    delete_funnel,
    get_funnel,
    list_funnels,
)
from services.gateway.queries.funnels import (
    BreakdownGroup,
    EntryDay,
    FunnelStep,
    read_entry_days,
    read_funnel_breakdown,
    read_funnel_steps,
)
from services.gateway.render import Format, columns, csv_response, respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["funnels"])

FunnelId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the funnel's id")]


class FunnelList(BaseModel):
    funnels: list[FunnelOut]


class FunnelReport(BaseModel):
    id: int
    name: str
    steps: list[FunnelStep]
    backfill: Backfill
    entry_days: list[EntryDay]
    breakdown: list[BreakdownGroup] | SkipJsonSchema[None] = Field(
        default=None, description="present only with `?breakdown=`"
    )
    freshness: Freshness


class StepRow(BaseModel):
    """One CSV line: a step of the funnel."""

    step: int
    event: str
    users: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_seconds_to_convert: float | None


class BreakdownStepRow(BaseModel):
    """One CSV line with `?breakdown=`: a step of the funnel for one value."""

    value: str | None
    step: int
    event: str
    users: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_seconds_to_convert: float | None


def _rows(steps: list[FunnelStep]) -> list[StepRow]:
    return [StepRow(step=i, **s.model_dump()) for i, s in enumerate(steps, start=1)]


def _not_found(funnel_id: int) -> ApiError:
    return ApiError(404, "not_found", f"no funnel {funnel_id} in this project")


@router.post("/v1/funnels", status_code=201, response_model=FunnelOut)
async def create(
    body: FunnelDefinition,
    request: Request,
    project: Annotated[Project, Depends(read_project)],
) -> FunnelOut:
    """Define a funnel (read key). It is evaluated over all history (`backfill` is `running`
    until that is done) and kept current from now on. At most 100 funnels per project."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.begin() as conn:
        created = await create_funnel(conn, project.id, body)
    if created is None:
        raise ApiError(
            422,
            "too_many_funnels",
            f"the project already has {MAX_FUNNELS_PER_PROJECT} funnels, the most it may "
            "have (each is evaluated on every event and over all history); delete one first",
        )
    return created


@router.get("/v1/funnels", response_model=FunnelList)
async def list_all(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    format: Annotated[
        Format, Query(description="json (default) or csv (a funnel a line)")
    ] = "json",
) -> Response:
    """The project's funnels, oldest first, with their backfill state."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        found = await list_funnels(conn, project.id)
    return respond(format, FunnelList(funnels=found), found, "funnels")


@router.get("/v1/funnels/{funnel_id}", response_model=FunnelReport)
async def read(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    funnel_id: FunnelId,
    span: Annotated[DateRange, Depends(date_range)],
    breakdown: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="split by this property (over SDK traits) of each person's step-1 "
            "event, else their identify trait as of it (any key)",
        ),
    ] = None,
) -> Response:
    """Persons whose best attempt entered the funnel in [from, to], per step; `entry_days` per
    day of entry. CSV: one line per step, or per value and step with `breakdown`."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        # One snapshot: the totals, the days and the breakdown count the same attempts.
        await conn.execution_options(isolation_level="REPEATABLE READ")
        funnel = await get_funnel(conn, project.id, funnel_id)
        if funnel is None:
            raise _not_found(funnel_id)
        events = [s.event for s in funnel.steps]
        steps = await read_funnel_steps(conn, funnel_id, events, span.start, span.stop)
        days = await read_entry_days(conn, funnel_id, len(events), span.start, span.stop)
        groups = (
            await read_funnel_breakdown(
                conn, project.id, funnel_id, events, span.start, span.stop, breakdown
            )
            if breakdown is not None
            else None
        )
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    if span.format == "csv":
        if groups is None:
            return csv_response(_rows(steps), columns(StepRow), f"funnel-{funnel_id}")
        rows = [
            BreakdownStepRow(value=g.value, **r.model_dump())
            for g in groups
            for r in _rows(g.steps)
        ]
        return csv_response(rows, columns(BreakdownStepRow), f"funnel-{funnel_id}")
    body = FunnelReport(
        id=funnel.id,
        name=funnel.name,
        steps=steps,
        backfill=funnel.backfill,
        entry_days=days,
        breakdown=groups,
        freshness=freshness,
    )
    return JsonResponse(
        body.model_dump(mode="json", exclude={"breakdown"} if groups is None else None)
    )


@router.delete("/v1/funnels/{funnel_id}", status_code=204, response_class=Response)
async def remove(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    funnel_id: FunnelId,
) -> Response:
    """Delete the funnel and its figures (read key)."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.begin() as conn:
        deleted = await delete_funnel(conn, project.id, funnel_id)
    if not deleted:
        raise _not_found(funnel_id)
    return Response(status_code=204)
