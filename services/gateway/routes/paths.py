"""`GET /v1/paths` (SPEC §5): where persons go after a start event, or came from before a target."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.http import ApiError
from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.freshness import Freshness
from services.gateway.queries.paths import Direction, PathEdge, read_paths
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["engagement"])


class PathsOut(BaseModel):
    edges: list[PathEdge]
    freshness: Freshness


@router.get("/v1/paths", response_model=PathsOut)
async def paths(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
    start_event: Annotated[
        str | None, Query(description="follow persons from their first such event (or page name)")
    ] = None,
    end_event: Annotated[
        str | None, Query(description="or: the events leading to their first such event")
    ] = None,
    depth: Annotated[int, Query(ge=1, le=6, description="steps from the anchor event")] = 3,
    limit: Annotated[int, Query(ge=1, le=100, description="edges kept per step")] = 20,
) -> Response:
    """Edges {from, to, step, persons}: per step from the anchor, how many persons went from one
    event to the next (consecutive repeats of an event are one step). Read from edge counts the
    metrics service keeps, not from the range's events."""
    if (start_event is None) == (end_event is None):
        raise ApiError(
            422, "invalid_parameter", "start_event: give exactly one of start_event and end_event"
        )
    direction: Direction = "after" if start_event is not None else "before"
    anchor = start_event or end_event or ""
    state: GatewayState = request.app.state.pulse
    edges, freshness = await state.read_fresh(
        project.id,
        lambda conn: read_paths(
            conn, project.id, span.start, span.stop, anchor, direction, depth, limit
        ),
    )
    return respond(span.format, PathsOut(edges=edges, freshness=freshness), edges, "paths")
