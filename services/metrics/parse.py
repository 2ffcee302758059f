"""Step 1 of the consumer chain: Kafka records -> typed events, rejections, dead letters.

A record that cannot be read (not our JSON, or not our model) is never dropped silently: it
becomes a dead letter, published to the DLQ topic before the batch's offsets commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.common.events import EventRecord, RejectedRecord


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]
    reason: str


@dataclass
class ParsedBatch:
    events: list[EventRecord] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
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
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            reason = f"{exc.error_count()} validation error(s); first: {where}: {first['msg']}"
            batch.dead.append(DeadLetter(record, reason[:500]))
    return batch
