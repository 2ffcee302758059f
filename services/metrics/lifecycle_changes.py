"""Keeps `lifecycle_value_changes` small for the (project, key) pairs nobody reads split.

Every statement that adds or removes a key's `person_day_values` rows notes the days it changed
(migration 0028), so that a `/v1/lifecycle?breakdown=` read recomputes only the periods they
touch; that read prunes its own pair's notes. A pair nobody reads would gather a few notes per
batch for ever, so this task prunes every pair that has notes once a minute, each in a
transaction of its own (`lifecycle_values_prune` holds the pair's lock until its commit; a pair
a read holds is skipped, and that read prunes it).
"""

from __future__ import annotations

import asyncpg

from services.metrics.walk import pending_forever

PRUNE_EVERY_SECONDS = 60.0

PAIRS = "SELECT DISTINCT project_id, key FROM lifecycle_value_changes ORDER BY 1, 2"
PRUNE = "SELECT lifecycle_values_prune($1, $2)"


async def prune_once(pool: asyncpg.Pool) -> int:
    """Prune every pair with notes; how many were pruned (the others were being read)."""
    pruned = 0
    async with pool.acquire() as conn:
        for project_id, key in await conn.fetch(PAIRS):
            async with conn.transaction():
                pruned += bool(await conn.fetchval(PRUNE, project_id, key))
    return pruned


async def prune_forever(pool: asyncpg.Pool, every: float = PRUNE_EVERY_SECONDS) -> None:
    """A background task of the metrics service, logged as `lifecycle_changes_prune_ran`
    (`chunks`: the pairs pruned)."""
    await pending_forever("lifecycle_changes_prune", lambda: prune_once(pool), every)
