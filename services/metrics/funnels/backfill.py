"""Backfill: a funnel created now is evaluated over all the history the project has.

Design: the archive of active events in PostgreSQL (`active_events`, one row per deduplicated
event since Pulse started keeping them), not a replay of the Kafka topic: the archive is already
deduplicated, identity-resolved through `identities`, indexed by person, and not subject to the
topic's retention; a replay would re-run dedup and merges and race the live consumer. The walk
goes person by person, a chunk per transaction, and records the last person done in
`funnels.backfill_cursor`, so a restarted service resumes there (services/metrics/walk.py).

New events are applied to a funnel from the moment it exists (maintain.py), so once the walk
ends the funnel is complete and stays current. The only race is a batch that loaded the project's
funnels before this one was created and commits after the walk passed its persons, which the
walk's first chunk rules out; a DELETE of the funnel waits for the chunk in progress.
"""

from __future__ import annotations

import asyncpg

from services.metrics.aggregates.sessions import Person
from services.metrics.funnels.maintain import load_funnels, recompute
from services.metrics.walk import backfill_walk, walk_chunk, walk_forever, walk_pending


async def _redo(conn: asyncpg.Connection, funnel_id: int, people: list[Person]) -> None:
    funnels = await load_funnels(conn, sorted({p for p, _ in people}), only=funnel_id)
    await recompute(conn, funnels, dict.fromkeys(people))


BACKFILL = backfill_walk("funnel_backfill", "funnels", _redo)


async def backfill_chunk(pool: asyncpg.Pool, chunk_persons: int = 1000) -> bool:
    """Walk the next chunk of persons of one running funnel; False when none is running."""
    return await walk_chunk(pool, BACKFILL, chunk_persons) is not None


async def backfill_pending(pool: asyncpg.Pool, chunk_persons: int = 1000) -> int:
    """Run chunks until no funnel is backfilling (or only ones another process walks)."""
    return await walk_pending(pool, BACKFILL, chunk_persons)


async def backfill_forever(pool: asyncpg.Pool, poll_seconds: float = 1.0) -> None:
    """The metrics service's background task: backfill new funnels as they appear."""
    await walk_forever(pool, BACKFILL, poll_seconds)
