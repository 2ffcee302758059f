"""`GET /v1/activity`: daily DAU/WAU/MAU, new users, events, stickiness (SPEC §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.params import DateRange, date_range
from services.gateway.queries.activity import ActivityDay, read_activity
from services.gateway.queries.freshness import Freshness, read_freshness
from services.gateway.render import respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])


class ActivityOut(BaseModel):
    days: list[ActivityDay]
    freshness: Freshness


@router.get("/v1/activity", response_model=ActivityOut)
async def activity(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    span: Annotated[DateRange, Depends(date_range)],
) -> Response:
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        days = await read_activity(conn, project.id, span.start, span.stop)
        freshness = await read_freshness(conn, project.id, state.lag, state.settings)
    return respond(span.format, ActivityOut(days=days, freshness=freshness), days, "activity")
