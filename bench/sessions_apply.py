"""Cost of sessions and paths on the metrics apply path: Store.apply with them vs without.

N events shaped like visits (1-8 events a few minutes apart, a few visits per active day, 2%
identify calls linking a device to its user, 5% delivered late) go through the real `Store.apply`
into PostgreSQL in batches of the service's `PULSE_BATCH_MAX_EVENTS` (what a consumer with a backlog
applies at a time), in three configurations of the same store code:
- as the service runs it;
- with sessions and paths switched off (in batches and in identity merges) and the archive of
  active events still written: the service without them still needs the archive, which funnels
  (late-event windows), trait breakdowns and the live view read. This is the issue's "rate
  without them", the figure its goal is for;
- with the archive step switched off as well (the archive insert, then sessions and paths, which it
  calls): the stricter figure earlier runs reported, kept so that they stay comparable.
Each is measured three times on a fresh project, alternating, best of each kept; both figures
divide the first rate by one of the others; goal >= 0.7. The projects track no breakdown key
(the service's default tracks `plan`): with it tracked, the ratio came out the same within the
rounds' spread (docs/performance.md, "Issue 6's apply ratio"). Kafka is left out on purpose: it
costs the same in all three, so leaving it out makes the ratios stricter, not kinder.
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

import services.metrics.aggregates.archive as archive_module
import services.metrics.aggregates.identity as identity_module
import services.metrics.aggregates.paths as paths_module
import services.metrics.store as store_module
from bench.harness import Figure
from services.common.db import create_pool
from services.common.events import EventRecord
from services.common.settings import MetricsSettings
from services.metrics.gc_tuning import gc_tuned
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import new_project

N_EVENTS = int(os.environ.get("PULSE_BENCH_SESSIONS_EVENTS", "100000"))
BATCH = MetricsSettings().batch_max_events
ROUNDS = 3


def visit_events(project_id: int, rng: random.Random) -> list[EventRecord]:
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


async def _skipped(*_: object) -> None:
    return None


# Sessions and paths as a batch updates them, and as an identity merge redoes the persons it
# joins (identity.py), both switched off: (module, function) pairs replaced by `_skipped`.
NO_SESSIONS_OR_PATHS: list[tuple[object, str]] = [
    (archive_module, "apply_sessions"),
    (archive_module, "apply_paths"),
    (identity_module, "recompute_persons"),
    (paths_module, "leaving_merge"),
    (paths_module, "joined_merge"),
]
CONFIGURATIONS: dict[str, list[tuple[object, str]]] = {
    "with sessions and paths": [],
    "archive only": NO_SESSIONS_OR_PATHS,
    "no archive step": [*NO_SESSIONS_OR_PATHS, (store_module, "apply_archive")],
}


async def _rate(pool: asyncpg.Pool, configuration: str, seed: int) -> float:
    project_id = await new_project(pool)
    events = visit_events(project_id, random.Random(seed))
    batches: Sequence[list[EventRecord]] = [
        events[i : i + BATCH] for i in range(0, len(events), BATCH)
    ]
    store = Store(pool, f"bench-sessions-{uuid.uuid4()}")
    switched_off = CONFIGURATIONS[configuration]
    originals = [getattr(module, name) for module, name in switched_off]
    for module, name in switched_off:
        setattr(module, name, _skipped)
    try:
        started = time.perf_counter()
        for batch in batches:
            await store.apply(ParsedBatch(events=batch), {})
        return len(events) / (time.perf_counter() - started)
    finally:
        for (module, name), original in zip(switched_off, originals, strict=True):
            setattr(module, name, original)


def run(env: dict[str, str]) -> list[Figure]:
    async def measure() -> dict[str, float]:
        pool = await create_pool(env["DATABASE_URL"])
        try:
            rates: dict[str, list[float]] = {c: [] for c in CONFIGURATIONS}
            for round_ in range(ROUNDS):
                for configuration in reversed(CONFIGURATIONS):
                    rates[configuration].append(await _rate(pool, configuration, round_))
                print(
                    f"round {round_ + 1}: "
                    + ", ".join(f"{c} {r[-1]:.0f}" for c, r in rates.items())
                    + " events/s",
                    flush=True,
                )
            return {c: max(r) for c, r in rates.items()}
        finally:
            await pool.close()

    with gc_tuned():
        best = asyncio.run(measure())
    return [
        Figure(
            "metrics_apply_events_per_s_with_sessions_and_paths_vs_archive_only",
            best["with sessions and paths"],
            best["archive only"],
            "events/s ÷ events/s",
            ">= 0.7",
        ),
        Figure(
            "metrics_apply_events_per_s_with_sessions_and_paths_vs_without",
            best["with sessions and paths"],
            best["no archive step"],
            "events/s ÷ events/s (archive charged to them too)",
            ">= 0.7",
        ),
    ]
