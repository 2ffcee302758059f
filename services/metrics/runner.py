"""The consumer loop: parse -> batch (size/time) -> apply + store offsets in one transaction.

Offsets live in PostgreSQL beside the aggregates (aiokafka's "storing offsets outside Kafka"):
on assignment we seek to them; on revocation we finish the open batch first, under the same lock
the loop holds while applying, so no batch straddles an ownership change.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from services.common.db import database_unavailable
from services.common.kafka import durable_producer, pace_metadata_retries
from services.common.logging import get_logger
from services.common.settings import MetricsSettings
from services.metrics import metric_defs as m
from services.metrics.dlq import DeadLetterPublisher
from services.metrics.offsets import Claim, PartitionKey, claim_partitions
from services.metrics.parse import ParsedBatch, parse_records
from services.metrics.store import Store

log = get_logger(__name__)

T = TypeVar("T")

# A batch or a partition claim that finds no database is tried again after these many seconds,
# doubling up to the max (Runner._retrying).
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0


def batch_is_due(settings: MetricsSettings, pending: int, waited: float, behind: float) -> bool:
    """Whether to apply the `pending` records, the oldest of which waited `waited` seconds, when
    the broker last reported `behind` more records in the consumer's partitions (inf: unknown).

    A full batch or one whose oldest record waited PULSE_BATCH_MAX_SECONDS goes at once. So does
    one that waited PULSE_BATCH_MIN_SECONDS while the consumer holds at least as many records as
    are left to fetch: it keeps up, and waiting longer would only add latency (the next batch
    gathers while this one applies, so batches grow with the apply time). A consumer further
    behind (a backlog after a restart) fills its batches instead, as larger batches apply
    faster. The minimum groups what arrives within it, so a steady stream does not become a
    transaction per fetch (at 1,000 events/s: 189 batches in 15 s, against 751-789 with no
    minimum).

    "Holds at least as many as are left" rather than "has fetched everything" (behind == 0): a
    few records the fetcher has seen but not handed over yet need not hold a batch back until
    the maximum. With the broker holding fetches up to 500 ms (see `fetch_max_wait_ms` below),
    a steady 4,000 events/s went through 45 batches in 15 s, each applied in 0.1 s, at a p95
    freshness of 0.94-0.97 s under the old rule, and 137 batches at 0.27 s under this one (two
    more runs: 0.25 and 0.62 s). With fetches held at most 100 ms the consumer was found with
    nothing left to fetch at every batch of such a run, and the rules' figures came close (p95
    0.32-0.52 s under this one, 0.54-0.56 s under the old).
    """
    if not pending:
        return False
    if pending >= settings.batch_max_events or waited >= settings.batch_max_seconds:
        return True
    return behind <= pending and waited >= settings.batch_min_seconds


class Runner:
    def __init__(self, settings: MetricsSettings, pool: asyncpg.Pool) -> None:
        self._settings = settings
        self._pool = pool
        self._store = Store(pool, settings.consumer_group, settings.breakdown_key_list)
        self._topics = [settings.events_topic, settings.rejected_topic]
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # How long the broker may hold a fetch that found too little. At Kafka's 500 ms, a
            # steady 8,000 events/s came in chunks about every 0.4 s (p95 freshness 1.05 s); at
            # 100 ms, 0.53 s, with no change at 1,000 events/s. An idle consumer then asks the
            # broker 10 times a second instead of twice.
            fetch_max_wait_ms=100,
        )
        pace_metadata_retries(self._consumer._client)
        self._producer = durable_producer(settings)
        self._dead_letters = DeadLetterPublisher(self._producer, settings.dlq_topic)
        self._lock = asyncio.Lock()
        self._pending: list[ConsumerRecord[bytes, bytes]] = []
        self._pending_since = 0.0
        self._applied: dict[PartitionKey, int] = {}
        self._claims: dict[PartitionKey, Claim] = {}
        # Per owned partition, the next offset we expect: applied + pending. Records below it
        # are ones we already hold (a fetch that raced a rebalance's seek can repeat them).
        self._expected: dict[PartitionKey, int] = {}
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None  # of a rebalance callback

    # Called by aiokafka's coordinator around rebalances.
    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in assigned]
        claimed = await self._retrying(
            "claim", lambda: claim_partitions(self._pool, self._settings.consumer_group, keys)
        )
        # Never applied here: start at the log's beginning. An explicit seek, because aiokafka's
        # lazy seek_to_beginning() inside this callback can re-deliver records already fetched.
        unseen = [tp for tp in assigned if claimed[(tp.topic, tp.partition)][0] is None]
        beginnings = await self._consumer.beginning_offsets(unseen) if unseen else {}
        for tp in assigned:
            key = (tp.topic, tp.partition)
            stored, epoch = claimed[key]
            self._claims[key] = Claim(epoch, stored)
            position = stored if stored is not None else beginnings[tp]
            self._consumer.seek(tp, position)
            self._applied[key] = position
            self._expected[key] = position
        log.info(
            "partitions_assigned",
            partitions=sorted(f"{t.topic}:{t.partition}" for t in assigned),
        )

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            await self._flush()
            for tp in revoked:
                self._expected.pop((tp.topic, tp.partition), None)
                self._applied.pop((tp.topic, tp.partition), None)
                # Its lag is the new owner's to report: kept here, the last value would stay
                # in every sum over the replicas (a backlog that is not there, and an alert).
                m.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        log.info(
            "partitions_revoked", partitions=sorted(f"{t.topic}:{t.partition}" for t in revoked)
        )

    async def run(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=RebalanceListener(self))
        try:
            while not self._stopping.is_set():
                fetched = await self._consumer.getmany(
                    timeout_ms=50, max_records=self._settings.batch_max_events
                )
                if self._failure is not None:
                    raise self._failure
                async with self._lock:
                    for tp, records in fetched.items():
                        fresh = self._in_sequence(tp, records)
                        if fresh and not self._pending:
                            self._pending_since = time.monotonic()
                        self._pending.extend(fresh)
                    if self._batch_is_due():
                        await self._flush()
                self._report_lag()
            # Graceful stop: what was fetched is applied and committed before we leave.
            async with self._lock:
                await self._flush()
        except Exception as exc:
            if not (self._stopping.is_set() and database_unavailable(exc)):
                raise
            # Asked to stop while PostgreSQL is gone: the open batch cannot commit, and need not,
            # since nothing of it did: the next start reads its records again from the offsets
            # PostgreSQL holds. A stop, not a failure (no consumer_failed, no traceback).
            log.warning("stopped_with_batch_unapplied", error=type(exc).__name__)
        finally:
            await self._consumer.stop()
            await self._producer.stop()

    def _in_sequence(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        key = (tp.topic, tp.partition)
        expected = self._expected.get(key)
        if expected is None:
            return []  # not ours (any more)
        fresh = [r for r in records if r.offset >= expected]
        m.RECORDS_REDELIVERED.inc(len(records) - len(fresh))
        if fresh:
            self._expected[key] = fresh[-1].offset + 1
        return fresh

    def stop(self) -> None:
        self._stopping.set()

    def _batch_is_due(self) -> bool:
        waited = time.monotonic() - self._pending_since
        return batch_is_due(self._settings, len(self._pending), waited, self._behind())

    def _behind(self) -> float:
        """Records in the owned partitions, up to the ends the broker last reported, that this
        consumer does not hold yet (inf while an end or a position is unknown)."""
        behind = 0
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            expected = self._expected.get((tp.topic, tp.partition))
            if highwater is None or expected is None:
                return math.inf
            behind += max(0, highwater - expected)
        return behind

    async def _flush(self) -> None:
        if not self._pending:
            return
        records, self._pending = self._pending, []
        topics = (self._settings.events_topic, self._settings.rejected_topic)
        batch = parse_records(records, *topics)
        projects = {e.project_id for e in batch.events}
        missing = await self._retrying("projects", lambda: self._store.missing_projects(projects))
        if missing:  # rare (a record not from our ingest): read again, setting those aside
            batch = parse_records(records, *topics, missing_projects=missing)
        if batch.dead:
            # Durable in the DLQ before the offsets that skip them commit.
            await self._dead_letters.publish(batch.dead)
            for dead in batch.dead:
                log.warning(
                    "dead_letter",
                    topic=dead.record.topic,
                    partition=dead.record.partition,
                    offset=dead.record.offset,
                    reason=dead.reason,
                )
        await self._apply(batch)
        self._applied.update(batch.next_offsets)
        for key, next_offset in batch.next_offsets.items():
            self._claims[key].stored = next_offset
        m.BATCH_EVENTS.observe(len(records))

    async def _apply(self, batch: ParsedBatch) -> None:
        """Store.apply, tried again while PostgreSQL cannot be reached (`_retrying`). The failed
        transaction rolled back whole, so applying the batch again counts it once; if its commit
        did reach the database and only the answer was lost, the retry finds the stored offsets
        moved and stops with `Rewound` (offsets.py)."""
        await self._retrying("batch", lambda: self._store.apply(batch, self._claims))

    async def _retrying(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation`, tried again while PostgreSQL cannot be reached (a restart, a failover),
        after waits from RETRY_FIRST_SECONDS doubling to RETRY_MAX_SECONDS. After
        PULSE_DATABASE_RETRY_SECONDS its error ends the consumer, as any other does (crash-only:
        a supervisor restarts it, and it resumes from PostgreSQL). A graceful stop cuts the wait
        short for one last try; if that fails too, the loop ends without the batch (run())."""
        deadline = time.monotonic() + self._settings.database_retry_seconds
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await operation()
            except Exception as exc:
                if (
                    not database_unavailable(exc)
                    or self._stopping.is_set()
                    or time.monotonic() + delay > deadline
                ):
                    raise
                log.warning(
                    "database_unavailable",
                    during=what,
                    error=type(exc).__name__,
                    retry_in_seconds=delay,
                )
                m.DATABASE_RETRIES.inc()
            # A stop cuts the wait short: one last try, then its error ends the loop (run()).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def listener_failed(self, error: BaseException) -> None:
        """A rebalance callback failed; the loop raises it (RebalanceListener says why). Logged
        here too: the callbacks of the consumer's own stop run after the loop has ended."""
        log.warning("rebalance_callback_failed", error=repr(error))
        self._failure = error

    def _report_lag(self) -> None:
        """Lag = records in the partition beyond the last one applied to PostgreSQL."""
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            applied = self._applied.get((tp.topic, tp.partition))
            if highwater is not None and applied is not None:
                m.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - applied))


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks, routed to the runner. aiokafka only logs a callback's
    error and goes on: an assignment whose claim failed would be fetched from without our seeks
    and skipped as not ours, silently. So the error is handed to the runner, whose loop raises
    it."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self._runner.on_assigned(assigned)
        except Exception as exc:
            self._runner.listener_failed(exc)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await self._runner.on_revoked(revoked)
        except Exception as exc:
            self._runner.listener_failed(exc)
