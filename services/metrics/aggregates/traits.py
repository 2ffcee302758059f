"""Breakdown values "as of the event" (SPEC §4 Breakdowns), identify traits included.

An active event's value for a key its project tracks is its own property, else the trait its
SDK attached in `context.traits` (EventRecord.props merges them; the archive keeps the merge),
else the trait its person's latest `identify` set at or before it — over all the person's
distinct ids, so a merge applies a user's traits to their anonymous events from then on too.
Times are compared to the second (rounded half up, as archived); two identifies of one person in
one second that disagree resolve to the larger value, so arrival order never decides. A `null`
or empty trait leaves the previous value in place. An event left without a value counts under
`NO_VALUE` (services/common/values.py), the splits' null group.

`trait_changes` keeps each identify's values under the distinct id that sent it, for every key,
not only the tracked ones: a key tracked later is filled in over the history before it from them
(services/metrics/breakdown_backfill.py). The streaming path looks up, for the events without a
value of their own, their person's value as of their time. A trait change changes the values
of the person's events from its time on, and a merge changes whose changes apply: for the persons
a batch brings either to, `person_day_values` is recomputed from the archive — from the day of
the earliest new change, or over the whole history after a merge (unless none of the merged
person's ids has a trait of a tracked key: then the merge, which moves the person's rows, changed
no value). So any order, duplication or lateness of delivery gives what a full recomputation
gives.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from services.common.events import EventRecord
from services.common.text import MAX_KEY_CHARS
from services.common.values import stored
from services.metrics.plans import custom_plans

Person = tuple[int, str]  # (project_id, person label)

MAX_VALUE_CHARS = 200

RECORD_CHANGES = """
INSERT INTO trait_changes AS c (project_id, distinct_id, key, ts, value)
SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, distinct_id, key, ts) DO UPDATE SET value = excluded.value
WHERE excluded.value > c.value
RETURNING project_id, distinct_id, key, ts
"""

# (project, person, key, second) -> the person's latest value at or before it, if any.
AS_OF = """
SELECT t.i, v.value
FROM unnest($1::int[], $2::int[], $3::text[], $4::text[], $5::timestamptz[])
    AS t(i, project_id, person_id, key, ts)
CROSS JOIN LATERAL (
    SELECT c.value FROM identities d
    JOIN trait_changes c ON c.project_id = d.project_id AND c.distinct_id = d.distinct_id
    WHERE d.project_id = t.project_id AND d.person_id = t.person_id
      AND c.key = t.key AND c.ts <= t.ts
    ORDER BY c.ts DESC, c.value COLLATE "C" DESC  -- the larger by code point, as in Python
    LIMIT 1
) v
"""

HAVE_CHANGES = """
SELECT DISTINCT t.project_id, t.person_id
FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)
JOIN identities d ON d.project_id = t.project_id AND d.person_id = t.person_id
WHERE EXISTS (SELECT 1 FROM trait_changes c
              WHERE c.project_id = d.project_id AND c.distinct_id = d.distinct_id
                AND c.key = ANY($3::text[]))
"""

FETCH_CHANGES = """
SELECT t.project_id, t.person_id, c.key, c.ts, c.value
FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)
JOIN identities d ON d.project_id = t.project_id AND d.person_id = t.person_id
JOIN trait_changes c ON c.project_id = d.project_id AND c.distinct_id = d.distinct_id
WHERE c.key = ANY($3::text[])
ORDER BY 1, 2, 3, 4, 5
"""

FETCH_EVENTS = """
SELECT t.project_id, t.person_id, a.ts, a.props::text
FROM unnest($1::int[], $2::text[], $3::timestamptz[]) AS t(project_id, person_id, lo)
JOIN identities d ON d.project_id = t.project_id AND d.person_id = t.person_id
-- OFFSET 0 and the row comparison: the time bound stays a condition of the (project_id,
-- distinct_id, ts) index scan, as in sessions.py's window statement
CROSS JOIN LATERAL (
    SELECT a.ts, a.props
    FROM active_events a
    WHERE a.project_id = d.project_id AND a.distinct_id = d.distinct_id
      AND (a.distinct_id, a.ts) >= (d.distinct_id, coalesce(t.lo, '-infinity'))
    OFFSET 0
) a
ORDER BY 1, 2
"""

DELETE_VALUES = """
DELETE FROM person_day_values v
USING unnest($1::int[], $2::text[], $3::date[]) AS t(project_id, person_id, lo)
WHERE v.project_id = t.project_id AND v.person_id = t.person_id
  AND v.day >= coalesce(t.lo, '-infinity'::date) AND v.key = ANY($4::text[])
"""

INSERT_VALUES = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::date[], $5::text[], $6::int[])
ORDER BY 1, 2, 3, 4, 5
"""


def value_of(source: Any, key: str) -> str | None:
    """A breakdown value: a non-empty string, a number or a boolean, as text; else none."""
    if not isinstance(source, dict):
        return None
    value = source.get(key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float) and value != "":
        return str(value)[:MAX_VALUE_CHARS]
    return None


HALF_SECOND = timedelta(milliseconds=500)  # made once: a timedelta per call cost a third


def to_second(ts: datetime) -> datetime:
    """Rounded half up to the second, as the archive stores event times."""
    return (ts + HALF_SECOND).replace(microsecond=0)


async def record_changes(
    conn: asyncpg.Connection, events: Sequence[EventRecord]
) -> list[tuple[int, str, str, datetime]]:
    """Keep every trait the batch's identify calls set; return the (project, distinct id, key,
    second) of the changes that are new or changed a value."""
    found: dict[tuple[int, str, str, datetime], str] = {}
    for e in events:
        if e.type != "identify" or not e.traits:
            continue
        at = to_second(e.timestamp)
        for key in e.traits:
            value = value_of(e.traits, key)
            if value is not None and len(key) <= MAX_KEY_CHARS:
                k = (e.project_id, e.distinct_id, key, at)
                found[k] = max(value, found.get(k, value))
    if not found:
        return []
    rows = sorted(found)
    changed = await conn.fetch(
        RECORD_CHANGES,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [found[r] for r in rows],
    )
    return [(r["project_id"], r["distinct_id"], r["key"], r["ts"]) for r in changed]


async def with_changes(
    conn: asyncpg.Connection, persons: Collection[Person], keys: Collection[str]
) -> set[Person]:
    """The persons one of whose ids has an identify trait of one of `keys`."""
    if not persons or not keys:
        return set()
    people = sorted(persons)
    rows = await conn.fetch(
        HAVE_CHANGES, [p[0] for p in people], [p[1] for p in people], sorted(keys)
    )
    return {(r[0], r[1]) for r in rows}


async def values_as_of(
    conn: asyncpg.Connection, wanted: Sequence[tuple[int, str, str, datetime]]
) -> list[str | None]:
    """For each (project, person, key, time): the person's identify trait as of that time."""
    if not wanted:
        return []
    having = await with_changes(conn, {(w[0], w[1]) for w in wanted}, {w[2] for w in wanted})
    asked = [(i, w) for i, w in enumerate(wanted) if (w[0], w[1]) in having]
    out: list[str | None] = [None] * len(wanted)
    if not asked:
        return out
    async with custom_plans(conn):
        rows = await conn.fetch(
            AS_OF,
            [i for i, _ in asked],
            [w[0] for _, w in asked],
            [w[1] for _, w in asked],
            [w[2] for _, w in asked],
            [to_second(w[3]) for _, w in asked],
        )
    for r in rows:
        out[r[0]] = r[1]
    return out


async def recompute(
    conn: asyncpg.Connection,
    since: dict[Person, datetime | None],
    zones: dict[int, ZoneInfo],
    keys: Sequence[str],
) -> None:
    """Rebuild `person_day_values` of each person from the day of `since` (None: all history)
    from the archive and their trait changes."""
    if not since or not keys:
        return
    people = sorted(since)
    first_day: dict[Person, date | None] = {}
    lo: dict[Person, datetime | None] = {}
    for p in people:
        at = since[p]
        if at is None:
            first_day[p] = lo[p] = None
        else:
            day = to_second(at).astimezone(zones[p[0]]).date()
            first_day[p] = day
            lo[p] = datetime.combine(day, time(0), tzinfo=zones[p[0]])
    projects, persons = [p[0] for p in people], [p[1] for p in people]

    changes: dict[tuple[Person, str], tuple[list[datetime], list[str]]] = defaultdict(
        lambda: ([], [])
    )
    for r in await conn.fetch(FETCH_CHANGES, projects, persons, list(keys)):
        times, values = changes[((r[0], r[1]), r[2])]
        if times and times[-1] == r[3]:
            values[-1] = max(values[-1], r[4])  # two ids, one second: the larger value
        else:
            times.append(r[3])
            values.append(r[4])

    async with custom_plans(conn):
        rows = await conn.fetch(FETCH_EVENTS, projects, persons, [lo[p] for p in people])
    counts: Counter[tuple[int, str, str, date, str]] = Counter()
    for person, group in groupby(rows, key=lambda r: (r[0], r[1])):
        zone = zones[person[0]]
        for r in group:
            props = orjson.loads(r[3]) if r[3] else {}
            day = r[2].astimezone(zone).date()
            for key in keys:
                value = value_of(props, key)
                if value is None:
                    times, values = changes.get((person, key), ([], []))
                    k = bisect_right(times, r[2])
                    value = values[k - 1] if k else None
                counts[(person[0], key, stored(value), day, person[1])] += 1  # none: null group

    await conn.execute(DELETE_VALUES, projects, persons, [first_day[p] for p in people], list(keys))
    if counts:
        ordered = sorted(counts)
        await conn.execute(INSERT_VALUES, *zip(*ordered, strict=True), [counts[k] for k in ordered])
