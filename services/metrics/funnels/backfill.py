"""Backfill: a funnel created now is evaluated over all the history the project has.

Design: the archive of active events in PostgreSQL (`active_events`, one row per deduplicated
event since Pulse started keeping them), not a replay of the Kafka topic: the archive is already
deduplicated, identity-resolved through `identities`, indexed by person, and not subject to the
topic's retention; a replay would re-run dedup and merges and race the live consumer. The walk
goes person by person (a person's label is their smallest distinct id, so labels are the
`identities` rows with person_id = distinct_id), a chunk per transaction, and records the last
person done in `funnels.backfill_cursor`, so a restarted service resumes there.

New events are applied to a funnel from the moment it exists (maintain.py), so once the walk
ends the funnel is complete and stays current. The only race is a batch that loaded the project's
funnels before this one was created and commits after the walk passed its persons; the first
chunk therefore takes the project's lock exclusively, which waits for every batch in flight
(they hold it shared), and every later batch sees the funnel.

The chunk transaction locks the funnel row FOR NO KEY UPDATE SKIP LOCKED: two metrics
processes never walk one funnel at once, and a DELETE of the funnel waits for the chunk.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from services.common.logging import get_logger
from services.metrics import metric_defs as m
from services.metrics.aggregates.sessions import LOCK_PERSONS, lock_key
from services.metrics.funnels.maintain import load_funnels, recompute

log = get_logger(__name__)

NEXT_RUNNING = """
SELECT id, project_id, backfill_cursor FROM funnels
WHERE backfill = 'running'
ORDER BY id LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
"""

NEXT_PERSONS = """
SELECT distinct_id FROM identities
WHERE project_id = $1 AND distinct_id = person_id AND ($2::text IS NULL OR distinct_id > $2)
ORDER BY distinct_id LIMIT $3
"""

LOCK_PROJECT = "SELECT pg_advisory_xact_lock(1347, $1)"  # the key store.py's LOCK_PROJECTS uses
LOCK_PROJECT_SHARED = "SELECT pg_advisory_xact_lock_shared(1347, $1)"

ADVANCE = "UPDATE funnels SET backfill_cursor = $2 WHERE id = $1"
COMPLETE = """
UPDATE funnels SET backfill = 'complete', backfill_cursor = $2, backfill_done_at = now()
WHERE id = $1
"""


async def backfill_chunk(pool: asyncpg.Pool, chunk_persons: int = 1000) -> bool:
    """Walk the next chunk of persons of one running funnel; False when none is running."""
    async with pool.acquire() as conn, conn.transaction():
        funnel = await conn.fetchrow(NEXT_RUNNING)
        if funnel is None:
            return False
        funnel_id, project_id, cursor = funnel
        first = cursor is None
        await conn.execute(LOCK_PROJECT if first else LOCK_PROJECT_SHARED, project_id)
        persons = [r[0] for r in await conn.fetch(NEXT_PERSONS, project_id, cursor, chunk_persons)]
        if persons:
            people = [(project_id, p) for p in persons]
            await conn.execute(LOCK_PERSONS, sorted({lock_key(p) for p in people}))
            funnels = await load_funnels(conn, [project_id], only=funnel_id)
            await recompute(conn, funnels, dict.fromkeys(people))
        if len(persons) < chunk_persons:
            await conn.execute(COMPLETE, funnel_id, persons[-1] if persons else cursor)
            log.info("funnel_backfilled", funnel=funnel_id, project=project_id)
        else:
            await conn.execute(ADVANCE, funnel_id, persons[-1])
        m.FUNNEL_BACKFILL_PERSONS.inc(len(persons))
        return True


async def backfill_pending(pool: asyncpg.Pool, chunk_persons: int = 1000) -> int:
    """Run chunks until no funnel is backfilling (or only ones another process walks)."""
    chunks = 0
    while await backfill_chunk(pool, chunk_persons):
        chunks += 1
    return chunks


async def backfill_forever(pool: asyncpg.Pool, poll_seconds: float = 1.0) -> None:
    """The metrics service's background task: backfill new funnels as they appear."""
    while True:
        try:
            started = time.perf_counter()
            chunks = await backfill_pending(pool)
            if chunks:
                seconds = round(time.perf_counter() - started, 3)
                log.info("funnel_backfill_ran", chunks=chunks, seconds=seconds)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("funnel_backfill_failed", error=str(exc))
        await asyncio.sleep(poll_seconds)
