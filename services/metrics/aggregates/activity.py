"""Daily activity per person (and per event name), and each person's first active day.

Days are in the project's timezone (SQL `AT TIME ZONE`), so the same instant can fall on different
dates for different projects. Rows are written in key order so concurrent consumers after a
rebalance take row locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from services.common.events import ACTIVE_TYPES, EventRecord
from services.common.values import stored
from services.metrics.aggregates import periods, retention, traits
from services.metrics.aggregates.rollup import add_batch
from services.metrics.plans import planned_for

# All three take rows already aggregated in Python, in key order (no deadlocks between
# consumers after a rebalance: row locks are taken in the same order).
UPSERT_PERSON_DAYS = """
INSERT INTO person_days (project_id, day, person_id, events)
SELECT p, day, person, n
FROM unnest($1::int[], $2::text[], $3::date[], $4::int[]) AS t(p, person, day, n)
ORDER BY 1, 2, 3
ON CONFLICT (project_id, day, person_id)
DO UPDATE SET events = person_days.events + excluded.events
"""

UPSERT_PERSON_EVENT_DAYS = """
INSERT INTO person_event_days (project_id, day, event, person_id, events)
SELECT * FROM unnest($1::int[], $2::date[], $3::text[], $4::text[], $5::int[])
ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, day, event, person_id)
DO UPDATE SET events = person_event_days.events + excluded.events
"""

UPSERT_PERSON_DAY_VALUES = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::date[], $5::text[], $6::int[])
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (project_id, key, value, day, person_id)
DO UPDATE SET events = person_day_values.events + excluded.events
"""

# A late event can move a person's first day earlier; it never moves later.
UPSERT_FIRST_LAST_DAYS = """
INSERT INTO persons AS p (project_id, person_id, first_day, last_day)
SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::date[])
ORDER BY 1, 2
ON CONFLICT (project_id, person_id)
DO UPDATE SET first_day = LEAST(p.first_day, excluded.first_day),
              last_day = GREATEST(p.last_day, excluded.last_day)
WHERE excluded.first_day < p.first_day OR excluded.last_day > p.last_day
"""


def event_name(event: EventRecord) -> str:
    """Track events by name; page/screen views by their name, else by their type."""
    if event.type == "track":
        return event.event or ""
    return event.event or f"${event.type}"


async def apply_activity(
    conn: asyncpg.Connection,
    events: Sequence[EventRecord],
    people: dict[tuple[int, str], str],
    zones: dict[int, ZoneInfo],
    breakdown_keys: Mapping[int, Sequence[str]] | None = None,
) -> None:
    """Add new (already deduplicated) events to the activity aggregates, under their person,
    with their values of their project's breakdown keys (project -> keys).

    Days are in each project's timezone.
    """
    breakdown_keys = breakdown_keys or {}
    person_days: Counter[tuple[int, str, date]] = Counter()
    event_days: Counter[tuple[int, date, str, str]] = Counter()
    value_days: Counter[tuple[int, str, str, date, str]] = Counter()
    lacking: list[tuple[int, str, str, datetime]] = []  # no value of their own: ask the traits
    lacking_days: list[date] = []
    for e in events:
        if e.type not in ACTIVE_TYPES:
            continue
        person = people[(e.project_id, e.distinct_id)]
        day = e.timestamp.astimezone(zones[e.project_id]).date()
        person_days[(e.project_id, person, day)] += 1
        event_days[(e.project_id, day, event_name(e), person)] += 1
        props = e.props
        for key in breakdown_keys.get(e.project_id, ()):
            value = traits.value_of(props, key)
            if value is not None:
                value_days[(e.project_id, key, value, day, person)] += 1
            else:
                lacking.append((e.project_id, person, key, e.timestamp))
                lacking_days.append(day)
    for (project_id, person, key, _), day, value in zip(
        lacking, lacking_days, await traits.values_as_of(conn, lacking), strict=True
    ):
        value_days[(project_id, key, stored(value), day, person)] += 1  # none: the null group
    if not person_days:
        return
    rows = sorted(person_days)
    columns = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    counts = [person_days[r] for r in rows]
    # The rollups read the rows as they were before this batch, planned for it when it is large
    # (plans.py): in `make bench`'s 1M-event load, retention's generic plan (made for ten rows)
    # nested-looped a batch's new rows over their persons, about 6 s per batch of 50,000 events
    # instead of 0.1 s; the rollup's statement reads the same rows the same way.
    async with planned_for(conn, len(rows)):
        await add_batch(conn, *columns, counts)
        await retention.add_batch(conn, *columns)
        await periods.add_batch(conn, *columns)
    await conn.execute(UPSERT_PERSON_DAYS, *columns, counts)
    ordered = sorted(event_days)
    await conn.execute(
        UPSERT_PERSON_EVENT_DAYS, *zip(*ordered, strict=True), [event_days[k] for k in ordered]
    )
    if value_days:
        keyed = sorted(value_days)
        await conn.execute(
            UPSERT_PERSON_DAY_VALUES, *zip(*keyed, strict=True), [value_days[k] for k in keyed]
        )
    first: dict[tuple[int, str], date] = {}
    last: dict[tuple[int, str], date] = {}
    for project_id, person, day in rows:  # sorted: the first seen is the earliest
        first.setdefault((project_id, person), day)
        last[(project_id, person)] = day
    keys = sorted(first)
    await conn.execute(
        UPSERT_FIRST_LAST_DAYS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [first[k] for k in keys],
        [last[k] for k in keys],
    )
