"""Step 1 of the consumer chain: Kafka records -> typed events, rejections, dead letters.

A record that cannot be read (not our JSON, or not our model) is never dropped silently: it
becomes a dead letter, published to the DLQ topic before the batch's offsets commit. So does one
that PostgreSQL could not store: one with a NUL character in any text, which the ingest never
writes (it replaces them) but another producer might. Stored, it would fail its batch's
transaction, and the consumer would stop on it at every restart.
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
    records: list[ConsumerRecord[bytes, bytes]],
    events_topic: str,
    rejected_topic: str,
    missing_projects: frozenset[int] = frozenset(),
) -> ParsedBatch:
    """`missing_projects`: ids no project has (Store.missing_projects); their events are dead
    letters, as no day or person of theirs can be counted."""
    batch = ParsedBatch()
    for record in records:
        key = (record.topic, record.partition)
        batch.next_offsets[key] = max(batch.next_offsets.get(key, 0), record.offset + 1)
        raw = record.value or b""
        try:
            if record.topic == events_topic:
                event = EventRecord.model_validate_json(raw)
                if _ESCAPED_NUL in raw and _holds_nul(event.model_dump()):
                    batch.dead.append(DeadLetter(record, NUL_REASON))
                elif event.project_id in missing_projects:
                    reason = f"project {event.project_id} does not exist"
                    batch.dead.append(DeadLetter(record, reason))
                else:
                    batch.events.append(event)
            elif record.topic == rejected_topic:
                rejected = RejectedRecord.model_validate_json(raw)
                if _ESCAPED_NUL in raw and _holds_nul(rejected.model_dump()):
                    batch.dead.append(DeadLetter(record, NUL_REASON))
                else:
                    batch.rejected.append(rejected)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            reason = f"{exc.error_count()} validation error(s); first: {where}: {first['msg']}"
            batch.dead.append(DeadLetter(record, reason[:500]))
    return batch


# JSON carries a NUL only escaped; most records do not hold the escape, and pay one byte search.
# (`\\u0000`, an escaped backslash before "u0000", holds it too: then the values decide.)
_ESCAPED_NUL = b"\\u0000"
NUL_REASON = "holds a NUL character (\\u0000), which PostgreSQL cannot store"


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False
