"""Who is who: distinct ids -> persons, merged retroactively by identify and alias (SPEC §1).

A person is a connected component of distinct ids linked by `identify` (userId + anonymousId)
and `alias` (previousId -> userId). Its label is the smallest id of the component, a function of
the component alone, so the final labels do not depend on the order in which links and events
arrive. When a link joins two components, every row stored under the larger label is moved to
the smaller one — identities, daily activity, per-event activity, first and last days, and the
activity, retention and per-period (lifecycle, stickiness) rollups — and the survivor's sessions
and funnel attempts are recomputed, so days already counted for an anonymous id now count for
the person, once.

Callers hold the project's advisory lock (exclusive when merging), so labels cannot change
between resolving them and writing rows under them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

import asyncpg

from services.common.events import EventRecord
from services.metrics.aggregates import paths, periods, retention
from services.metrics.aggregates.rollup import persons_contribution
from services.metrics.aggregates.sessions import recompute_persons
from services.metrics.funnels import maintain as funnels

ENSURE_IDS = """
INSERT INTO identities (project_id, distinct_id, person_id)
SELECT p, d, d FROM unnest($1::int[], $2::text[]) AS t(p, d)
ORDER BY 1, 2
ON CONFLICT DO NOTHING
"""

LOAD_LABELS = """
SELECT i.project_id, i.distinct_id, i.person_id
FROM unnest($1::int[], $2::text[]) AS t(p, d)
JOIN identities i ON i.project_id = t.p AND i.distinct_id = t.d
"""

# Each statement moves the rows of merged-away labels onto the surviving label, summing counts.
REKEY = [
    """
    UPDATE identities i SET person_id = m.new
    FROM unnest($1::int[], $2::text[], $3::text[]) AS m(project_id, old, new)
    WHERE i.project_id = m.project_id AND i.person_id = m.old
    """,
    """
    WITH m AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS m(project_id, old, new)),
    moved AS (
        DELETE FROM person_days d USING m
        WHERE d.project_id = m.project_id AND d.person_id = m.old
        RETURNING d.project_id, d.day, m.new, d.events
    )
    INSERT INTO person_days (project_id, day, person_id, events)
    SELECT project_id, day, new, sum(events) FROM moved GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (project_id, day, person_id)
    DO UPDATE SET events = person_days.events + excluded.events
    """,
    """
    WITH m AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS m(project_id, old, new)),
    moved AS (
        DELETE FROM person_event_days d USING m
        WHERE d.project_id = m.project_id AND d.person_id = m.old
        RETURNING d.project_id, d.day, d.event, m.new, d.events
    )
    INSERT INTO person_event_days (project_id, day, event, person_id, events)
    SELECT project_id, day, event, new, sum(events) FROM moved
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (project_id, day, event, person_id)
    DO UPDATE SET events = person_event_days.events + excluded.events
    """,
    """
    WITH m AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS m(project_id, old, new)),
    moved AS (
        DELETE FROM person_day_values d USING m
        WHERE d.project_id = m.project_id AND d.person_id = m.old
        RETURNING d.project_id, d.key, d.value, d.day, m.new, d.events
    )
    INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
    SELECT project_id, key, value, day, new, sum(events) FROM moved
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (project_id, key, value, day, person_id)
    DO UPDATE SET events = person_day_values.events + excluded.events
    """,
    """
    WITH m AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS m(project_id, old, new)),
    moved AS (
        DELETE FROM persons p USING m
        WHERE p.project_id = m.project_id AND p.person_id = m.old
        RETURNING p.project_id, m.new, p.first_day, p.last_day
    )
    INSERT INTO persons (project_id, person_id, first_day, last_day)
    SELECT project_id, new, min(first_day), max(last_day) FROM moved GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (project_id, person_id)
    DO UPDATE SET first_day = LEAST(persons.first_day, excluded.first_day),
                  last_day = GREATEST(persons.last_day, excluded.last_day)
    """,
]

Key = tuple[int, str]  # (project_id, distinct_id)


def links(events: Iterable[EventRecord]) -> list[tuple[int, str, str]]:
    """(project, id, id) pairs that identify and alias declare to be the same person."""
    pairs = []
    for e in events:
        if e.type == "identify" and e.user_id and e.anonymous_id and e.user_id != e.anonymous_id:
            pairs.append((e.project_id, e.anonymous_id, e.user_id))
        elif e.type == "alias" and e.previous_id and e.user_id and e.previous_id != e.user_id:
            pairs.append((e.project_id, e.previous_id, e.user_id))
    return pairs


async def _ensure(conn: asyncpg.Connection, keys: set[Key]) -> None:
    ordered = sorted(keys)
    await conn.execute(ENSURE_IDS, [k[0] for k in ordered], [k[1] for k in ordered])


async def _labels(conn: asyncpg.Connection, keys: set[Key]) -> dict[Key, str]:
    ordered = sorted(keys)
    rows = await conn.fetch(LOAD_LABELS, [k[0] for k in ordered], [k[1] for k in ordered])
    return {(r["project_id"], r["distinct_id"]): r["person_id"] for r in rows}


def plan_merges(
    pairs: Sequence[tuple[int, str, str]], labels: dict[Key, str]
) -> list[tuple[int, str, str]]:
    """Union the labels that links connect; return (project, old label, surviving label) moves."""
    parent: dict[Key, Key] = {}

    def find(k: Key) -> Key:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for project, a, b in pairs:
        ra, rb = find((project, labels[(project, a)])), find((project, labels[(project, b)]))
        if ra != rb:
            # The smaller label survives: the label stays the component's smallest id.
            small, large = sorted((ra, rb))
            parent[large] = small
    return sorted((k[0], k[1], find(k)[1]) for k in parent if find(k) != k)


async def apply_merges(
    conn: asyncpg.Connection, events: Sequence[EventRecord], zones: dict[int, ZoneInfo]
) -> list[Key]:
    """Merge what the batch's links join; return the surviving persons that absorbed others."""
    pairs = links(events)
    if not pairs:
        return []
    keys = {(p, a) for p, a, _ in pairs} | {(p, b) for p, _, b in pairs}
    await _ensure(conn, keys)
    moves = plan_merges(pairs, await _labels(conn, keys))
    if not moves:
        return []
    columns = ([m[0] for m in moves], [m[1] for m in moves], [m[2] for m in moves])
    survivors = [(project, new) for project, _, new in moves]
    merged = [(p, old) for p, old, _ in moves] + survivors
    await persons_contribution(conn, merged, -1)
    await retention.persons_contribution(conn, merged, -1)
    await periods.persons_contribution(conn, merged, -1)
    leaving_paths = await paths.leaving_merge(conn, merged, zones)
    for statement in REKEY:
        await conn.execute(statement, *columns)
    await persons_contribution(conn, survivors, +1)
    await retention.persons_contribution(conn, survivors, +1)
    await periods.persons_contribution(conn, survivors, +1)
    await paths.joined_merge(conn, leaving_paths, survivors, zones)
    # Sessions: the merged-away labels' rows go, the survivors' whole histories are redone.
    await recompute_persons(conn, merged)
    # Funnels likewise (their attempts span distinct ids the merge just joined).
    await funnels.recompute_persons(conn, merged)
    return sorted(set(survivors))


async def resolve_people(conn: asyncpg.Connection, events: Sequence[EventRecord]) -> dict[Key, str]:
    """(project, distinct id) -> person label for the given events, registering new ids."""
    keys = {(e.project_id, e.distinct_id) for e in events}
    if not keys:
        return {}
    await _ensure(conn, keys)
    return await _labels(conn, keys)
