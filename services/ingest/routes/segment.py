"""Segment HTTP Tracking API: `/v1/batch`, `/v1/import` and the one-event routes (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request

from services.common.events import EventRecord, RejectedRecord
from services.common.http import ApiError, JsonResponse
from services.ingest import metric_defs as m
from services.ingest.auth import resolve_project
from services.ingest.normalize import Invalid, normalize_segment, parse_time, rejection
from services.ingest.state import IngestState

router = APIRouter()

SUCCESS = {"success": True}
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
    messages: list[Any],
    project_id: int,
    batch_sent_at: datetime | None,
    default_type: str | None,
) -> None:
    received_at = datetime.now(UTC)
    events: list[EventRecord] = []
    rejected: list[RejectedRecord] = []
    for message in messages:
        try:
            if len(orjson.dumps(message)) > state.settings.max_event_bytes:
                raise Invalid(
                    "event_too_large",
                    f"event is larger than {state.settings.max_event_bytes} bytes",
                )
            events.append(
                normalize_segment(message, project_id, received_at, batch_sent_at, default_type)
            )
        except Invalid as error:
            rejected.append(rejection(message, project_id, received_at, error))
            m.EVENTS_REJECTED.labels(error.code).inc()
    await state.publisher.publish(events, rejected)
    m.EVENTS_ACCEPTED.inc(len(events))


def _batch_sent_at(body: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(body.get("sentAt"), "sentAt")
    except Invalid as error:
        raise ApiError(400, "invalid_sent_at", str(error)) from error


@router.post("/v1/batch")
@router.post("/v1/import")
async def batch(request: Request) -> JsonResponse:
    state: IngestState = request.app.state.pulse
    body = await state.read_body(request, state.settings.max_batch_bytes)
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
    await _accept(state, messages, project.id, _batch_sent_at(body), None)
    return JsonResponse(SUCCESS)


@router.post("/v1/{route}")
async def single(route: str, request: Request) -> JsonResponse:
    kind = SINGLE_ROUTES.get(route)
    if kind is None:
        raise ApiError(404, "not_found", f"no route /v1/{route}")
    state: IngestState = request.app.state.pulse
    body = await state.read_body(request, state.settings.max_event_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_event", "body must be a JSON object")
    project = await resolve_project(request, body, state.projects)
    await _accept(state, [body], project.id, None, kind)
    return JsonResponse(SUCCESS)
