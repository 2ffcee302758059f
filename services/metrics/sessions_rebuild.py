"""Rebuild: after a project's session settings change, every session of it is recomputed.

A new timeout or cap changes every session, so each person's sessions are recomputed over their
whole history from the archive of active events (`active_events` through `identities`), as an
identity merge does (aggregates/sessions.py). The walk is the funnel backfill's
(services/metrics/walk.py): a chunk of persons per transaction, the last person done in
`projects.sessions_rebuild_cursor`, so a restarted service resumes there, and `sessions_rebuild`
set to 'complete' at the end.

Batches read the settings in their own window statement, so a batch that starts after the
change cuts with the new ones; only a batch that read the old ones and commits after the walk
passed its persons could leave old-style sessions behind. The first chunk therefore takes the
project's lock exclusively, which waits for every batch in flight (they hold it shared): every
later batch uses the new settings. Until the walk reaches a person, a batch may recompute their
window against sessions cut with the old settings, which is why the whole history is redone for
every person, those a batch already touched included. Persons created behind the cursor are
cut with the new settings from their first event; a merge redoes the survivor's whole history.

A settings change (an UPDATE of the project row, which the chunk holds) waits for the chunk in
progress, then restarts the walk from the first person (cursor NULL) with the new settings.
"""

from __future__ import annotations

import asyncpg

from services.metrics.aggregates.sessions import Person, recompute_persons
from services.metrics.walk import Walk, walk_chunk, walk_forever, walk_pending


async def _redo(conn: asyncpg.Connection, project_id: int, people: list[Person]) -> None:
    await recompute_persons(conn, people)


REBUILD = Walk(
    name="sessions_rebuild",
    next_running="""
SELECT id, id, sessions_rebuild_cursor FROM projects
WHERE sessions_rebuild = 'running'
ORDER BY id LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
""",
    advance="UPDATE projects SET sessions_rebuild_cursor = $2 WHERE id = $1",
    complete="""
UPDATE projects
SET sessions_rebuild = 'complete', sessions_rebuild_cursor = $2, sessions_rebuild_done_at = now()
WHERE id = $1
""",
    redo=_redo,
)


async def rebuild_chunk(pool: asyncpg.Pool, chunk_persons: int = 1000) -> bool:
    """Rebuild the sessions of the next chunk of persons of one project whose settings changed;
    False when no project needs it (or only ones another process walks)."""
    return await walk_chunk(pool, REBUILD, chunk_persons) is not None


async def rebuild_pending(pool: asyncpg.Pool, chunk_persons: int = 1000) -> int:
    """Run chunks until no project's sessions need a rebuild; the number of chunks run."""
    return await walk_pending(pool, REBUILD, chunk_persons)


async def rebuild_forever(pool: asyncpg.Pool, poll_seconds: float = 1.0) -> None:
    """The metrics service's background task: rebuild sessions as settings change."""
    await walk_forever(pool, REBUILD, poll_seconds)
