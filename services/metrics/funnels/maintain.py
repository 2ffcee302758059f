"""Keeping `funnel_attempts` exact as events stream in, merges happen and funnels are backfilled.

A new event at time t can only change attempts opened in [t - W, t]: as a step-1 event it opens
one, as a later step, an exclusion or (strict) an event in between it changes those whose
window reaches it. So for each person a batch touches, the entry days from day(lo - W) to
day(hi) (lo, hi: the span of their new events) are recomputed from the person's
archived events in [start of the first day, end of the last day + W] — every distinct id of
the person, through `identities`. A merge recomputes the surviving person's whole history and
drops the merged-away labels' rows; the backfill does the same for every person, one funnel at
a time (backfill.py).

The step counts the gateway reads (step_counts.py) move with the attempts, in the same
transaction, just before they are replaced.

Runs in the batch transaction after the events are archived and the sessions recomputed, under
the same per-person locks (sessions.py), so concurrent consumers holding events of one person
serialize. The funnel rows are read `FOR KEY SHARE`: a funnel deleted meanwhile waits for the
batch instead of failing its inserts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

import asyncpg

from services.common.events import ACTIVE_TYPES, EventRecord
from services.common.funnels import FunnelDefinition
from services.metrics.aggregates.activity import event_name
from services.metrics.funnels import step_counts
from services.metrics.funnels.evaluate import FunnelEvent, best_attempts, sort_events
from services.metrics.funnels.step_counts import Found, Window, seconds_literal
from services.metrics.plans import custom_plans

Person = tuple[int, str]  # (project_id, person label)

LOAD_FUNNELS = """
SELECT f.id, f.project_id, f.definition::text AS definition, p.timezone
FROM funnels f JOIN projects p ON p.id = f.project_id
WHERE f.project_id = ANY($1::int[]) AND ($2::int IS NULL OR f.id = $2)
ORDER BY f.id
FOR KEY SHARE OF f
"""

# (project, person, lo, hi) windows, NULL bounds meaning all history; events limited to the
# names the project's funnels need, except for projects with a strict funnel (all events).
FETCH_EVENTS = """
SELECT t.project_id, t.person_id, a.ts, a.event, a.props::text AS props
FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[])
    AS t(project_id, person_id, lo, hi)
JOIN identities i ON i.project_id = t.project_id AND i.person_id = t.person_id
-- OFFSET 0 and the row comparisons: the window bounds the (project_id, distinct_id, ts) index
-- scan, as in sessions.py's window statement
CROSS JOIN LATERAL (
    SELECT a.ts, a.event, a.props
    FROM active_events a
    WHERE a.project_id = i.project_id AND a.distinct_id = i.distinct_id
      AND (a.distinct_id, a.ts) >= (i.distinct_id, coalesce(t.lo, '-infinity'))
      AND (a.distinct_id, a.ts) <= (i.distinct_id, coalesce(t.hi, 'infinity'))
    OFFSET 0
) a
WHERE t.project_id = ANY($7::int[])
   OR (t.project_id, a.event) IN (SELECT * FROM unnest($5::int[], $6::text[]))
ORDER BY t.project_id, t.person_id
"""

# Replaces the attempts of each (funnel, person, lo..hi days) window with the recomputed rows
# $5..$11, writing only what changed: in steady state most days of a window come out the same,
# and an unchanged row costs an index probe instead of a dead tuple, a new one and their WAL.
# The window's rows no longer there are found by EXCEPT, a set operation, hashed or sorted: as
# a NOT EXISTS over `new`, which has no index, a misestimate of the window's rows could plan it
# as a nested loop reading `new` again for each of them (migration 0023 says how that went for
# the per-value activity trigger).
REPLACE_ATTEMPTS = """
WITH new AS (
    SELECT * FROM unnest($5::int[], $6::text[], $7::date[], $8::timestamptz[], $9::int[],
                         $10::text[], $11::text[])
        AS t(funnel_id, person_id, day, ts, depth, s, props)
),
upserted AS (
    INSERT INTO funnel_attempts AS f (funnel_id, person_id, day, entry_ts, depth, seconds, props)
    SELECT funnel_id, person_id, day, ts, depth, s::int[], props::jsonb FROM new
    ORDER BY 1, 2, 3
    ON CONFLICT (funnel_id, person_id, day) DO UPDATE
    SET entry_ts = excluded.entry_ts, depth = excluded.depth, seconds = excluded.seconds,
        props = excluded.props
    WHERE (f.entry_ts, f.depth, f.seconds, f.props)
          IS DISTINCT FROM (excluded.entry_ts, excluded.depth, excluded.seconds, excluded.props)
)
DELETE FROM funnel_attempts f
USING (
    SELECT a.funnel_id, a.person_id, a.day
    FROM unnest($1::int[], $2::text[], $3::date[], $4::date[]) AS w(funnel_id, person_id, lo, hi)
    JOIN funnel_attempts a ON a.funnel_id = w.funnel_id AND a.person_id = w.person_id
     AND a.day BETWEEN coalesce(w.lo, '-infinity'::date) AND coalesce(w.hi, 'infinity'::date)
    EXCEPT
    SELECT funnel_id, person_id, day FROM new
) gone
WHERE f.funnel_id = gone.funnel_id AND f.person_id = gone.person_id AND f.day = gone.day
"""

# Archived times are the event times rounded to the second: a span widened by this covers them.
ROUNDING = timedelta(seconds=1)


@dataclass(frozen=True)
class Funnel:
    id: int
    project_id: int
    definition: FunnelDefinition
    zone: ZoneInfo

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.definition.window_seconds)


async def load_funnels(
    conn: asyncpg.Connection, projects: Sequence[int], only: int | None = None
) -> dict[int, list[Funnel]]:
    """The funnels of `projects` (or just funnel `only`), by project."""
    rows = await conn.fetch(LOAD_FUNNELS, sorted(set(projects)), only)
    out: dict[int, list[Funnel]] = defaultdict(list)
    for r in rows:
        definition = FunnelDefinition.model_validate_json(r["definition"])
        out[r["project_id"]].append(
            Funnel(r["id"], r["project_id"], definition, ZoneInfo(r["timezone"]))
        )
    return out


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


@dataclass(frozen=True)
class _Window:
    """A person's entry days to recompute per funnel (None: all) and the events that needs."""

    days: dict[int, tuple[date, date] | None]  # funnel id -> entry days
    lo: datetime | None
    hi: datetime | None


def _window(funnels: list[Funnel], span: tuple[datetime, datetime] | None) -> _Window:
    if span is None:
        return _Window({f.id: None for f in funnels}, None, None)
    lo, hi = span[0] - ROUNDING, span[1] + ROUNDING
    days: dict[int, tuple[date, date] | None] = {}
    fetch_lo, fetch_hi = lo, hi
    for f in funnels:
        first, last = (lo - f.window).astimezone(f.zone).date(), hi.astimezone(f.zone).date()
        days[f.id] = (first, last)
        fetch_lo = min(fetch_lo, _start_of(first, f.zone))
        fetch_hi = max(fetch_hi, _start_of(last + timedelta(days=1), f.zone) + f.window)
    return _Window(days, fetch_lo, fetch_hi)


async def recompute(
    conn: asyncpg.Connection,
    funnels: dict[int, list[Funnel]],
    spans: dict[Person, tuple[datetime, datetime] | None],
) -> None:
    """Recompute the attempts of each person around the span of their new events (None: their
    whole history) for every funnel of their project in `funnels`."""
    people = sorted(p for p in spans if funnels.get(p[0]))
    if not people:
        return
    windows = {p: _window(funnels[p[0]], spans[p]) for p in people}
    events = await _fetch(conn, funnels, windows)

    replaced: list[Window] = []
    found: list[Found] = []
    for person in people:
        mine = events.get(person, [])
        for strict in (False, True):
            chosen = [f for f in funnels[person[0]] if (f.definition.order == "strict") == strict]
            if not chosen:
                continue
            sort_events(mine, strict)
            for f in chosen:
                days = windows[person].days[f.id]
                replaced.append((f.id, person[1], *(days or (None, None))))
                best = best_attempts(f.definition, mine, f.zone, days)
                found.extend((f.id, person[1], day, a) for day, a in best.items())

    await replace_attempts(conn, replaced, found)


async def replace_attempts(
    conn: asyncpg.Connection, windows: list[Window], found: list[Found]
) -> None:
    """Replace the stored attempts of each (funnel, person, first day, last day) window with
    `found`, and move the step counts with them."""
    await step_counts.shift(conn, windows, found)
    async with custom_plans(conn):
        await conn.execute(
            REPLACE_ATTEMPTS,
            [w[0] for w in windows],
            [w[1] for w in windows],
            [w[2] for w in windows],
            [w[3] for w in windows],
            [i[0] for i in found],
            [i[1] for i in found],
            [i[2] for i in found],
            [i[3].entry_ts for i in found],
            [i[3].depth for i in found],
            [seconds_literal(i[3]) for i in found],
            [i[3].props_json for i in found],
        )


async def _fetch(
    conn: asyncpg.Connection, funnels: dict[int, list[Funnel]], windows: dict[Person, _Window]
) -> dict[Person, list[FunnelEvent]]:
    every_event = sorted(
        p for p, fs in funnels.items() if any(f.definition.event_names() is None for f in fs)
    )
    names = sorted(
        {
            (p, name)
            for p, fs in funnels.items()
            for f in fs
            for name in f.definition.event_names() or ()
        }
    )
    ordered = sorted(windows.items())
    async with custom_plans(conn):
        rows = await conn.fetch(
            FETCH_EVENTS,
            [p[0] for p, _ in ordered],
            [p[1] for p, _ in ordered],
            [w.lo for _, w in ordered],
            [w.hi for _, w in ordered],
            [n[0] for n in names],
            [n[1] for n in names],
            every_event,
        )
    out: dict[Person, list[FunnelEvent]] = {}
    for person, group in groupby(rows, key=lambda r: (r[0], r[1])):
        out[person] = [FunnelEvent(r[2], r[3], props_json=r[4]) for r in group]
    return out


def spans_of(
    events: Sequence[EventRecord],
    people: dict[tuple[int, str], str],
    funnels: dict[int, list[Funnel]],
) -> dict[Person, tuple[datetime, datetime] | None]:
    """(project, person) -> the span of their new events that some funnel of theirs needs."""
    needed: dict[int, set[str] | None] = {}
    for project, fs in funnels.items():
        names: set[str] | None = set()
        for f in fs:
            more = f.definition.event_names()
            names = None if names is None or more is None else names | more
        needed[project] = names
    spans: dict[Person, tuple[datetime, datetime] | None] = {}
    for e in events:
        if e.type not in ACTIVE_TYPES or e.project_id not in needed:
            continue
        names = needed[e.project_id]
        if names is not None and event_name(e) not in names:
            continue
        person = (e.project_id, people[(e.project_id, e.distinct_id)])
        span = spans.get(person)
        if span is None:
            spans[person] = (e.timestamp, e.timestamp)
        else:
            spans[person] = (min(span[0], e.timestamp), max(span[1], e.timestamp))
    return spans


async def apply_funnels(
    conn: asyncpg.Connection, events: Sequence[EventRecord], people: dict[tuple[int, str], str]
) -> None:
    """Fold a batch's new events into the attempts of their projects' funnels."""
    projects = {e.project_id for e in events if e.type in ACTIVE_TYPES}
    if not projects:
        return
    funnels = await load_funnels(conn, sorted(projects))
    if funnels:
        await recompute(conn, funnels, spans_of(events, people, funnels))


async def recompute_persons(conn: asyncpg.Connection, people: Sequence[Person]) -> None:
    """Whole-history recomputation for every funnel, after merges re-keyed `people`."""
    funnels = await load_funnels(conn, sorted({p for p, _ in people}))
    if funnels:
        await recompute(conn, funnels, dict.fromkeys(people))
