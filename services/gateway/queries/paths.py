"""Paths (SPEC §4): the most common events after a start event, or before a target event.

Computed at read time from the archive of active events (`active_events` joined to
`identities`), so it reads every event row of the queried range: cost grows with the range.
Per person, over their active events whose day (project timezone) is in the range, ordered by
time then event name (code point order: collation "C"), with consecutive repeats of one event
collapsed into one step: anchor at the person's first `start_event` and follow the next `depth`
events (or anchor at their first `end_event` and go back `depth` events). Edge `step` k joins
the events k-1 and k steps from the anchor; `persons` counts persons, each at most once per
step. Per step, the `limit` edges with the most persons (ties by names) are returned.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Direction = Literal["after", "before"]

# :after is true for paths from the anchor onward, false for paths leading to it.
PATHS_SQL = text(
    """
WITH ev AS (
    SELECT i.person_id, a.ts, a.event,
           lag(a.event) OVER (PARTITION BY i.person_id ORDER BY a.ts, a.event COLLATE "C")
               AS prev
    FROM active_events a
    JOIN identities i ON i.project_id = a.project_id AND i.distinct_id = a.distinct_id
    WHERE a.project_id = :project AND a.ts >= :lo AND a.ts < :hi
),
steps AS (
    SELECT person_id, event,
           row_number() OVER (PARTITION BY person_id ORDER BY ts, event COLLATE "C") AS n
    FROM ev WHERE prev IS DISTINCT FROM event
),
anchor AS (
    SELECT person_id, min(n) AS n0 FROM steps WHERE event = :anchor GROUP BY person_id
),
near AS (
    SELECT s.person_id, s.event,
           CASE WHEN :after THEN s.n - a.n0 ELSE a.n0 - s.n END AS k
    FROM steps s JOIN anchor a ON a.person_id = s.person_id
    WHERE s.n BETWEEN a.n0 - CASE WHEN :after THEN 0 ELSE :depth END
                  AND a.n0 + CASE WHEN :after THEN :depth ELSE 0 END
),
-- A person's k run 0..depth without gaps: the event one step closer to the anchor is the
-- previous row by k (a window, not a self-join of `near`, whose plan could go quadratic).
linked AS (
    SELECT person_id, event, k,
           lag(event) OVER (PARTITION BY person_id ORDER BY k) AS closer
    FROM near
),
edges AS (
    SELECT k AS step,
           CASE WHEN :after THEN closer ELSE event END AS source,
           CASE WHEN :after THEN event ELSE closer END AS target,
           count(*) AS persons
    FROM linked WHERE k >= 1
    GROUP BY 1, 2, 3
),
ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY step ORDER BY persons DESC, source COLLATE "C", target COLLATE "C"
    ) AS r
    FROM edges
)
SELECT step, source, target, persons FROM ranked WHERE r <= :limit
ORDER BY step, persons DESC, source COLLATE "C", target COLLATE "C"
"""
)


class PathEdge(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    from_: str = Field(serialization_alias="from")
    to: str
    step: int
    persons: int


def day_bounds(start: date, stop: date, timezone: str) -> tuple[datetime, datetime]:
    """[first midnight, midnight after the last day) of a date range in the project's timezone."""
    zone = ZoneInfo(timezone)
    return (
        datetime.combine(start, time(), tzinfo=zone),
        datetime.combine(stop + timedelta(days=1), time(), tzinfo=zone),
    )


async def read_paths(
    conn: AsyncConnection,
    project_id: int,
    bounds: tuple[datetime, datetime],
    anchor: str,
    direction: Direction,
    depth: int,
    limit: int,
) -> list[PathEdge]:
    rows = await conn.execute(
        PATHS_SQL,
        {
            "project": project_id,
            "lo": bounds[0],
            "hi": bounds[1],
            "anchor": anchor,
            "after": direction == "after",
            "depth": depth,
            "limit": limit,
        },
    )
    return [PathEdge(from_=r.source, to=r.target, step=r.step, persons=r.persons) for r in rows]
