"""`GET /v1/status` and `GET /v1/rejected`: is my data arriving, and what was refused (SPEC §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.queries.freshness import Freshness, read_freshness
from services.gateway.queries.status import Rejected, Status, read_counters, read_rejected
from services.gateway.render import Format, respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["pipeline"])


class RejectedOut(BaseModel):
    rejected: list[Rejected]
    # Rejections reach this list through the consumer too: whether it is complete so far.
    freshness: Freshness


@router.get("/v1/status", response_model=Status)
async def status(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    format: Annotated[Format, Query(description="json (default) or csv (one row)")] = "json",
) -> Response:
    """Is my data arriving: events applied, duplicates dropped, rejected, lag and freshness."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        processed, duplicates, rejected = await read_counters(conn, project.id)
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    body = Status(
        events_processed=processed,
        duplicates_dropped=duplicates,
        rejected=rejected,
        lag=freshness.lag,
        processed_through=freshness.processed_through,
    )
    return respond(format, body, [body], "status")


@router.get("/v1/rejected", response_model=RejectedOut)
async def rejected(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    limit: Annotated[int, Query(ge=1, le=1000, description="newest first, at most this")] = 100,
    format: Annotated[Format, Query(description="json (default) or csv")] = "json",
) -> Response:
    """The most recently rejected events of the project, with the reason each was refused."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        rows = await read_rejected(conn, project.id, limit)
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    return respond(format, RejectedOut(rejected=rows, freshness=freshness), rows, "rejected")
