"""What a late event costs a person with a long history: a batch of late events vs in-order ones.

PERSONS persons, each with HISTORY archived events (visits of four events ten minutes apart,
three hours between visits) applied in order through the real `Store.apply`. Then, ROUNDS
times, one batch giving each person one event after their last (an append: the kept tails
answer) and one batch giving each one event an hour before their last (late: sessions, paths
and funnels read the archive around it). The figure is the late batch's time divided by the
in-order batch's, best of each, so it reads as "a late event costs N appends". Sessions,
paths, funnels and traits read a bounded part of a late person's history (docs/performance.md,
"Late events on long histories"), so the figure should not grow with HISTORY
(`PULSE_BENCH_LATE_HISTORY`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.harness import Figure
from services.common.db import create_pool
from services.common.events import EventRecord
from services.metrics.gc_tuning import gc_tuned
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import new_project

PERSONS = 100
HISTORY = int(os.environ.get("PULSE_BENCH_LATE_HISTORY", "2000"))
ROUNDS = 3
BATCH = 5000
NAMES = ["view", "search", "cart", "view", "buy"]
START = datetime(2026, 6, 1, tzinfo=UTC)
VISIT = 4  # events per visit


def _at(n: int) -> datetime:
    """When a person's n-th event happens: visits of VISIT events 10 minutes apart, 3 h apart."""
    visit, step = divmod(n, VISIT)
    return START + visit * timedelta(hours=3) + step * timedelta(minutes=10)


def _event(project_id: int, person: int, n: int, at: datetime) -> EventRecord:
    return EventRecord(
        project_id=project_id,
        message_id=str(uuid.uuid4()),
        type="track",
        event=NAMES[(n * 7 + person) % len(NAMES)],
        user_id=f"user-{person}",
        timestamp=at,
        received_at=datetime.now(UTC),
    )


async def _apply_timed(store: Store, events: list[EventRecord]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        await store.apply(ParsedBatch(events=events[i : i + BATCH]), {})
    return time.perf_counter() - started


async def _measure(url: str) -> tuple[float, float]:
    pool = await create_pool(url)
    try:
        project_id = await new_project(pool)
        store = Store(pool, f"bench-late-{uuid.uuid4()}")
        history = [
            _event(project_id, p, n, _at(n) + timedelta(seconds=p))
            for n in range(HISTORY)
            for p in range(PERSONS)
        ]
        loaded = await _apply_timed(store, history)
        print(f"  {len(history):,} events loaded in {loaded:.0f}s", flush=True)
        appends, lates = [], []
        for round_ in range(ROUNDS):
            n = HISTORY + round_
            on_time = [
                _event(project_id, p, n, _at(n) + timedelta(seconds=p)) for p in range(PERSONS)
            ]
            appends.append(await _apply_timed(store, on_time))
            # An hour before the last event: between the last two visits.
            an_hour_ago = _at(n) - timedelta(hours=1)
            late = [
                _event(project_id, p, n + 1, an_hour_ago + timedelta(seconds=p))
                for p in range(PERSONS)
            ]
            lates.append(await _apply_timed(store, late))
            print(
                f"  round {round_ + 1}: late batch {lates[-1] * 1000:.0f} ms, "
                f"in-order batch {appends[-1] * 1000:.0f} ms",
                flush=True,
            )
        return min(lates), min(appends)
    finally:
        await pool.close()


def run(env: dict[str, str]) -> list[Figure]:
    with gc_tuned():
        late, append = asyncio.run(_measure(env["DATABASE_URL"]))
    return [
        Figure(
            f"late_event_batch_seconds_vs_in_order_batch_{HISTORY}_events_per_person",
            late,
            append,
            f"s ÷ s; {PERSONS} persons, one event each",
        )
    ]
