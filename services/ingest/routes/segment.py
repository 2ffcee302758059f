"""Segment HTTP Tracking API: `/v1/batch`, `/v1/import` and the one-event routes (SPEC §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request

from services.common.http import ApiError
from services.common.projects import Project
from services.ingest.accept import accept, prepare
from services.ingest.auth import resolve_project
from services.ingest.dispatch import Route
from services.ingest.normalize import Invalid, parse_time
from services.ingest.state import IngestState

SINGLE_ROUTES = {
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}


async def _accept(
    state: IngestState,
    project: Project,
    messages: list[Any],
    body_size: int,
    batch_sent_at: datetime | None,
    default_type: str | None,
) -> None:
    state.admit(project.id, len(messages))
    prepared = prepare(
        messages,
        project.id,
        max_event_bytes=state.settings.max_event_bytes,
        max_future_seconds=state.settings.max_future_seconds,
        body_size=body_size,
        batch_sent_at=batch_sent_at,
        default_type=default_type,
    )
    await accept(state.publisher, prepared)


def _batch_sent_at(body: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(body.get("sentAt"), "sentAt")
    except Invalid as error:
        raise ApiError(400, "invalid_sent_at", str(error)) from error


async def batch(request: Request) -> None:
    state: IngestState = request.app.state.pulse
    read = await state.read_body(request, state.settings.max_batch_bytes)
    body = read.data
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise ApiError(400, "invalid_batch", 'body must be an object with a "batch" array')
    project = await resolve_project(request, body, state.projects)
    messages: list[Any] = body["batch"]
    if len(messages) > state.settings.max_batch_events:
        raise ApiError(
            400,
            "batch_too_long",
            f"a batch holds at most {state.settings.max_batch_events} events; split it",
        )
    await _accept(state, project, messages, read.size, _batch_sent_at(body), None)


def _single(kind: str) -> Route:
    async def single(request: Request) -> None:
        state: IngestState = request.app.state.pulse
        read = await state.read_body(request, state.settings.max_event_bytes)
        if not isinstance(read.data, dict):
            raise ApiError(400, "invalid_event", "body must be a JSON object")
        project = await resolve_project(request, read.data, state.projects)
        await _accept(state, project, [read.data], read.size, None, kind)

    return Route(single)


ROUTES: dict[str, Route] = {
    "/v1/batch": Route(batch),
    "/v1/import": Route(batch),
    # Segment's mobile SDKs (analytics-swift, analytics-kotlin, React Native) upload batches to
    # `{apiHost}/b`: gzip as text/plain, the writeKey in the body.
    "/v1/b": Route(batch),
    **{f"/v1/{path}": _single(kind) for path, kind in SINGLE_ROUTES.items()},
}
