"""The keys `/v1/activity`, `/v1/retention`, `/v1/stickiness`, `/v1/lifecycle` and
`/v1/sessions` can split by (SPEC §4 Breakdowns).

`GET /v1/breakdowns` lists them, each with whether its values cover the project's history yet (a
key tracked later is being filled in). The keys of PULSE_BREAKDOWN_KEYS are every project's
(`configured`); a project tracks more of its own with `POST /v1/breakdowns {"key"}` and stops
with `DELETE /v1/breakdowns/{key}` (read key, like funnels). The metrics service fills in a new
key's values over the history (services/metrics/breakdown_backfill.py) and keeps them from its
next batch on, on every replica.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.http import ApiError, JsonResponse
from services.common.projects import Project
from services.common.text import MAX_KEY_CHARS, NUL, NUL_MESSAGE, StrictStoredStr
from services.gateway.auth import read_project
from services.gateway.queries.breakdown import (
    Backfill,
    TrackedKey,
    add_key,
    drop_key,
    dropping,
    lock_project,
    read_tracked_keys,
)
from services.gateway.queries.freshness import Freshness
from services.gateway.render import Format, respond
from services.gateway.state import GatewayState

router = APIRouter(tags=["activity"])

Answer = TypeVar("Answer")
Split = TypeVar("Split")

# The fields a read adds with `?breakdown=`; /v1/sessions, /v1/stickiness and /v1/lifecycle,
# which took no breakdown before, answer without them otherwise, as they did.
SPLIT_FIELDS = {"breakdown", "breakdown_backfill"}

# More keys would cost every event of the project a value lookup per key.
MAX_KEYS_PER_PROJECT = 20


class BreakdownsOut(BaseModel):
    keys: list[TrackedKey]
    freshness: Freshness


class NewKey(BaseModel):
    key: Annotated[
        StrictStoredStr,
        Field(
            min_length=1,
            max_length=MAX_KEY_CHARS,
            description="an event property / identify trait, e.g. `country`",
        ),
    ]


async def require_tracked(
    conn: AsyncConnection, state: GatewayState, project_id: int, key: str
) -> Backfill:
    """The backfill of a key the project tracks; 422 naming the tracked keys for another."""
    tracked = await read_tracked_keys(conn, project_id, state.settings.breakdown_key_list)
    for found in tracked:
        if found.key == key:
            return found.backfill
    names = ", ".join(k.key for k in tracked) or "none"
    raise ApiError(
        422,
        "invalid_parameter",
        f"breakdown: {key!r} is not tracked (tracked: {names}; "
        'POST /v1/breakdowns {"key": ...} tracks one)',
    )


async def read_split(
    state: GatewayState,
    project_id: int,
    breakdown: str | None,
    unsplit: Callable[[AsyncConnection], Awaitable[Answer]],
    split: Callable[[AsyncConnection, str], Awaitable[Split]],
) -> tuple[Answer, Split | None, Backfill | None, Freshness]:
    """A read's answer and, with `breakdown` (a key the project tracks, else 422), the same
    split by it and the key's backfill; on one connection, with the project's freshness."""

    async def read(conn: AsyncConnection) -> tuple[Answer, Split | None, Backfill | None]:
        answer = await unsplit(conn)
        if breakdown is None:
            return answer, None, None
        backfill = await require_tracked(conn, state, project_id, breakdown)
        return answer, await split(conn, breakdown), backfill

    (answer, series, backfill), freshness = await state.read_fresh(project_id, read)
    return answer, series, backfill, freshness


@router.get("/v1/breakdowns", response_model=BreakdownsOut)
async def breakdowns(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    format: Annotated[Format, Query(description="json (default) or csv")] = "json",
) -> Response:
    """The tracked breakdown keys: PULSE_BREAKDOWN_KEYS in their order (`configured`), then
    the project's own in the order they were added, each with `backfill`: "running" while its
    values over the history from before it was tracked are being filled in, then "complete"."""
    state: GatewayState = request.app.state.pulse

    async def read(conn: AsyncConnection) -> list[TrackedKey]:
        return await read_tracked_keys(conn, project.id, state.settings.breakdown_key_list)

    keys, freshness = await state.read_fresh(project.id, read)
    return respond(format, BreakdownsOut(keys=keys, freshness=freshness), keys, "breakdowns")


@router.post(
    "/v1/breakdowns",
    status_code=201,
    response_model=TrackedKey,
    responses={200: {"description": "the key was tracked already", "model": TrackedKey}},
)
async def track(
    body: NewKey,
    request: Request,
    project: Annotated[Project, Depends(read_project)],
) -> Response:
    """Track a key (read key): activity, retention, stickiness, lifecycle and sessions split by
    it from now on, and its values over the history are filled in (`backfill` "running", then
    "complete"). 200 when it was tracked already; at most 20 keys per project."""
    state: GatewayState = request.app.state.pulse
    listed = state.settings.breakdown_key_list
    async with state.engine.begin() as conn:
        # Under the project's lock: two POSTs at once count each other's key against the cap.
        await lock_project(conn, project.id)
        tracked = await read_tracked_keys(conn, project.id, listed)
        if body.key not in {k.key for k in tracked}:
            if await dropping(conn, project.id, body.key):
                raise ApiError(
                    409,
                    "key_being_dropped",
                    f"{body.key!r} was dropped and its values are still being deleted (a few "
                    "seconds per million); track it again once they are gone",
                )
            if len(tracked) >= MAX_KEYS_PER_PROJECT:
                raise ApiError(
                    422,
                    "too_many_keys",
                    f"the project tracks {MAX_KEYS_PER_PROJECT} keys, the most it may (each "
                    "costs every event a value); delete one first",
                )
            await add_key(conn, project.id, body.key)
            status = 201
        else:
            status = 200
        found = next(
            k for k in await read_tracked_keys(conn, project.id, listed) if k.key == body.key
        )
    return JsonResponse(found.model_dump(mode="json"), status_code=status)


@router.delete("/v1/breakdowns/{key}", status_code=204, response_class=Response)
async def untrack(
    request: Request,
    project: Annotated[Project, Depends(read_project)],
    key: Annotated[str, Path(max_length=MAX_KEY_CHARS)],
) -> Response:
    """Stop tracking a key the project added (read key): its splits are gone at once, its
    values are deleted by the metrics service in the background, and until they are the key
    cannot be tracked again (409). A key of PULSE_BREAKDOWN_KEYS is every project's: 409
    (remove it there and restart the metrics service)."""
    if NUL in key:
        raise ApiError(422, "invalid_parameter", f"key: {NUL_MESSAGE}")
    state: GatewayState = request.app.state.pulse
    if key in state.settings.breakdown_key_list:
        dropped: bool | None = False
    else:
        async with state.engine.begin() as conn:
            dropped = await drop_key(conn, project.id, key)
    if dropped is None:
        raise ApiError(404, "not_found", f"the project does not track {key!r}")
    if not dropped:
        raise ApiError(
            409,
            "configured_key",
            f"{key!r} is tracked by every project (PULSE_BREAKDOWN_KEYS): remove it there and "
            "restart the metrics service and the gateway",
        )
    return Response(status_code=204)
