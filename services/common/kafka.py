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
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=10_000,
        compression_type="gzip",
    )
    pace_metadata_retries(producer.client)
    return producer


# A failed metadata update waits this long before it reports, doubling after each failure up
# to the maximum (the Java client's reconnect.backoff.ms and reconnect.backoff.max.ms).
METADATA_RETRY_FIRST_SECONDS = 0.1
METADATA_RETRY_MAX_SECONDS = 1.0


def pace_metadata_retries(client: AIOKafkaClient) -> None:
    """Make the client's failed metadata updates wait before they report, so that nothing asks
    for the next one at once.

    aiokafka 0.14's producer asks for new metadata again the moment an update ends while a
    partition has no known leader (producer/sender.py says "wait backoff time" there, but
    nothing waits). A broker that shuts down first reports its partitions leaderless; once it
    is gone every connection is refused at once, and that loop spins. In the broker outage test
    (tests/e2e/test_broker_outage.py) the ingest logged 131,988 attempts, two lines each, and
    used 14.8 s of CPU in its 15.6 s; paced, 16 attempts and 0.7 s. A subscribed consumer
    does not spin, but its updates fail about 17 times a second (a `/tmp` script stopping a
    broker under one: 348 log lines in 5 s, 128 with the pacing). aiokafka offers no
    setting for it: the client's `_metadata_update`, which all its updates go through, is
    wrapped on the instance."""
    update = client._metadata_update
    delay = METADATA_RETRY_FIRST_SECONDS

    async def paced(cluster_metadata: object, topics: object) -> bool:
        nonlocal delay
        updated: bool = await update(cluster_metadata, topics)
        if updated:
            delay = METADATA_RETRY_FIRST_SECONDS
        else:
            await asyncio.sleep(delay)
            delay = min(2 * delay, METADATA_RETRY_MAX_SECONDS)
        return updated

    client._metadata_update = paced


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
