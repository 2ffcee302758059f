"""Daily activity: one row per (project, day, person) with its event count, and first active days.

Days are in the project's timezone (SQL `AT TIME ZONE`), so the same instant can fall on different
dates for different projects. Rows are written in key order so concurrent consumers after a
rebalance take row locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.common.events import ACTIVE_TYPES, EventRecord

UPSERT_PERSON_DAYS = """
INSERT INTO person_days (project_id, day, person_id, events)
SELECT e.project_id, (e.ts AT TIME ZONE p.timezone)::date AS day, e.person_id, count(*)
FROM unnest($1::int[], $2::text[], $3::timestamptz[]) AS e(project_id, person_id, ts)
JOIN projects p ON p.id = e.project_id
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (project_id, day, person_id)
DO UPDATE SET events = person_days.events + excluded.events
"""

# A late event can move a person's first day earlier; it never moves later.
UPSERT_FIRST_DAYS = """
INSERT INTO persons (project_id, person_id, first_day)
SELECT e.project_id, e.person_id, min((e.ts AT TIME ZONE p.timezone)::date)
FROM unnest($1::int[], $2::text[], $3::timestamptz[]) AS e(project_id, person_id, ts)
JOIN projects p ON p.id = e.project_id
GROUP BY 1, 2
ORDER BY 1, 2
ON CONFLICT (project_id, person_id)
DO UPDATE SET first_day = excluded.first_day
WHERE excluded.first_day < persons.first_day
"""


async def apply_activity(conn: asyncpg.Connection, events: Sequence[EventRecord]) -> None:
    """Add new (already deduplicated) events to the daily activity aggregates."""
    active = [e for e in events if e.type in ACTIVE_TYPES]
    if not active:
        return
    columns = (
        [e.project_id for e in active],
        [e.person_id for e in active],
        [e.timestamp for e in active],
    )
    await conn.execute(UPSERT_PERSON_DAYS, *columns)
    await conn.execute(UPSERT_FIRST_DAYS, *columns)
