"""Segment-spec messages -> `EventRecord`, or a rejection with its reason (SPEC §3).

Time: `receivedAt` is our clock. With `sentAt`, the event time is corrected for the device's clock
skew: `timestamp = receivedAt - (sentAt - originalTimestamp)`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.common.events import EventRecord, RejectedRecord

SEGMENT_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})
MAX_MESSAGE_ID_CHARS = 100


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
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("invalid_id", f"{field} must be a string")
    return str(value)


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
) -> EventRecord:
    """One Segment message -> EventRecord; raises Invalid with the reason a user can act on."""
    if not isinstance(message, dict):
        raise Invalid("not_an_object", "event must be a JSON object")
    kind = message.get("type") or default_type
    if kind not in SEGMENT_TYPES:
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

    original = parse_time(message.get("timestamp") or message.get("originalTimestamp"), "timestamp")
    sent_at = parse_time(message.get("sentAt"), "sentAt") or batch_sent_at
    if original is None:
        timestamp = received_at
    elif sent_at is not None:
        timestamp = received_at - (sent_at - original)
    else:
        timestamp = original

    properties = _object(message, "properties")
    traits = _object(message, "traits") or _object(_object(message, "context"), "traits")
    return EventRecord(
        project_id=project_id,
        message_id=message_id,
        type=kind,
        event=event_name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        previous_id=previous_id,
        group_id=_optional_id(message, "groupId"),
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        received_at=received_at,
        properties=properties,
        traits=traits,
        context=_object(message, "context"),
    )


def rejection(
    message: Any, project_id: int, received_at: datetime, error: Invalid
) -> RejectedRecord:
    message_id = message.get("messageId") if isinstance(message, dict) else None
    return RejectedRecord(
        project_id=project_id,
        reason=error.code,
        detail=str(error),
        message_id=str(message_id)[:200] if message_id is not None else None,
        received_at=received_at,
        # The write key is not the event's data; keep it out of what read-key holders can list.
        payload=(
            {k: v for k, v in message.items() if k not in ("writeKey", "api_key")}
            if isinstance(message, dict)
            else message
        ),
    )
