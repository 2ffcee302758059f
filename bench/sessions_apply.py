"""Cost of sessions and paths on the metrics apply path: Store.apply with that step vs without.

N events shaped like visits (1-8 events a few minutes apart, a few visits per active day, 2%
identify calls linking a device to its user, 5% delivered late) go through the real `Store.apply`
into PostgreSQL in batches of the service's `PULSE_BATCH_MAX_EVENTS` (what a consumer with a backlog
applies at a time), once as the service runs it and once with the archive step (the archive insert,
then sessions and paths, which it calls) switched off — the same store code otherwise. Each is
measured three times on a fresh project, alternating, best of each kept. The figure is the apply
rate with sessions and paths divided by the rate without; goal >= 0.7. Kafka is left out on purpose:
it costs the same in both, so leaving it out makes the ratio stricter, not kinder.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

import services.metrics.store as store_module
from bench.harness import Figure
from services.common.events import EventRecord
from services.common.settings import MetricsSettings
from services.metrics.gc_tuning import gc_tuned
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import new_project

N_EVENTS = int(os.environ.get("PULSE_BENCH_SESSIONS_EVENTS", "100000"))
BATCH = MetricsSettings().batch_max_events
ROUNDS = 3


def _events(project_id: int, rng: random.Random) -> list[EventRecord]:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    out: list[EventRecord] = []
    n = 0
    while len(out) < N_EVENTS:
        n += 1
        device, user = f"device-{n}", f"user-{n}"
        for day in sorted(rng.sample(range(28), rng.randint(1, 10))):
            at = start + timedelta(days=day, minutes=rng.randrange(20 * 60))
            for _ in range(rng.randint(1, 3)):
                for _ in range(rng.randint(1, 8)):
                    ids = {"user_id": user} if rng.random() < 0.5 else {"anonymous_id": device}
                    out.append(
                        EventRecord(
                            project_id=project_id,
                            message_id=str(uuid.uuid4()),
                            type="track",
                            event=rng.choice(["view", "search", "cart", "buy"]),
                            timestamp=at,
                            received_at=now,
                            **ids,
                        )
                    )
                    at += timedelta(minutes=rng.randint(1, 10), seconds=rng.randrange(60))
                at += timedelta(minutes=rng.randint(31, 300))
            if rng.random() < 0.1:
                out.append(
                    EventRecord(
                        project_id=project_id,
                        message_id=str(uuid.uuid4()),
                        type="identify",
                        user_id=user,
                        anonymous_id=device,
                        timestamp=at,
                        received_at=now,
                    )
                )
    out = out[:N_EVENTS]
    out.sort(key=lambda e: e.timestamp)
    late = set(rng.sample(range(len(out)), len(out) // 20))
    return [e for i, e in enumerate(out) if i not in late] + [out[i] for i in sorted(late)]


async def _no_sessions(*_: object) -> None:
    return None


async def _rate(pool: asyncpg.Pool, sessions: bool, seed: int) -> float:
    project_id = await new_project(pool)
    events = _events(project_id, random.Random(seed))
    batches: Sequence[list[EventRecord]] = [
        events[i : i + BATCH] for i in range(0, len(events), BATCH)
    ]
    store = Store(pool, f"bench-sessions-{uuid.uuid4()}")
    original = store_module.apply_archive
    if not sessions:
        store_module.apply_archive = _no_sessions  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        for batch in batches:
            await store.apply(ParsedBatch(events=batch), {})
        return len(events) / (time.perf_counter() - started)
    finally:
        store_module.apply_archive = original


def run(env: dict[str, str]) -> list[Figure]:
    async def measure() -> tuple[float, float]:
        pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=2)
        try:
            with_sessions, without = [], []
            for round_ in range(ROUNDS):
                without.append(await _rate(pool, False, round_))
                with_sessions.append(await _rate(pool, True, round_))
                print(
                    f"round {round_ + 1}: {with_sessions[-1]:.0f} vs {without[-1]:.0f} events/s",
                    flush=True,
                )
            return max(with_sessions), max(without)
        finally:
            await pool.close()

    with gc_tuned():
        value, baseline = asyncio.run(measure())
    return [
        Figure(
            "metrics_apply_events_per_s_with_sessions_and_paths_vs_without",
            value,
            baseline,
            "events/s ÷ events/s",
            ">= 0.7",
        )
    ]
