"""Paths (SPEC §4): the most common events after a start event, or before a target event.

Per person, over their active events whose day (project timezone) is in the range, ordered by
time then event name (code point order: collation "C"), with consecutive repeats of one event
collapsed into one step: anchor at the person's first `start_event` and follow the next `depth`
events (or anchor at their first `end_event` and go back `depth` events). Edge `step` k joins
the events k-1 and k steps from the anchor; `persons` counts persons, each at most once per
step. Per step, the `limit` edges with the most persons (ties by names) are returned.

Read from `path_edges`, which the metrics service keeps (services/metrics/aggregates/paths.py
says why a range's paths are a sum of its rows), events by their `event_names` ids: the
anchor's rows that count for ranges starting at `from` (prev_day < from <= last_start) and whose
step lies before the range's end (step_day <= to). The cost grows with the variety of paths and
days, not with the events.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Direction = Literal["after", "before"]

PATHS_SQL = text(
    """
WITH edges AS (
    SELECT step, source_id, target_id, sum(persons) AS persons
    FROM path_edges
    WHERE project_id = :project AND after = :after
      AND anchor_id = (SELECT id FROM event_names WHERE name = :anchor)
      -- One stretch of the key per step (migration 0014). last_start <= step_day always: the
      -- upper bound only narrows the stretches scanned.
      AND step = ANY(:steps)
      AND last_start BETWEEN :start AND :stop AND prev_day < :start AND step_day <= :stop
    GROUP BY 1, 2, 3
),
ranked AS (
    SELECT e.step, s.name AS source, t.name AS target, e.persons, row_number() OVER (
        PARTITION BY e.step ORDER BY e.persons DESC, s.name COLLATE "C", t.name COLLATE "C"
    ) AS r
    FROM edges e
    JOIN event_names s ON s.id = e.source_id
    JOIN event_names t ON t.id = e.target_id
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


async def read_paths(
    conn: AsyncConnection,
    project_id: int,
    start: date,
    stop: date,
    anchor: str,
    direction: Direction,
    depth: int,
    limit: int,
) -> list[PathEdge]:
    rows = await conn.execute(
        PATHS_SQL,
        {
            "project": project_id,
            "start": start,
            "stop": stop,
            "anchor": anchor,
            "after": direction == "after",
            "steps": list(range(1, depth + 1)),
            "limit": limit,
        },
    )
    return [PathEdge(from_=r.source, to=r.target, step=r.step, persons=r.persons) for r in rows]
