"""`freshness.lag` (services/gateway/queries/freshness.py) against a real broker: the records of
the events topic and of the rejected topic that the consumer group has not applied yet."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from services.common.kafka import ensure_topics
from services.common.settings import GatewaySettings
from services.gateway.queries.freshness import LagProbe, read_freshness
from tests.support.store_db import Db, new_project

STORE_OFFSET = """
INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset)
VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = excluded.next_offset
"""


async def test_lag_counts_unapplied_records_of_the_events_and_rejected_topics(
    db: Db, stack_env: dict[str, str]
) -> None:
    prefix = f"lag-{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(
        KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        DATABASE_URL=db.url,
        events_topic=f"{prefix}.events",
        rejected_topic=f"{prefix}.rejected",
        dlq_topic=f"{prefix}.dlq",
        events_partitions=2,
        consumer_group=f"{prefix}-group",
    )
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for topic, partition, records in [
            (settings.events_topic, 0, 3),
            (settings.events_topic, 1, 1),
            (settings.rejected_topic, 1, 2),
            (settings.dlq_topic, 0, 5),  # not applied by the consumer: never lag
        ]:
            for _ in range(records):
                await producer.send_and_wait(topic, b"{}", partition=partition)
    finally:
        await producer.stop()

    project_id = await new_project(db.pool)
    probe = LagProbe(settings)
    await probe.start()
    group = settings.consumer_group
    try:

        async def lag() -> int | None:
            async with db.engine.connect() as conn:
                return (await read_freshness(conn, project_id, probe, settings)).lag

        assert await lag() == 6  # nothing applied: every record of both topics
        await db.pool.execute(STORE_OFFSET, group, settings.events_topic, 0, 3)
        await db.pool.execute(STORE_OFFSET, group, settings.events_topic, 1, 1)
        assert await lag() == 2  # the events applied, the rejections not yet
        await db.pool.execute(STORE_OFFSET, group, settings.rejected_topic, 1, 1)
        assert await lag() == 1
        await db.pool.execute(STORE_OFFSET, group, settings.rejected_topic, 1, 2)
        assert await lag() == 0
    finally:
        await probe.stop()
