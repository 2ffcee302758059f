"""Rebuild: after a project's session settings change, every session of it is recomputed.

A new timeout or cap changes every session, so each person's sessions are recomputed over their
whole history from the archive of active events (`active_events` through `identities`), as an
identity merge does (aggregates/sessions.py). The walk follows the funnel backfill
(funnels/backfill.py): person by person (labels are the `identities` rows with person_id =
distinct_id), a chunk of persons per transaction under their person locks, the last person done
in `projects.sessions_rebuild_cursor`, so a restarted service resumes there, and `sessions_rebuild`
set to 'complete' at the end.

Batches read the settings in their own window statement, so a batch that starts after the
change cuts with the new ones; only a batch that read the old ones and commits after the walk
passed its persons could leave old-style sessions behind. The first chunk therefore takes the
project's lock exclusively, which waits for every batch in flight (they hold it shared): every
later batch uses the new settings. Until the walk reaches a person, a batch may recompute their
window against sessions cut with the old settings, which is why the whole history is redone for
every person, those a batch already touched included. Persons created behind the cursor are
cut with the new settings from their first event; a merge redoes the survivor's whole history.

The chunk locks the project row FOR NO KEY UPDATE SKIP LOCKED: two metrics processes never walk
one project at once, and a settings change (an UPDATE of the row) waits for the chunk, then
restarts the walk from the first person (cursor NULL) with the new settings.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from services.common.logging import get_logger
from services.metrics.aggregates.sessions import lock_persons, recompute_persons

log = get_logger(__name__)

NEXT_RUNNING = """
SELECT id, sessions_rebuild_cursor FROM projects
WHERE sessions_rebuild = 'running'
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

ADVANCE = "UPDATE projects SET sessions_rebuild_cursor = $2 WHERE id = $1"
COMPLETE = """
UPDATE projects
SET sessions_rebuild = 'complete', sessions_rebuild_cursor = $2, sessions_rebuild_done_at = now()
WHERE id = $1
"""


async def rebuild_chunk(pool: asyncpg.Pool, chunk_persons: int = 1000) -> bool:
    """Rebuild the sessions of the next chunk of persons of one project whose settings changed;
    False when no project needs it (or only ones another process walks)."""
    async with pool.acquire() as conn, conn.transaction():
        project = await conn.fetchrow(NEXT_RUNNING)
        if project is None:
            return False
        project_id, cursor = project
        await conn.execute(LOCK_PROJECT if cursor is None else LOCK_PROJECT_SHARED, project_id)
        persons = [r[0] for r in await conn.fetch(NEXT_PERSONS, project_id, cursor, chunk_persons)]
        if persons:
            people = [(project_id, p) for p in persons]
            await lock_persons(conn, people)
            await recompute_persons(conn, people)
        if len(persons) < chunk_persons:
            await conn.execute(COMPLETE, project_id, persons[-1] if persons else cursor)
            log.info("sessions_rebuilt", project=project_id)
        else:
            await conn.execute(ADVANCE, project_id, persons[-1])
        return True


async def rebuild_pending(pool: asyncpg.Pool, chunk_persons: int = 1000) -> int:
    """Run chunks until no project's sessions need a rebuild (or only ones another process
    walks); the number of chunks run."""
    chunks = 0
    while await rebuild_chunk(pool, chunk_persons):
        chunks += 1
    return chunks


async def rebuild_forever(pool: asyncpg.Pool, poll_seconds: float = 1.0) -> None:
    """The metrics service's background task: rebuild sessions as settings change."""
    while True:
        try:
            started = time.perf_counter()
            chunks = await rebuild_pending(pool)
            if chunks:
                seconds = round(time.perf_counter() - started, 3)
                log.info("sessions_rebuild_ran", chunks=chunks, seconds=seconds)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("sessions_rebuild_failed", error=str(exc))
        await asyncio.sleep(poll_seconds)
