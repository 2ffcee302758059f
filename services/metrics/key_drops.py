"""A dropped breakdown key's values, deleted in the background (migration 0022).

Dropping a key (`DELETE /v1/breakdowns/{key}`, or a configured key no longer listed when the
service starts) deletes its `breakdown_keys` row and lists the pair in `breakdown_key_drops`, in
one transaction: no batch, read or walk sees the key from then on. Its `person_day_values` can
be millions of rows (one per person, day and value), more than one statement should delete
inside a request's statement timeout, so this task deletes them a chunk per transaction
(`drop_breakdown_values`, which deletes the key's per-value rollup rows with them), and removes
the pair with the last chunk.

Each chunk takes the project's lock exclusively, after the pair's row (the order a walk's chunk
takes its job row and the lock in): no batch of the project runs beside it. Between chunks a
merge may still move the key's rows to a survivor, and a batch's sessions may still join them
into the rollups (whose rows of the key, no longer the image of its values once a chunk has
deleted them, no read can reach); the next chunks delete by (project, key) until nothing is
left, and the last chunk, which finds fewer rows than it may delete, leaves none.

Until the pair is gone the key cannot be tracked again in that project (the gateway answers 409,
REGISTER_KEYS skips it): the values of the new tracking would meet the old ones being deleted. A
configured key listed again meanwhile is added back by the last chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.common.logging import get_logger
from services.metrics.store import REGISTER_KEYS
from services.metrics.walk import LOCK_PROJECT, pending_forever, run_chunks

log = get_logger(__name__)

# Rows of `person_day_values` per chunk. A key of 1M rows (40,000 persons, 25 days) went in 21
# chunks, 21.5 s in all, the longest 4.1 s: far inside the 30 s statement timeout, and the
# project's batches wait for one chunk at a time.
CHUNK_ROWS = 50_000

NEXT_DROP = """
SELECT id, project_id, key FROM breakdown_key_drops
ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED
"""
DROP_CHUNK = "SELECT drop_breakdown_values($1, $2, $3)"
DONE = "DELETE FROM breakdown_key_drops WHERE id = $1"


async def drop_chunk(pool: asyncpg.Pool, keys: Sequence[str], rows: int = CHUNK_ROWS) -> int | None:
    """Delete a chunk of one dropped key's values: how many, or None when no drop is pending
    (or only ones another process works on). `keys`: this service's PULSE_BREAKDOWN_KEYS."""
    async with pool.acquire() as conn, conn.transaction():
        job = await conn.fetchrow(NEXT_DROP)
        if job is None:
            return None
        job_id, project_id, key = job
        await conn.execute(LOCK_PROJECT, project_id)
        dropped: int = await conn.fetchval(DROP_CHUNK, project_id, key, rows)
        if dropped < rows:
            await conn.execute(DONE, job_id)
            if key in keys:  # listed again since it was dropped: tracked again, backfilled
                await conn.execute(REGISTER_KEYS, [project_id], [key])
            log.info("breakdown_values_dropped", project=project_id, key=key)
        return dropped


async def drop_pending(pool: asyncpg.Pool, keys: Sequence[str], rows: int = CHUNK_ROWS) -> int:
    """Run chunks until no drop is pending (or only ones another process works on); the
    chunks run."""
    return await run_chunks(lambda: drop_chunk(pool, keys, rows))


async def drop_forever(pool: asyncpg.Pool, keys: Sequence[str], poll_seconds: float = 1.0) -> None:
    """A background task of the metrics service: drop keys' values as keys are dropped."""
    await pending_forever("breakdown_drops", lambda: drop_pending(pool, keys), poll_seconds)
