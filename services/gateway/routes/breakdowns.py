"""`GET /v1/breakdowns`: the keys `/v1/activity` and `/v1/retention` can split by, and whether
each one's values cover the project's history yet (a key tracked later is being filled in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.projects import Project
from services.gateway.auth import read_project
from services.gateway.queries.breakdown import Backfill, read_backfills
from services.gateway.queries.freshness import Freshness
from services.gateway.render import Format, respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])


class BreakdownKey(BaseModel):
    key: str
    backfill: Backfill


class BreakdownsOut(BaseModel):
    keys: list[BreakdownKey]
    freshness: Freshness


@router.get("/v1/breakdowns", response_model=BreakdownsOut)
async def breakdowns(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    format: Annotated[Format, Query(description="json (default) or csv")] = "json",
) -> Response:
    """The tracked breakdown keys (PULSE_BREAKDOWN_KEYS), in their configured order, each with
    `backfill`: "running" while its values over the history from before it was tracked are
    being filled in, then "complete"."""
    state: GatewayState = request.app.state.pulse

    async def read(conn: AsyncConnection) -> list[BreakdownKey]:
        keys = state.settings.breakdown_key_list
        backfills = await read_backfills(conn, project.id, keys)
        return [BreakdownKey(key=key, backfill=backfills[key]) for key in keys]

    keys, freshness = await state.read_fresh(project.id, read)
    return respond(format, BreakdownsOut(keys=keys, freshness=freshness), keys, "breakdowns")
