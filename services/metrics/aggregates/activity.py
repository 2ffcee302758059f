"""Daily activity per person (and per event name), and each person's first active day.

Days are in the project's timezone (SQL `AT TIME ZONE`), so the same instant can fall on different
dates for different projects. Rows are written in key order so concurrent consumers after a
rebalance take row locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.common.events import ACTIVE_TYPES, EventRecord
from services.metrics.aggregates.identity import actor
from services.metrics.aggregates.rollup import add_batch

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

UPSERT_PERSON_EVENT_DAYS = """
INSERT INTO person_event_days (project_id, day, event, person_id, events)
SELECT e.project_id, (e.ts AT TIME ZONE p.timezone)::date AS day, e.event, e.person_id, count(*)
FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::text[])
     AS e(project_id, person_id, ts, event)
JOIN projects p ON p.id = e.project_id
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, day, event, person_id)
DO UPDATE SET events = person_event_days.events + excluded.events
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


def event_name(event: EventRecord) -> str:
    """Track events by name; page/screen views by their name, else by their type."""
    if event.type == "track":
        return event.event or ""
    return event.event or f"${event.type}"


async def apply_activity(
    conn: asyncpg.Connection, events: Sequence[EventRecord], people: dict[tuple[int, str], str]
) -> None:
    """Add new (already deduplicated) events to the activity aggregates, under their person."""
    active = [e for e in events if e.type in ACTIVE_TYPES]
    if not active:
        return
    columns = (
        [e.project_id for e in active],
        [people[(e.project_id, actor(e))] for e in active],
        [e.timestamp for e in active],
    )
    await add_batch(conn, *columns)  # reads the rows as they were before this batch
    await conn.execute(UPSERT_PERSON_DAYS, *columns)
    await conn.execute(UPSERT_PERSON_EVENT_DAYS, *columns, [event_name(e) for e in active])
    await conn.execute(UPSERT_FIRST_DAYS, *columns)
