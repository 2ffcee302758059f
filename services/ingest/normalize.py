"""Segment-spec messages -> `EventRecord`, or a rejection with its reason (SPEC §3).

Time: `receivedAt` is our clock. With `sentAt`, the event time is corrected for the device's clock
skew: `timestamp = receivedAt - (sentAt - originalTimestamp)`. An event whose (corrected) time is
more than `max_future_seconds` ahead of `receivedAt`, or before 2000-01-01, is rejected; any
other past time is kept, so history can be imported.

Ids and event names are capped in length: they become index keys downstream, and an id longer
than any real one is a bug in the sender, not data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.common.events import (
    EARLIEST_TIMESTAMP,
    MAX_EVENT_NAME_CHARS,
    MAX_ID_CHARS,
    MAX_MESSAGE_ID_CHARS,
    EventRecord,
    RejectedRecord,
)

SEGMENT_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})
DEFAULT_MAX_FUTURE_SECONDS = 86_400.0
# A rejected event keeps its payload for inspection, but never more than this of it.
MAX_REJECTED_PAYLOAD_BYTES = 32 * 1024


class Invalid(Exception):
    """One event is unusable; its batch goes on without it.

    `code` is a short, bounded label (metrics, filtering); the message says what to fix.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid("invalid_timestamp", f"{field} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(
            "invalid_timestamp", f"{field} is not an ISO-8601 timestamp: {value[:40]!r}"
        ) from exc
    # A timestamp without an offset is taken as UTC, as Segment does.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _optional_id(message: dict[str, Any], field: str) -> str | None:
    value = message.get(field)
    if type(value) is str:  # the common case first: this runs five times per event
        text = value
    elif value is None:
        return None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("invalid_id", f"{field} must be a string")
    else:
        text = str(value)
    if not text:
        return None
    if len(text) > MAX_ID_CHARS and field != "messageId":
        raise Invalid("id_too_long", f"{field} is longer than {MAX_ID_CHARS} characters")
    return text


def _object(message: dict[str, Any], field: str) -> dict[str, Any]:
    value = message.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("invalid_field", f"{field} must be an object")
    return value


def normalize_segment(
    message: Any,
    project_id: int,
    received_at: datetime,
    batch_sent_at: datetime | None,
    default_type: str | None = None,
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS,
) -> EventRecord:
    """One Segment message -> EventRecord; raises Invalid with the reason a user can act on."""
    return EventRecord(
        **normalize_fields(
            message, project_id, received_at, batch_sent_at, default_type, max_future_seconds
        )
    )


def normalize_fields(
    message: Any,
    project_id: int,
    received_at: datetime,
    batch_sent_at: datetime | None,
    default_type: str | None = None,
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS,
) -> dict[str, Any]:
    """The fields of `EventRecord`, already of their types (the hot path serializes them as
    they are: building the pydantic model cost as much as all the validation here)."""
    if not isinstance(message, dict):
        raise Invalid("not_an_object", "event must be a JSON object")
    kind = message.get("type") or default_type
    if not isinstance(kind, str) or kind not in SEGMENT_TYPES:  # e.g. a list: unhashable
        raise Invalid("invalid_type", f"type must be one of {', '.join(sorted(SEGMENT_TYPES))}")

    message_id = _optional_id(message, "messageId") or str(uuid.uuid4())
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        raise Invalid(
            "message_id_too_long", f"messageId is longer than {MAX_MESSAGE_ID_CHARS} characters"
        )

    user_id = _optional_id(message, "userId")
    anonymous_id = _optional_id(message, "anonymousId")
    previous_id = _optional_id(message, "previousId")
    if user_id is None and anonymous_id is None:
        raise Invalid("missing_id", "userId or anonymousId is required")
    if kind == "alias" and (previous_id is None or user_id is None):
        raise Invalid("missing_id", "alias needs previousId and userId")

    event_name = message.get("event")
    if kind == "track" and (not isinstance(event_name, str) or not event_name):
        raise Invalid("missing_event", "track needs an event name")
    if kind in ("page", "screen"):
        # The page/screen name is what paths and funnels match on.
        name = message.get("name")
        event_name = name if isinstance(name, str) and name else None
    elif kind != "track":
        event_name = None
    if event_name is not None and len(event_name) > MAX_EVENT_NAME_CHARS:
        raise Invalid(
            "event_name_too_long",
            f"the event name is longer than {MAX_EVENT_NAME_CHARS} characters",
        )

    original = parse_time(message.get("timestamp") or message.get("originalTimestamp"), "timestamp")
    sent_at = parse_time(message.get("sentAt"), "sentAt") or batch_sent_at
    timestamp = event_time(received_at, original, sent_at, max_future_seconds)

    properties = _object(message, "properties")
    traits = _object(message, "traits") or _object(_object(message, "context"), "traits")
    return {
        "project_id": project_id,
        "message_id": message_id,
        "type": kind,
        "event": event_name,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": previous_id,
        "group_id": _optional_id(message, "groupId"),
        "timestamp": timestamp,
        "original_timestamp": original,
        "sent_at": sent_at,
        "received_at": received_at,
        "properties": properties,
        "traits": traits,
        "context": _object(message, "context"),
    }


def event_time(
    received_at: datetime,
    original: datetime | None,
    sent_at: datetime | None,
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS,
) -> datetime:
    """The event time after clock-skew correction, refused when implausible."""
    if original is None:
        return received_at
    try:
        timestamp = received_at - (sent_at - original) if sent_at is not None else original
        too_late = timestamp - received_at > timedelta(seconds=max_future_seconds)
        too_early = timestamp < EARLIEST_TIMESTAMP
    except OverflowError as exc:  # e.g. year 9999 plus a skew correction
        raise Invalid("timestamp_out_of_range", "timestamp is outside the years 1-9999") from exc
    if too_late:
        raise Invalid(
            "timestamp_in_future",
            f"timestamp is more than {max_future_seconds / 3600:g} hours after the server's "
            "clock (after clock-skew correction); send real event times",
        )
    if too_early:
        raise Invalid(
            "timestamp_out_of_range",
            f"timestamp is before {EARLIEST_TIMESTAMP.date().isoformat()}; "
            "is the device clock unset?",
        )
    return timestamp


# Keys are not the event's data; keep them out of what read-key holders can list.
KEY_FIELDS = ("writeKey", "api_key", "token")


def rejection(
    message: Any,
    project_id: int,
    received_at: datetime,
    error: Invalid,
    message_id: Any = None,
) -> RejectedRecord:
    if message_id is None and isinstance(message, dict):
        message_id = message.get("messageId")
    payload = (
        {k: v for k, v in message.items() if k not in KEY_FIELDS}
        if isinstance(message, dict)
        else message
    )
    try:
        encoded = orjson.dumps(payload)
    except orjson.JSONEncodeError:  # nested deeper than any serializer downstream accepts
        encoded = b""
        payload = {"unreadable": "nested too deeply to keep"}
    if len(encoded) > MAX_REJECTED_PAYLOAD_BYTES:
        payload = {
            "truncated": encoded[: MAX_REJECTED_PAYLOAD_BYTES // 2].decode("utf-8", "ignore"),
            "bytes": len(encoded),
        }
    return RejectedRecord(
        project_id=project_id,
        reason=error.code,
        detail=str(error),
        message_id=str(message_id)[:200] if message_id is not None else None,
        received_at=received_at,
        payload=payload,
    )
