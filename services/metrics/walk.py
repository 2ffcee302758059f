"""A resumable walk over a project's persons, redoing something of each from the archive.

Two background jobs of the metrics service need one: backfilling a new funnel
(funnels/backfill.py) and rebuilding a project's sessions after its settings changed
(sessions_rebuild.py). A walk goes person by person (a person's label is their smallest
distinct id, so labels are the `identities` rows with person_id = distinct_id), a chunk of
persons per transaction under their person locks, and records the last person done in a cursor
column, so a restarted service resumes there.

Each job's "running" row is locked FOR NO KEY UPDATE SKIP LOCKED by the chunk: two metrics
processes never walk one job at once, and a change of the row (a DELETE of a funnel, new session
settings) waits for the chunk. The first chunk takes the project's lock exclusively, which waits
for every batch in flight (they hold it shared): a batch that read the state from before the
job started cannot commit behind the walk's back, and every later batch sees the job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from services.common.db import PROJECT_LOCK_CLASS
from services.common.logging import get_logger
from services.metrics import metric_defs as m
from services.metrics.aggregates.sessions import Person, lock_persons

log = get_logger(__name__)

NEXT_PERSONS = """
SELECT distinct_id FROM identities
WHERE project_id = $1 AND distinct_id = person_id AND ($2::text IS NULL OR distinct_id > $2)
ORDER BY distinct_id LIMIT $3
"""

LOCK_PROJECT = f"SELECT pg_advisory_xact_lock({PROJECT_LOCK_CLASS}, $1)"
LOCK_PROJECT_SHARED = f"SELECT pg_advisory_xact_lock_shared({PROJECT_LOCK_CLASS}, $1)"


@dataclass(frozen=True)
class Walk:
    name: str  # in logs
    # -> (job id, project id, cursor) of one running job, locked FOR NO KEY UPDATE SKIP LOCKED
    next_running: str
    advance: str  # ($1 job id, $2 cursor)
    complete: str  # ($1 job id, $2 cursor): the job is done
    # Redo the job's rows of these persons (locked, in the chunk's transaction).
    redo: Callable[[asyncpg.Connection, int, list[Person]], Awaitable[None]]


def backfill_walk(
    name: str,
    table: str,
    redo: Callable[[asyncpg.Connection, int, list[Person]], Awaitable[None]],
) -> Walk:
    """The walk of a table whose rows are backfill jobs: `id`, `project_id`, and `backfill`
    ('running' until done), `backfill_cursor`, `backfill_done_at` (funnels, breakdown_keys)."""
    return Walk(
        name=name,
        next_running=f"""
SELECT id, project_id, backfill_cursor FROM {table}
WHERE backfill = 'running'
ORDER BY id LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
""",
        advance=f"UPDATE {table} SET backfill_cursor = $2 WHERE id = $1",
        complete=f"""
UPDATE {table} SET backfill = 'complete', backfill_cursor = $2, backfill_done_at = now()
WHERE id = $1
""",
        redo=redo,
    )


async def walk_chunk(pool: asyncpg.Pool, walk: Walk, chunk_persons: int = 1000) -> int | None:
    """Walk the next chunk of persons of one running job: how many, or None when none runs."""
    async with pool.acquire() as conn, conn.transaction():
        job = await conn.fetchrow(walk.next_running)
        if job is None:
            return None
        job_id, project_id, cursor = job
        await conn.execute(LOCK_PROJECT if cursor is None else LOCK_PROJECT_SHARED, project_id)
        persons = [r[0] for r in await conn.fetch(NEXT_PERSONS, project_id, cursor, chunk_persons)]
        if persons:
            people = [(project_id, p) for p in persons]
            await lock_persons(conn, people)
            await walk.redo(conn, job_id, people)
            m.WALKED_PERSONS.labels(walk.name).inc(len(persons))
        if len(persons) < chunk_persons:
            await conn.execute(walk.complete, job_id, persons[-1] if persons else cursor)
            log.info(f"{walk.name}_done", job=job_id, project=project_id)
        else:
            await conn.execute(walk.advance, job_id, persons[-1])
        return len(persons)


async def run_chunks(chunk: Callable[[], Awaitable[object | None]]) -> int:
    """Run `chunk` until it finds nothing to do (None); how many chunks ran."""
    chunks = 0
    while await chunk() is not None:
        chunks += 1
    return chunks


async def walk_pending(pool: asyncpg.Pool, walk: Walk, chunk_persons: int = 1000) -> int:
    """Run chunks until no job runs (or only ones another process walks); the chunks run."""
    return await run_chunks(lambda: walk_chunk(pool, walk, chunk_persons))


async def walk_forever(pool: asyncpg.Pool, walk: Walk, poll_seconds: float = 1.0) -> None:
    """A background task of the metrics service: walk jobs as they appear."""
    await pending_forever(walk.name, lambda: walk_pending(pool, walk), poll_seconds)


async def pending_forever(
    name: str, run_pending: Callable[[], Awaitable[int]], poll_seconds: float = 1.0
) -> None:
    """Run the chunks of a background job's pending work (`run_pending`: how many ran) every
    `poll_seconds`, logged as `{name}_ran`; an unreachable PostgreSQL is logged and retried."""
    while True:
        try:
            started = time.perf_counter()
            chunks = await run_pending()
            if chunks:
                seconds = round(time.perf_counter() - started, 3)
                log.info(f"{name}_ran", chunks=chunks, seconds=seconds)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning(f"{name}_failed", error=str(exc))
        await asyncio.sleep(poll_seconds)
