"""The dedup memory keeps (project, messageId) for PULSE_DEDUP_DAYS and prunes what is older."""

from __future__ import annotations

import uuid

import asyncpg

from services.metrics.dedup import prune_once


async def test_prune_drops_only_messages_older_than_the_horizon(
    stack_env: dict[str, str],
) -> None:
    conn = await asyncpg.connect(stack_env["DATABASE_URL"])
    try:
        project = 2_000_000 + uuid.uuid4().int % 1_000_000
        await conn.execute(
            "INSERT INTO seen_messages (project_id, message_id, received_at) VALUES "
            "($1, 'old', now() - interval '8 days'), ($1, 'edge', now() - interval '6 days'), "
            "($1, 'new', now())",
            project,
        )
        pool = await asyncpg.create_pool(stack_env["DATABASE_URL"])
        try:
            assert await prune_once(pool, 7) >= 1
        finally:
            await pool.close()
        left = await conn.fetch(
            "SELECT message_id FROM seen_messages WHERE project_id = $1 ORDER BY 1", project
        )
        assert [r["message_id"] for r in left] == ["edge", "new"]
    finally:
        await conn.close()
