"""Publishes accepted and rejected events; returns only once the broker acknowledged them all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.common.events import EventRecord, RejectedRecord
from services.common.http import ApiError
from services.common.settings import IngestSettings
from services.ingest import metric_defs as m

RETRY_AFTER_SECONDS = "5"


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, settings: IngestSettings) -> None:
        self._producer = producer
        self._settings = settings

    async def publish(
        self, events: Sequence[EventRecord], rejected: Sequence[RejectedRecord]
    ) -> None:
        """Send everything, then wait for every acknowledgement; 503 if the broker does not answer.

        Sends are queued without awaiting each one, so a batch of 100 costs one round of broker
        requests, not 100.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.produce_timeout_seconds):
                acks = [
                    await self._producer.send(
                        self._settings.events_topic,
                        e.model_dump_json().encode(),
                        key=e.partition_key,
                    )
                    for e in events
                ]
                acks += [
                    await self._producer.send(
                        self._settings.rejected_topic,
                        orjson.dumps(r.model_dump(mode="json")),
                        key=str(r.project_id).encode(),
                    )
                    for r in rejected
                ]
                await asyncio.gather(*acks)
        except (TimeoutError, KafkaError) as exc:
            m.PRODUCE_FAILURES.labels(type(exc).__name__).inc()
            raise ApiError(
                503,
                "broker_unavailable",
                "events could not be stored right now; retry later",
                {"Retry-After": RETRY_AFTER_SECONDS},
            ) from exc
        m.PRODUCE_SECONDS.observe(time.perf_counter() - started)
