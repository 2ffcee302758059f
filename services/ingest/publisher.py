"""Publishes accepted and rejected events; returns only once the broker acknowledged them all.

Broker down or slow: the request gets 503 + Retry-After after `produce_timeout_seconds`, never a
200. Records queued for a request that timed out may still be written when the broker returns;
the client retries with the same messageIds and the consumer's dedup counts them once.

The idempotent producer can come back from a broker restart unable to send (aiokafka does not
reset its producer id after `OutOfOrderSequenceNumber`, unlike the Java client), or its sender
task can die. Either way the request gets its 503 and the next one builds a fresh producer, so
the service recovers without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, RequestTimedOutError
from aiokafka.partitioner import murmur2

from services.common.http import ApiError
from services.common.kafka import broker_reachable, durable_producer
from services.common.logging import get_logger
from services.common.settings import IngestSettings
from services.ingest import metric_defs as m

log = get_logger(__name__)

RETRY_AFTER_SECONDS = "5"

Record = tuple[bytes, bytes]  # (partition key, value)

_HASHES_KEPT = 200_000


class Partitions:
    """Kafka's default key -> partition mapping, with the key hashes remembered.

    aiokafka computes murmur2 in pure Python (~8 µs a key, a sixth of an event's cost here);
    the same devices send again and again, so their hash is looked up instead.
    """

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def of(self, key: bytes, partitions: list[int]) -> int:
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= _HASHES_KEPT:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "broker_unavailable",
        "events could not be stored right now; nothing was acknowledged, retry later",
        {"Retry-After": RETRY_AFTER_SECONDS},
    )


class Publisher:
    def __init__(
        self,
        settings: IngestSettings,
        factory: Callable[[IngestSettings], AIOKafkaProducer] = durable_producer,
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._producer: AIOKafkaProducer | None = None
        self._broken: AIOKafkaProducer | None = None
        self._replacing = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        self._partitions = Partitions()

    async def start(self) -> None:
        self._producer = self._factory(self._settings)
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is still queued (bounded), then close."""
        if self._producer is not None:
            await self._producer.stop()
        for closing in list(self._closing):
            closing.cancel()

    def _alive(self, producer: AIOKafkaProducer | None) -> bool:
        if producer is None or producer is self._broken:
            return False
        # aiokafka keeps no public flag for it: a finished sender task never sends again.
        task = getattr(getattr(producer, "_sender", None), "sender_task", None)
        return task is not None and not task.done()

    async def _current(self) -> AIOKafkaProducer:
        if self._alive(self._producer):
            assert self._producer is not None
            return self._producer
        async with self._replacing:
            if not self._alive(self._producer):
                broken, self._producer = self._producer, None
                log.warning("kafka_producer_replaced")
                m.PRODUCER_RESTARTS.inc()
                if broken is not None:
                    # Whatever it still holds was answered 503: let it close in the background.
                    closing = asyncio.create_task(broken.stop())
                    self._closing.add(closing)
                    closing.add_done_callback(self._closing.discard)
                fresh = self._factory(self._settings)
                try:
                    await fresh.start()
                except BaseException:
                    await fresh.stop()
                    raise
                self._producer = fresh
        assert self._producer is not None
        return self._producer

    async def ready(self) -> bool:
        """Readiness: the producer is alive and the broker answers a metadata request now."""
        producer = self._producer
        return self._alive(producer) and await broker_reachable(producer.client)  # type: ignore[union-attr]

    async def _send(
        self, producer: AIOKafkaProducer, topic: str, records: Sequence[Record]
    ) -> list[asyncio.Future[object]]:
        if not records:
            return []
        known = producer.client.cluster.partitions_for_topic(topic)
        if not known:  # no metadata yet: aiokafka waits for it and partitions itself
            return [await producer.send(topic, value, key=key) for key, value in records]
        partitions = sorted(known)
        of = self._partitions.of
        return [
            await producer.send(topic, value, key=key, partition=of(key, partitions))
            for key, value in records
        ]

    async def publish(self, events: Sequence[Record], rejected: Sequence[Record]) -> None:
        """Send everything, then wait for every acknowledgement; 503 if the broker does not answer.

        Sends are queued without awaiting each acknowledgement, so a batch of 100 costs one round
        of broker requests, not 100.
        """
        started = time.perf_counter()
        producer = None
        try:
            async with asyncio.timeout(self._settings.produce_timeout_seconds):
                producer = await self._current()
                acks = await self._send(producer, self._settings.events_topic, events)
                acks += await self._send(producer, self._settings.rejected_topic, rejected)
                await asyncio.gather(*acks)
        except (TimeoutError, KafkaError) as exc:
            if producer is not None and not isinstance(
                exc, TimeoutError | KafkaTimeoutError | RequestTimedOutError
            ):
                # Not slowness: the broker refused this producer's records. Start over.
                self._broken = producer
            m.PRODUCE_FAILURES.labels(type(exc).__name__).inc()
            log.warning("produce_failed", error=type(exc).__name__, records=len(events))
            raise _unavailable() from exc
        m.PRODUCE_SECONDS.observe(time.perf_counter() - started)
