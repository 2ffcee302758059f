"""Filling in a breakdown key tracked later, against applying the same history.

The sessions benchmark's 100k visit-shaped events (bench/sessions_apply.py), a seventh of them
carrying `plan`, go through the real `Store.apply` by a store that tracks no key (in batches of
PULSE_BATCH_MAX_EVENTS), timed: the baseline. Then the project gains `plan` as a `running`
breakdown key, as a metrics start that tracks it would add it, and the walk
(services/metrics/breakdown_backfill.py) fills in its values from the archive, timed. Both as
events per second of the same history; two rounds on fresh projects, best of each.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import asyncpg

from bench.harness import Figure
from bench.sessions_apply import BATCH, visit_events
from services.common.db import create_pool
from services.metrics.breakdown_backfill import BACKFILL
from services.metrics.gc_tuning import gc_tuned
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from services.metrics.walk import walk_pending
from tests.support.store_db import new_project

ROUNDS = 2
PLANS = ["free", "vip"]

ADD_KEY = "INSERT INTO breakdown_keys (project_id, key, backfill) VALUES ($1, 'plan', 'running')"
OTHERS_RUNNING = (
    "SELECT count(*) FROM breakdown_keys WHERE backfill = 'running' AND project_id <> $1"
)


async def _round(pool: asyncpg.Pool, seed: int) -> tuple[float, float]:
    """(walk events/s, apply events/s) over one fresh project."""
    project_id = await new_project(pool)
    rng = random.Random(seed)
    events = visit_events(project_id, rng)
    for event in events[::7]:
        event.properties["plan"] = rng.choice(PLANS)
    store = Store(pool, f"bench-keys-{uuid.uuid4()}")  # tracks no key
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        await store.apply(ParsedBatch(events=events[i : i + BATCH]), {})
    applied = len(events) / (time.perf_counter() - started)
    await pool.execute(ADD_KEY, project_id)
    assert await pool.fetchval(OTHERS_RUNNING, project_id) == 0  # the walk is this project's only
    started = time.perf_counter()
    await walk_pending(pool, BACKFILL)
    walked = len(events) / (time.perf_counter() - started)
    values = await pool.fetchval(
        "SELECT count(*) FROM person_day_values WHERE project_id = $1", project_id
    )
    print(f"  apply {applied:,.0f} events/s, walk {walked:,.0f} events/s ({values:,} value rows)")
    return walked, applied


def run(env: dict[str, str]) -> list[Figure]:
    async def measure() -> tuple[float, float]:
        pool = await create_pool(env["DATABASE_URL"])
        try:
            rounds = [await _round(pool, seed) for seed in range(ROUNDS)]
            return max(r[0] for r in rounds), max(r[1] for r in rounds)
        finally:
            await pool.close()

    with gc_tuned():
        walked, applied = asyncio.run(measure())
    return [
        Figure(
            "breakdown_backfill_events_per_s_vs_apply",
            walked,
            applied,
            "events/s: the walk filling in a new key vs Store.apply of the same history",
        )
    ]
