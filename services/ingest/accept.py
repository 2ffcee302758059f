"""One request's messages -> published events and rejections, for every wire format.

Each message is checked on its own: one that is too large, too deeply nested or invalid becomes a
rejected event with its reason, and the rest of the batch goes on. Records are serialized here,
so whatever the consumer could not read back is refused now, not discovered downstream.

Events are serialized with orjson straight from the validated fields, in the JSON shape of
`EventRecord` (the consumer reads them with `EventRecord.model_validate_json`, and
tests/unit/test_ingest_limits.py holds the two equal): building and dumping the pydantic model
cost ~12 µs an event, a fifth of the ingest's whole per-event budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from services.common.events import EventRecord, RejectedRecord
from services.ingest import metric_defs as m
from services.ingest.normalize import Invalid, normalize_fields, rejection
from services.ingest.publisher import Publisher

# The consumer parses records with pydantic, which refuses JSON nested ~200 deep; a record with
# fewer brackets than this cannot be that deep, so only rarer ones pay for a trial parse.
_BRACKETS_WORTH_CHECKING = 150

# A wire-format message -> a Segment message (raises Invalid); None for Segment itself.
Converter = Callable[[Any, datetime], dict[str, Any]]


@dataclass
class Prepared:
    """Serialized records ready to publish: (partition key, value)."""

    events: list[tuple[bytes, bytes]] = field(default_factory=list)
    rejected: list[tuple[bytes, bytes]] = field(default_factory=list)


def _readable(raw: bytes, model: type[BaseModel]) -> bytes:
    if raw.count(b"{") + raw.count(b"[") >= _BRACKETS_WORTH_CHECKING:
        try:
            model.model_validate_json(raw)
        except ValidationError as exc:
            raise Invalid("too_deeply_nested", "event is nested too deeply") from exc
    return raw


def _serialize(record: BaseModel) -> bytes:
    try:
        raw = record.model_dump_json().encode()
    except PydanticSerializationError as exc:
        raise Invalid("too_deeply_nested", "event is nested too deeply") from exc
    return _readable(raw, type(record))


def serialize_event(fields: dict[str, Any]) -> tuple[bytes, bytes]:
    """(partition key, JSON of an `EventRecord`) from `normalize_fields`' output."""
    try:
        raw = orjson.dumps(fields, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError as exc:
        raise Invalid("too_deeply_nested", "event is nested too deeply") from exc
    # As EventRecord.partition_key: one device (else user) stays on one partition.
    device = fields["anonymous_id"] or fields["user_id"]
    return f"{fields['project_id']}:{device}".encode(), _readable(raw, EventRecord)


def prepare(
    messages: list[Any],
    project_id: int,
    *,
    max_event_bytes: int,
    max_future_seconds: float,
    body_size: int,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
    convert: Converter | None = None,
    id_field: str = "messageId",
) -> Prepared:
    received_at = datetime.now(UTC)
    prepared = Prepared()
    # No single message can be larger than the whole body: skip measuring in the common case.
    measure = body_size > max_event_bytes
    for message in messages:
        try:
            if measure:
                try:
                    size = len(orjson.dumps(message))
                except orjson.JSONEncodeError as exc:
                    raise Invalid("too_deeply_nested", "event is nested too deeply") from exc
                if size > max_event_bytes:
                    raise Invalid(
                        "event_too_large", f"event is larger than {max_event_bytes} bytes"
                    )
            segment = convert(message, received_at) if convert is not None else message
            fields = normalize_fields(
                segment, project_id, received_at, batch_sent_at, default_type, max_future_seconds
            )
            prepared.events.append(serialize_event(fields))
        except Invalid as error:
            message_id = message.get(id_field) if isinstance(message, dict) else None
            record = rejection(message, project_id, received_at, error, message_id)
            prepared.rejected.append((str(project_id).encode(), _serialize_rejected(record)))
            m.EVENTS_REJECTED.labels(error.code).inc()
    return prepared


def _serialize_rejected(record: RejectedRecord) -> bytes:
    try:
        return _serialize(record)
    except Invalid:
        unreadable = {"unreadable": "nested too deeply"}
        return _serialize(record.model_copy(update={"payload": unreadable}))


async def accept(publisher: Publisher, prepared: Prepared) -> None:
    """Publish; returns once Kafka acknowledged every record (else ApiError 503)."""
    await publisher.publish(prepared.events, prepared.rejected)
    m.EVENTS_ACCEPTED.inc(len(prepared.events))
