"""The live view: persons active in the last 5 and 30 minutes, events per minute for the hour.

By event time (SPEC §4 counts by event time everywhere): an offline device's old events that
arrive now do not make its person "active now". Read from the archive of active events, which
the metrics service writes in each batch's transaction, so the view is as fresh as the
pipeline (well under a second behind with the default batch settings). Events stamped after
`now` (device clocks within the accepted 24 h) are not counted until their time comes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PERSONS_SQL = text(
    """
WITH t AS (SELECT CAST(:now AS timestamptz) AS now)
SELECT count(DISTINCT i.person_id) FILTER (WHERE a.ts > t.now - interval '5 minutes') AS p5,
       count(DISTINCT i.person_id) AS p30
FROM t, active_events a
JOIN identities i ON i.project_id = a.project_id AND i.distinct_id = a.distinct_id
WHERE a.project_id = :project AND a.ts > t.now - interval '30 minutes' AND a.ts <= t.now
"""
)

MINUTES_SQL = text(
    """
SELECT date_trunc('minute', ts) AS minute, count(*) AS events
FROM active_events
WHERE project_id = :project AND ts >= :first AND ts <= :now
GROUP BY 1
"""
)


class LiveMinute(BaseModel):
    minute: datetime  # the minute's start, UTC
    events: int


class Live(BaseModel):
    as_of: datetime
    persons_5m: int  # distinct persons with an active event in (as_of - 5 min, as_of]
    persons_30m: int
    minutes: list[LiveMinute]  # the 60 minutes up to as_of, oldest first; the last is partial


async def read_live(conn: AsyncConnection, project_id: int, now: datetime) -> Live:
    persons = (await conn.execute(PERSONS_SQL, {"project": project_id, "now": now})).one()
    last = now.replace(second=0, microsecond=0)
    first = last - timedelta(minutes=59)
    rows = await conn.execute(MINUTES_SQL, {"project": project_id, "first": first, "now": now})
    counts = {r.minute: r.events for r in rows}
    minutes = [first + timedelta(minutes=k) for k in range(60)]
    return Live(
        as_of=now,
        persons_5m=persons.p5,
        persons_30m=persons.p30,
        minutes=[LiveMinute(minute=m, events=counts.get(m, 0)) for m in minutes],
    )
