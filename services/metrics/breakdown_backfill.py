"""Backfill: a breakdown key tracked from now on is filled in over the history before it.

A metrics service whose PULSE_BREAKDOWN_KEYS gained a key adds it to every project when it
starts, and to a project created later on its first batch (store.py), as a `breakdown_keys` row:
`backfill = 'running'` when events of the project were processed before, 'complete' for a project
that has none. Every batch keeps the key's `person_day_values` from then on; the history before
has none. A key no longer in PULSE_BREAKDOWN_KEYS loses its rows and its values at the start, so
tracking it again later fills in the whole history again.

This walk (services/metrics/walk.py, as a funnel's backfill) recomputes the key's values of every
person from the archive of active events and the identify traits in `trait_changes`, which keeps
every key (aggregates/traits.py), a chunk of persons per transaction, the last person done in
`backfill_cursor`, then sets 'complete'.

Recomputing a person replaces all their values of the key, so it does not matter whether a batch
already counted some of their events. The walk's first chunk takes the project's lock
exclusively: the batch that added the key, and any other in flight, has committed before the
walk reads anyone. A person created behind the cursor is counted by the batches from their first
event. The gateway reports a breakdown's `backfill` from the row.

Exact for what was kept: event properties and SDK traits are in the archive; identify traits
sent before migration 0018 were kept only for the keys tracked then. Every replica of the metrics
service must track the same keys: one still running without a new key would go on committing
batches without its values after the walk passed their persons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import asyncpg

from services.common.logging import get_logger
from services.metrics.aggregates import traits
from services.metrics.aggregates.sessions import Person
from services.metrics.store import REGISTER_KEYS
from services.metrics.walk import backfill_walk, walk_forever

log = get_logger(__name__)

DROP_UNTRACKED = """
DELETE FROM breakdown_keys WHERE key <> ALL($1::text[])
RETURNING project_id, key
"""
# A dropped key's values, found by the primary key's (project_id, key) prefix. Tracking the key
# again later recomputes every person's values from the archive anyway (a 'running' walk).
DROP_VALUES = "DELETE FROM person_day_values WHERE project_id = $1 AND key = $2"

KEY_AND_ZONE = """
SELECT k.key, p.timezone FROM breakdown_keys k JOIN projects p ON p.id = k.project_id
WHERE k.id = $1
"""


async def _redo(conn: asyncpg.Connection, key_id: int, people: list[Person]) -> None:
    key, zone = await conn.fetchrow(KEY_AND_ZONE, key_id)
    project_id = people[0][0]  # a walk's chunk is one project's
    await traits.recompute(conn, dict.fromkeys(people), {project_id: ZoneInfo(zone)}, [key])


BACKFILL = backfill_walk("breakdown_backfill", "breakdown_keys", _redo)


async def track_keys(pool: asyncpg.Pool, keys: Sequence[str]) -> None:
    """Make `keys` the tracked keys of every project: add the missing ones, drop the others
    with their values."""
    async with pool.acquire() as conn, conn.transaction():
        dropped = await conn.fetch(DROP_UNTRACKED, list(keys))
        if dropped:
            await conn.executemany(DROP_VALUES, [(r["project_id"], r["key"]) for r in dropped])
            log.info("breakdown_keys_dropped", keys=sorted({r["key"] for r in dropped}))
        projects = [r[0] for r in await conn.fetch("SELECT id FROM projects ORDER BY id")]
        if projects and keys:
            await conn.execute(REGISTER_KEYS, projects, list(keys))


async def backfill_forever(
    pool: asyncpg.Pool, keys: Sequence[str], poll_seconds: float = 1.0
) -> None:
    """The metrics service's background task: track `keys` in every project (tried again while
    PostgreSQL cannot be reached), then backfill keys as projects gain them."""
    while True:
        try:
            await track_keys(pool, keys)
            break
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("breakdown_keys_failed", error=str(exc))
            await asyncio.sleep(poll_seconds)
    await walk_forever(pool, BACKFILL, poll_seconds)
