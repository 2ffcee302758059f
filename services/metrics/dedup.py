"""The dedup memory's horizon: (project, messageId) pairs are kept PULSE_DEDUP_DAYS, then pruned.

A redelivery within the horizon (client retries, duplicate sends) counts once; one arriving later
than that would count again, as with Segment's own dedup window. Pruning runs beside the consumer
in small chunks, outside its transactions, so it never holds up a batch for long.
"""

from __future__ import annotations

import asyncio

import asyncpg

from services.common.logging import get_logger
from services.common.settings import MetricsSettings

log = get_logger(__name__)

PRUNE_CHUNK = """
DELETE FROM seen_messages WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM seen_messages
    WHERE received_at < now() - make_interval(days => $1)
    LIMIT 10000
))
"""


async def prune_once(pool: asyncpg.Pool, days: int) -> int:
    pruned = 0
    while True:
        status = await pool.execute(PRUNE_CHUNK, days)
        deleted = int(status.split()[-1])
        pruned += deleted
        if deleted == 0:
            return pruned


async def prune_seen_messages(pool: asyncpg.Pool, settings: MetricsSettings) -> None:
    while True:
        try:
            pruned = await prune_once(pool, settings.dedup_days)
            if pruned:
                log.info("dedup_pruned", messages=pruned, older_than_days=settings.dedup_days)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("dedup_prune_failed", error=str(exc))
        await asyncio.sleep(settings.dedup_prune_seconds)
