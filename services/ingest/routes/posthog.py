"""PostHog capture API: `/batch/`, `/capture/`, `/e/`, `/i/v0/e/` (SPEC §3), with or without the
trailing slash.

Bodies: `{"batch": [...], "api_key", "sent_at"}`, a bare array of events, or one event. The key
is `api_key` (or `token`, or Segment's `writeKey`) in the body, Basic or Bearer; when the
request names none, the events' own `api_key` / `properties.token` (posthog-js) must all agree.
`?compression=gzip-js` (or `gzip`) means a gzip body without a Content-Encoding header, and so
do a body's first bytes (posthog-js sends no parameter). A form-encoded body's `data` field holds
the JSON, as is or in base64 (posthog-js's `compression=base64`). Up to 5 MB per request. Errors
carry `detail` beside `code`/`message`: the PostHog client shows `detail`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from services.common.http import ApiError, JsonResponse
from services.ingest.accept import accept, prepare
from services.ingest.auth import resolve_project
from services.ingest.dispatch import Route
from services.ingest.posthog_mapping import posthog_to_segment
from services.ingest.state import IngestState

PATHS = ("/batch/", "/capture/", "/e/", "/i/v0/e/")
# PostHog's own fields, and Segment's `writeKey` (SPEC §3: any route takes any of them).
BODY_KEY_FIELDS = ("api_key", "token", "writeKey")


def _error(exc: ApiError) -> Response:
    return JsonResponse(
        {"code": exc.code, "message": exc.message, "detail": exc.message},
        status_code=exc.status,
        headers=exc.headers,
    )


def _gzip_requested(request: Request) -> bool:
    """What `?compression=` says: gzip, or a body that is JSON (`base64` goes with a form body
    whose `data` is base64, body.py). posthog-js no longer sends `gzip-js` with its gzip bodies:
    read_body knows them by their first bytes. `lz64` (posthog-js before 2023, when the server
    offered it; this one offers gzip, posthog_config.py) is refused."""
    compression = request.query_params.get("compression", "").lower()
    if compression in ("", "none", "base64"):
        return False
    if compression in ("gzip", "gzip-js"):
        return True
    raise ApiError(415, "unsupported_encoding", f"compression={compression} is not supported")


def _events(body: Any) -> tuple[list[Any], Any]:
    """The events of a body and the batch-level `sent_at`."""
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_batch", "body must be an event, an array or a batch")
    if "batch" in body:
        if not isinstance(body["batch"], list):
            raise ApiError(400, "invalid_batch", '"batch" must be an array of events')
        return body["batch"], body.get("sent_at")
    if "data" in body and "event" not in body:
        raise ApiError(
            415, "unsupported_encoding", "form-encoded `data` bodies are not supported; send JSON"
        )
    return [body], None


def _event_keys(events: list[Any]) -> list[Any]:
    keys = []
    for event in events:
        if isinstance(event, dict):
            keys += [event.get("api_key"), event.get("token")]
            if isinstance(properties := event.get("properties"), dict):
                keys.append(properties.get("token"))
    return keys


async def capture(request: Request) -> None:
    state: IngestState = request.app.state.pulse
    read = await state.read_body(
        request, state.settings.max_posthog_batch_bytes, gzip=_gzip_requested(request), form=True
    )
    events, sent_at = _events(read.data)
    project = await resolve_project(
        request, read.data, state.projects, BODY_KEY_FIELDS, _event_keys(events)
    )
    state.admit(project.id, len(events))
    prepared = prepare(
        events,
        project.id,
        max_event_bytes=state.settings.max_event_bytes,
        max_future_seconds=state.settings.max_future_seconds,
        body_size=read.size,
        convert=partial(posthog_to_segment, sent_at=sent_at),
        id_field="uuid",
    )
    await accept(state.publisher, prepared)


ROUTES: dict[str, Route] = {
    variant: Route(capture, _error) for path in PATHS for variant in (path, path.rstrip("/"))
}
