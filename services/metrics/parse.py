"""Step 1 of the consumer chain: Kafka records -> typed events, rejections, unreadable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.common.events import EventRecord, RejectedRecord


@dataclass
class ParsedBatch:
    events: list[EventRecord] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    # Positions to store with the aggregates: topic -> partition -> next offset to read.
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def parse_records(
    records: list[ConsumerRecord[bytes, bytes]], events_topic: str, rejected_topic: str
) -> ParsedBatch:
    batch = ParsedBatch()
    for record in records:
        key = (record.topic, record.partition)
        batch.next_offsets[key] = max(batch.next_offsets.get(key, 0), record.offset + 1)
        raw = record.value or b""
        try:
            if record.topic == events_topic:
                batch.events.append(EventRecord.model_validate_json(raw))
            elif record.topic == rejected_topic:
                batch.rejected.append(RejectedRecord.model_validate_json(raw))
        except ValidationError as exc:
            # Never dropped silently: kept as a rejection the operator can see and replay.
            batch.rejected.append(
                RejectedRecord(
                    project_id=None,
                    reason="unreadable_record",
                    detail=f"{record.topic}[{record.partition}]@{record.offset}: "
                    f"{exc.error_count()} validation errors",
                    received_at=datetime.now(UTC),
                    payload={"raw": raw.decode("utf-8", "replace")},
                )
            )
    return batch
