"""The dead-letter topic: records the consumer cannot read, with why and where they came from.

Headers carry the original topic, partition and offset and the reason; the value is the
original bytes, untouched, so `pulse dlq replay` can put them back once a fix can read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.kafka import partitions_of
from services.common.settings import CommonSettings
from services.metrics import metric_defs as m
from services.metrics.parse import DeadLetter


class DeadLetterPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, dead: Sequence[DeadLetter]) -> None:
        acks = [
            await self._producer.send(
                self._topic,
                d.record.value,
                key=d.record.key,
                headers=[
                    ("pulse.reason", d.reason.encode()),
                    ("pulse.topic", d.record.topic.encode()),
                    ("pulse.partition", str(d.record.partition).encode()),
                    ("pulse.offset", str(d.record.offset).encode()),
                ],
            )
            for d in dead
        ]
        await asyncio.gather(*acks)
        m.DEAD_LETTERS.inc(len(dead))


@dataclass(frozen=True)
class DeadLetterEntry:
    offset: int  # in the DLQ topic
    partition: int
    headers: dict[str, str]
    value: bytes


async def read_dead_letters(
    settings: CommonSettings, from_offset: int = 0, limit: int = 100
) -> list[DeadLetterEntry]:
    """Read the DLQ from `from_offset` (per partition) up to its end; no consumer group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(settings.dlq_topic, p)
            for p in await partitions_of(settings.kafka_bootstrap_servers, settings.dlq_topic)
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, from_offset)
        entries: list[DeadLetterEntry] = []
        while len(entries) < limit and any(await _remaining(consumer, ends)):
            fetched = await consumer.getmany(timeout_ms=1000)
            if not fetched:
                break
            for tp, records in fetched.items():
                entries += [
                    DeadLetterEntry(
                        r.offset,
                        tp.partition,
                        {k: v.decode() for k, v in r.headers},
                        r.value or b"",
                    )
                    for r in records
                ]
        return sorted(entries, key=lambda e: (e.partition, e.offset))[:limit]
    finally:
        await consumer.stop()


async def _remaining(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> list[bool]:
    return [await consumer.position(tp) < end for tp, end in ends.items()]


async def replay_dead_letters(settings: CommonSettings, entries: Sequence[DeadLetterEntry]) -> int:
    """Publish the original bytes back to the topic they came from; returns how many."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        acks = [
            await producer.send(e.headers.get("pulse.topic", settings.events_topic), e.value)
            for e in entries
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return len(entries)
