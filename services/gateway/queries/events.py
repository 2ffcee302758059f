"""Top events over a date range: active events by name, with counts and distinct persons."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

EVENTS_SQL = text(
    """
SELECT event, sum(events) AS count, count(DISTINCT person_id) AS persons
FROM person_event_days
WHERE project_id = :project AND day BETWEEN :start AND :stop
GROUP BY event
ORDER BY count DESC, event
LIMIT :limit
"""
)


class EventCount(BaseModel):
    event: str
    count: int
    persons: int


async def read_events(
    conn: AsyncConnection, project_id: int, start: date, stop: date, limit: int
) -> list[EventCount]:
    rows = await conn.execute(
        EVENTS_SQL, {"project": project_id, "start": start, "stop": stop, "limit": limit}
    )
    return [EventCount(event=r.event, count=r.count, persons=r.persons) for r in rows]
