"""`freshness` on every read: how far the aggregates are behind the event stream (SPEC §4).

`processed_through` is per project (receivedAt of its newest applied event). `lag` is the number
of records not yet applied in the two topics the metrics service applies: the events topic and
the rejected topic (whose records make `/v1/status`'s `rejected` and `/v1/rejected`), so a lag of
0 means every number of the project is current. It is for the whole topics: Kafka partitions are
shared by projects, so a per-project backlog cannot be known without reading it.
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
PROBE_TIMEOUT_SECONDS = 2.0  # how long a read waits for Kafka's end offsets


class Freshness(BaseModel):
    processed_through: datetime | None
    lag: int | None  # None when Kafka cannot be asked right now


class LagProbe:
    """Reads the applied topics' end offsets (cached for a second) to compare with applied ones."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
        )
        self._cached: tuple[float, dict[tuple[str, int], int] | None] | None = None
        # Partitions are only ever added: each topic's are learned once it exists.
        self._partitions: dict[str, list[int]] = {}
        self._lock = asyncio.Lock()

    @property
    def topics(self) -> list[str]:
        return [self._settings.events_topic, self._settings.rejected_topic]

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def end_offsets(self) -> dict[tuple[str, int], int] | None:
        """(topic, partition) -> end offset; None when a topic does not exist yet or Kafka
        cannot be asked: the lag is unknown. Either answer is kept for a second: while Kafka
        does not answer, one request a second waits for it (PROBE_TIMEOUT_SECONDS), not every
        one (a read asks twice: the read cache's version and the route's freshness)."""
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < LAG_CACHE_SECONDS:
                return self._cached[1]
            ends = await self._ask()
            self._cached = (time.monotonic(), ends)
            return ends

    async def _ask(self) -> dict[tuple[str, int], int] | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                for topic in self.topics:
                    if not self._partitions.get(topic):
                        self._partitions[topic] = await partitions_of(
                            self._settings.kafka_bootstrap_servers, topic
                        )
                if not all(self._partitions.values()):
                    return None
                ends = await self._consumer.end_offsets(
                    [TopicPartition(t, p) for t, ps in self._partitions.items() for p in ps]
                )
        except (TimeoutError, KafkaError):
            return None
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


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
        select(
            consumer_offsets.c.topic, consumer_offsets.c.partition, consumer_offsets.c.next_offset
        ).where(
            consumer_offsets.c.consumer_group == settings.consumer_group,
            consumer_offsets.c.topic.in_(probe.topics),
        )
    )
    applied = {(r.topic, r.partition): r.next_offset for r in rows}
    # A partition owned but not yet applied from (NULL) counts from offset 0.
    lag = sum(max(0, end - (applied.get(key) or 0)) for key, end in ends.items())
    return Freshness(processed_through=through, lag=lag)
