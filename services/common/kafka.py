"""Kafka helpers: topic creation and the producer settings that make a 200 mean durable."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from services.common.settings import CommonSettings


async def ensure_topics(settings: CommonSettings) -> None:
    """Create the topics Pulse uses if they are missing; idempotent across services."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.events_partitions, 1)
            for name in (settings.events_topic, settings.rejected_topic, settings.dlq_topic)
            if name not in existing
        ]
        if wanted:
            # Another service may create a topic between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def durable_producer(settings: CommonSettings) -> AIOKafkaProducer:
    """acks=all + idempotence: an acknowledged send is on every in-sync replica, exactly once."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=10_000,
        compression_type="gzip",
    )


async def broker_reachable(client: AIOKafkaClient, wait_seconds: float = 2.0) -> bool:
    """True when cluster metadata can be fetched now: the readiness check for Kafka."""
    try:
        async with asyncio.timeout(wait_seconds):
            return bool(await client.force_metadata_update())
    except (TimeoutError, KafkaError):
        return False


async def partitions_of(bootstrap_servers: str, topic: str) -> list[int]:
    """The topic's partition numbers (empty if the topic does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for t in described if t.get("error_code", 0) == 0 for p in t["partitions"]
    )
