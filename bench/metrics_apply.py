"""Metrics service throughput and freshness, each against a baseline from the same run.

1. apply rate: a pre-filled topic of N events (several thousand persons, identify links, several
   weeks) is consumed by a cold-started `pulse-metrics` until every event is applied, divided by
   (a) a bare asyncpg COPY of N rows into PostgreSQL and (b) a bare aiokafka `getmany` loop over
   the same topic. Goals >= 0.3 each.
2. freshness: a steady 1,000 events/s (`PULSE_BENCH_FRESHNESS_RATE`, a multiple of 100) through
   the real ingest for a bounded time; p95 of the time from an event's acknowledgement (its
   receivedAt) to it being counted by `/v1/status`, divided by the p95 of a bare Kafka
   produce->consume transit at the same rate of requests. Goal: p95 <= 1 s.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import Figure
from services.common.events import EventRecord
from tests.support.services import Pipeline, ServiceProcess

N_EVENTS = int(os.environ.get("PULSE_BENCH_EVENTS", "100000"))
# ~100 events per person over 4 weeks (a few per active day), 2% of them identify calls.
PERSONS = max(1, N_EVENTS // 100)
FRESHNESS_SECONDS = 15
RATE = int(os.environ.get("PULSE_BENCH_FRESHNESS_RATE", "1000"))  # events/s, sent 1% every 10 ms


def random_order_events(project_id: int, rng: random.Random) -> list[EventRecord]:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    out = []
    for i in range(N_EVENTS):
        n = rng.randrange(PERSONS)
        at = start + timedelta(days=rng.randrange(28), seconds=rng.randrange(86_400))
        if i % 50 == 0:  # 2%: identify, linking a device to a user
            out.append(
                EventRecord(
                    project_id=project_id,
                    message_id=str(uuid.uuid4()),
                    type="identify",
                    user_id=f"user-{n}",
                    anonymous_id=f"device-{n}",
                    timestamp=at,
                    received_at=now,
                )
            )
            continue
        actor = {"user_id": f"user-{n}"} if rng.random() < 0.5 else {"anonymous_id": f"device-{n}"}
        out.append(
            EventRecord(
                project_id=project_id,
                message_id=str(uuid.uuid4()),
                type="track",
                event=rng.choice(["view", "search", "cart", "buy"]),
                timestamp=at,
                received_at=now,
                **actor,
            )
        )
    return out


async def _create_topics(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
    finally:
        await admin.close()


async def _fill(bootstrap: str, topic: str, events: list[EventRecord]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        acks = [
            await producer.send(topic, e.model_dump_json().encode(), key=e.partition_key)
            for e in events
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def _bare_getmany(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        started, seen = time.perf_counter(), 0
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                seen += len(records)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _bare_copy(url: str, events: list[EventRecord]) -> float:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TEMP TABLE bench_copy (project_id int, day date, person_id text, events int)"
        )
        rows = [(e.project_id, e.timestamp.date(), e.user_id or e.anonymous_id, 1) for e in events]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=rows)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def _apply_rate(env: dict[str, str], pool: asyncpg.Pool, project_id: int) -> float:
    metrics = ServiceProcess("metrics", env)
    started = time.perf_counter()
    metrics.start()
    try:
        while True:
            done = await pool.fetchval(
                "SELECT events_processed FROM project_stats WHERE project_id = $1", project_id
            )
            if done and done >= N_EVENTS:
                return N_EVENTS / (time.perf_counter() - started)
            await asyncio.sleep(0.05)
    finally:
        metrics.stop()


def _freshness(pipeline: Pipeline, project: dict[str, str]) -> list[float]:
    """Send RATE events/s (RATE / 100 per request, every 10 ms); record when each request's events
    become visible in /v1/status."""
    acked: list[tuple[float, int]] = []  # (ack time, cumulative events)
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(auth=(project["write_key"], ""), timeout=10) as client:
            total, next_at = 0, time.perf_counter()
            deadline = next_at + FRESHNESS_SECONDS
            while next_at < deadline:
                batch = [
                    {
                        "type": "track",
                        "event": "tick",
                        "userId": f"u{random.randrange(500)}",
                        "messageId": str(uuid.uuid4()),
                    }
                    for _ in range(RATE // 100)
                ]
                client.post(f"{pipeline.ingest.url}/v1/batch", json={"batch": batch})
                total += len(batch)
                acked.append((time.perf_counter(), total))
                next_at += 0.01
                time.sleep(max(0.0, next_at - time.perf_counter()))
        stop.set()

    visible: list[tuple[float, int]] = []
    sender = threading.Thread(target=send)
    sender.start()
    with httpx.Client(timeout=10) as client:
        headers = {"Authorization": f"Bearer {project['read_key']}"}
        while not stop.is_set() or (visible and visible[-1][1] < acked[-1][1]):
            status = client.get(f"{pipeline.gateway.url}/v1/status", headers=headers).json()
            visible.append((time.perf_counter(), status["events_processed"]))
            time.sleep(0.02)
    sender.join()
    latencies = []
    for ack_time, total in acked:
        seen = next(t for t, count in visible if count >= total and t >= ack_time)
        latencies.append(seen - ack_time)
    return latencies


async def _kafka_transit(bootstrap: str) -> list[float]:
    """Bare produce -> consume latency at the same rate, same broker."""
    topic = f"bench-transit-{uuid.uuid4().hex[:8]}"
    await _create_topics(bootstrap, topic)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    await producer.send_and_wait(topic, b"warmup")
    await consumer.start()
    await asyncio.sleep(1)
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < FRESHNESS_SECONDS * 100:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.perf_counter()
                latencies.extend(now - float(r.value.decode()) for r in records)

    reader = asyncio.create_task(consume())
    for _ in range(FRESHNESS_SECONDS * 100):
        await producer.send_and_wait(topic, str(time.perf_counter()).encode())
        await asyncio.sleep(0.01)
    await asyncio.wait_for(reader, 30)
    await producer.stop()
    await consumer.stop()
    return latencies


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[94]


def run(env: dict[str, str]) -> list[Figure]:
    async def throughput() -> list[Figure]:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        service_env = {
            **env,
            "PULSE_EVENTS_TOPIC": f"{name}.events",
            "PULSE_REJECTED_TOPIC": f"{name}.rejected",
            "PULSE_DLQ_TOPIC": f"{name}.dlq",
            "PULSE_CONSUMER_GROUP": f"{name}.metrics",
        }
        pool = await asyncpg.create_pool(env["DATABASE_URL"])
        project_id = await pool.fetchval(
            "INSERT INTO projects (name, write_key, read_key) VALUES ($1, $2, $3) RETURNING id",
            name,
            f"pw_{name}",
            f"pr_{name}",
        )
        events = random_order_events(project_id, random.Random(1))
        await _create_topics(
            env["KAFKA_BOOTSTRAP_SERVERS"],
            *(service_env[f"PULSE_{k}_TOPIC"] for k in ("EVENTS", "REJECTED", "DLQ")),
        )
        print(f"filling {service_env['PULSE_EVENTS_TOPIC']} with {N_EVENTS} events", flush=True)
        await _fill(env["KAFKA_BOOTSTRAP_SERVERS"], service_env["PULSE_EVENTS_TOPIC"], events)
        getmany = await _bare_getmany(
            env["KAFKA_BOOTSTRAP_SERVERS"], service_env["PULSE_EVENTS_TOPIC"], N_EVENTS
        )
        copy = await _bare_copy(env["DATABASE_URL"], events)
        applied = await _apply_rate(service_env, pool, project_id)
        await pool.close()
        return [
            Figure("metrics_apply_vs_copy", applied, copy, "events/s", ">= 0.3"),
            Figure("metrics_apply_vs_getmany", applied, getmany, "events/s", ">= 0.3"),
        ]

    figures = asyncio.run(throughput())
    pipeline = Pipeline.start(env, f"bench-fresh-{uuid.uuid4().hex[:6]}")
    try:
        project = pipeline.create_project("freshness")
        latencies = _freshness(pipeline, project)
    finally:
        pipeline.stop()
    transit = asyncio.run(_kafka_transit(env["KAFKA_BOOTSTRAP_SERVERS"]))
    figures.append(
        Figure(
            "freshness_p95_vs_kafka_transit_p95",
            _p95(latencies),
            _p95(transit),
            f"s at {RATE} events/s",
            "value <= 1 s",
        )
    )
    return figures
