"""Backfill: a breakdown key tracked from now on is filled in over the history before it.

A project's tracked keys are its `breakdown_keys` rows, which every batch reads (store.py):
- the keys of PULSE_BREAKDOWN_KEYS (`configured`): a metrics service adds them to every project
  when it starts, and to a project created later on its first batch. The configured keys no
  longer listed lose their rows at the start, and their values in the background
  (key_drops.py), so tracking one again later fills in the whole history again;
- a project's own keys: `POST /v1/breakdowns` adds one, `DELETE /v1/breakdowns/{key}` drops it
  and its values the same way (the gateway).
A key starts `backfill = 'running'` when events of the project were processed before, else
'complete'. Every batch from then on keeps its `person_day_values`; the history before has none.

This walk (services/metrics/walk.py, as a funnel's backfill) recomputes the key's values of every
person from the archive of active events and the identify traits in `trait_changes`, which keeps
every key (aggregates/traits.py), a chunk of persons per transaction, the last person done in
`backfill_cursor`, then sets 'complete'.

Recomputing a person replaces all their values of the key, so it does not matter whether a batch
already counted some of their events. The walk's first chunk takes the project's lock
exclusively: every batch that read the project's keys before the key was added has committed
before the walk reads anyone, and every later batch keeps the key. A person created behind the
cursor is counted by the batches from their first event. The gateway reports a breakdown's
`backfill` from the row.

Exact for what was kept: event properties and SDK traits are in the archive; identify traits
sent before migration 0018 were kept only for the keys tracked then.
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
from services.metrics.walk import LOCK_PROJECT, backfill_walk, walk_forever

log = get_logger(__name__)

# A key's row is deleted first, then its project is locked: the order a walk's chunk takes them
# in (walk.py), so that a chunk on the key and this wait for each other without a cycle.
DROP_UNLISTED = """
DELETE FROM breakdown_keys WHERE configured AND key <> ALL($1::text[])
RETURNING project_id, key
"""
# A dropped key's values, deleted in the background (key_drops.py) once no batch writes them
# (the project's lock, taken exclusively, waits for the batches in flight). Tracking the key
# again later recomputes every person's values from the archive anyway.
QUEUE_DROP = """
INSERT INTO breakdown_key_drops (project_id, key) VALUES ($1, $2)
ON CONFLICT (project_id, key) DO NOTHING
"""
# A key a project added itself (POST /v1/breakdowns) that is listed now stays, configured.
MARK_CONFIGURED = """
UPDATE breakdown_keys SET configured = true WHERE key = ANY($1::text[]) AND NOT configured
"""

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
    """Make `keys` the configured keys of every project: add the missing ones, drop the other
    configured ones with their values (the keys projects added themselves stay)."""
    async with pool.acquire() as conn, conn.transaction():
        dropped = sorted((r["project_id"], r["key"]) for r in await conn.fetch(DROP_UNLISTED, keys))
        await conn.execute(MARK_CONFIGURED, list(keys))
        # Row locks all taken: now the projects' locks (see DROP_UNLISTED).
        for project_id in sorted({project_id for project_id, _ in dropped}):
            await conn.execute(LOCK_PROJECT, project_id)
        if dropped:
            await conn.executemany(QUEUE_DROP, dropped)
            log.info("breakdown_keys_dropped", keys=sorted({key for _, key in dropped}))
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
