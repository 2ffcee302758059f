"""Read a whole Kafka topic back (tests check what the broker really holds, not what we sent)."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def _read(bootstrap: str, topic: str, seconds: float) -> list[dict]:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + seconds
        records: list[dict] = []  # type: ignore[type-arg]
        end: dict[TopicPartition, int] = {}
        while not end or any([await consumer.position(tp) < end[tp] for tp in end]):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {seconds}s")
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            records += [orjson.loads(r.value) for rs in batches.values() for r in rs if r.value]
            if not end and consumer.assignment():
                end = await consumer.end_offsets(list(consumer.assignment()))
        return records
    finally:
        await consumer.stop()


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[dict]:  # type: ignore[type-arg]
    """Every record of `topic` from the beginning to its current end, decoded from JSON."""
    return asyncio.run(_read(bootstrap, topic, timeout))
