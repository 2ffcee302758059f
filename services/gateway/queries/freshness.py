"""`freshness` on every read: how far the aggregates are behind the event stream (SPEC §4).

`processed_through` is per project (receivedAt of its newest applied event). `lag` is the number
of records in the events topic not yet applied, for the whole topic: Kafka partitions are shared
by projects, so a per-project backlog cannot be known without reading it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.kafka import partitions_of
from services.common.settings import GatewaySettings
from services.common.tables import consumer_offsets, project_stats

LAG_CACHE_SECONDS = 1.0


class Freshness(BaseModel):
    processed_through: datetime | None
    lag: int | None  # None when Kafka cannot be asked right now


class LagProbe:
    """Reads the events topic's end offsets (cached for a second) to compare with applied ones."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
        )
        self._cached: tuple[float, dict[int, int]] | None = None
        self._partitions: list[int] = []  # partitions are only ever added; learned once
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def end_offsets(self) -> dict[int, int] | None:
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < LAG_CACHE_SECONDS:
                return self._cached[1]
            topic = self._settings.events_topic
            try:
                async with asyncio.timeout(2):
                    if not self._partitions:
                        self._partitions = await partitions_of(
                            self._settings.kafka_bootstrap_servers, topic
                        )
                    partitions = self._partitions
                    if not partitions:
                        return None  # the topic does not exist yet: lag is unknown
                    ends = await self._consumer.end_offsets(
                        [TopicPartition(topic, p) for p in partitions]
                    )
            except (TimeoutError, KafkaError):
                return None
            offsets = {tp.partition: offset for tp, offset in ends.items()}
            self._cached = (time.monotonic(), offsets)
            return offsets


async def read_freshness(
    conn: AsyncConnection, project_id: int, probe: LagProbe, settings: GatewaySettings
) -> Freshness:
    through = await conn.scalar(
        select(project_stats.c.processed_through).where(project_stats.c.project_id == project_id)
    )
    ends = await probe.end_offsets()
    if ends is None:
        return Freshness(processed_through=through, lag=None)
    rows = await conn.execute(
        select(consumer_offsets.c.partition, consumer_offsets.c.next_offset).where(
            consumer_offsets.c.consumer_group == settings.consumer_group,
            consumer_offsets.c.topic == settings.events_topic,
        )
    )
    applied = {r.partition: r.next_offset for r in rows}
    # A partition owned but not yet applied from (NULL) counts from offset 0.
    lag = sum(max(0, end - (applied.get(partition) or 0)) for partition, end in ends.items())
    return Freshness(processed_through=through, lag=lag)
