"""Each person's sessions (SPEC §4), kept exact under late events and identity merges.

A session ends after the project's timeout G (`projects.session_timeout_seconds`, default 30
minutes) without an active event and lasts at most its cap C (`session_cap_seconds`, default
24 h; the event that would make it longer starts the next one). Call a *chain* a maximal run of
a person's events with no gap over G: the chain alone decides its sessions (cut every C from its
first event). A new event can only change the chain it joins, which may bridge older chains
into one; every chain it reaches has a stored session overlapping [t - G, t + G], which started
at most C before it ended, so at or after t - G - C. So for each person a batch touches, the
window [earliest chain start, latest chain end] of the sessions near its new events (widened to
the new events) holds whole chains: its sessions are deleted and recomputed from the person's
archived events in it — every distinct id of the person, through `identities`. Whole chains,
not just the sessions touched: an event before a chain's first moves every later cut of it; and
rewriting whole chains keeps the chain bounds stored on each session row current (the tests
have a case for each). A merge recomputes the surviving person's whole history instead (merges
touch few persons), and drops the merged-away labels' rows.

G and C are read from `projects` by the statements themselves (the window statement, and the
append path's read of the latest sessions below), for every batch, so there is no cache to
invalidate: the bounds scanned and the cuts Python makes use the values the statement saw.
The argument above holds when the stored sessions were cut with those values; after a change
they were not, until the rebuild (sessions_rebuild.py) has recomputed every person's whole
history with the new ones — which it does after every batch that could still have read the old
values has committed.

Most events arrive in order: all of a person's new events are at or after the end of their
latest stored session (or they have none). Then nothing earlier can change: the cut simply goes
on from that session (`split(..., after=it)`), which it replaces, and no archived event is read;
when its chain grows, the chain's earlier sessions get the new chain end. That gives what
re-cutting the whole chain from the archive gives, since the old events all come first. Only
persons with an event before their latest session's end take the window path above.

Runs in the batch transaction after the batch's events are archived (archive.py). Concurrent
consumers may hold events of one person (devices on different partitions): a transaction lock
per person, taken by the batch (store.py) in key order, serializes their recomputations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import NamedTuple

import asyncpg

from services.metrics.plans import custom_plans
from services.metrics.staging import StagedTable, stage

# The defaults of `projects.session_timeout_seconds` and `session_cap_seconds`.
GAP = timedelta(minutes=30)
CAP = timedelta(hours=24)

# (project, person, lo, hi): the time span of a person's new events; NULLs mean the whole history.
# Deletes the sessions in each person's window and returns the archived events in it, with the
# project's timeout and cap (seconds) the window was found with.
TAKE_WINDOWS = """
WITH t AS (
    -- rounded to the second like the archived times (archive.py)
    SELECT t.project_id, t.person_id,
           date_trunc('second', t.lo + interval '500 milliseconds') AS lo,
           date_trunc('second', t.hi + interval '500 milliseconds') AS hi,
           p.session_timeout_seconds AS gap, p.session_cap_seconds AS cap
    FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[])
        AS t(project_id, person_id, lo, hi)
    JOIN projects p ON p.id = t.project_id
),
w AS (
    SELECT t.project_id, t.person_id, min(t.gap) AS gap, min(t.cap) AS cap,
           least(coalesce(t.lo, '-infinity'), min(s.chain_start)) AS l,
           greatest(coalesce(t.hi, 'infinity'), max(s.chain_end)) AS r
    FROM t LEFT JOIN sessions s
      ON s.project_id = t.project_id AND s.person_id = t.person_id
     -- a session lasts at most the cap: this bounds the primary-key range scanned
     AND s.start_ts >= coalesce(t.lo, '-infinity') - make_interval(secs => t.cap + t.gap)
     AND s.start_ts <= coalesce(t.hi, 'infinity') + make_interval(secs => t.gap)
     AND s.end_ts >= coalesce(t.lo, '-infinity') - make_interval(secs => t.gap)
    -- only t's own columns (gap and cap are the project's): grouped by a projects column, the
    -- planner expects a group per session row, and deletes the window by a sequential scan
    GROUP BY t.project_id, t.person_id, t.lo, t.hi
),
dropped AS (
    DELETE FROM sessions s USING w
    WHERE s.project_id = w.project_id AND s.person_id = w.person_id
      AND s.start_ts BETWEEN w.l AND w.r
)
SELECT w.project_id, w.person_id, w.gap, w.cap, a.ts
FROM w
JOIN identities i ON i.project_id = w.project_id AND i.person_id = w.person_id
-- OFFSET 0 keeps the subquery whole, so that the window bounds the index scan; flattened into
-- the join they were a filter over each person's whole archive. Compared as (distinct_id, ts)
-- rows, they bound only the (project_id, distinct_id, ts) index: on fresh statistics the
-- planner took (project_id, ts), reading every device's events of the window for each device.
CROSS JOIN LATERAL (
    SELECT a.ts
    FROM active_events a
    WHERE a.project_id = i.project_id AND a.distinct_id = i.distinct_id
      AND (a.distinct_id, a.ts) >= (i.distinct_id, w.l)
      AND (a.distinct_id, a.ts) <= (i.distinct_id, w.r)
    OFFSET 0
) a
ORDER BY 1, 2, 5
"""

# Each person's latest session (NULLs: none) and the project's timeout and cap, in seconds.
LATEST_SESSIONS = """
SELECT t.project_id, t.person_id, p.session_timeout_seconds AS gap,
       p.session_cap_seconds AS cap, s.start_ts, s.end_ts, s.events, s.chain_start, s.chain_end
FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)
JOIN projects p ON p.id = t.project_id
LEFT JOIN LATERAL (
    SELECT * FROM sessions s
    WHERE s.project_id = t.project_id AND s.person_id = t.person_id
    ORDER BY s.start_ts DESC
    LIMIT 1
) s ON true
"""

# A grown chain's earlier sessions (from its start to before its latest one) learn its new end.
SET_CHAIN_ENDS = """
UPDATE sessions s SET chain_end = t.chain_end
FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
    AS t(project_id, person_id, chain_start, latest_start, chain_end)
WHERE s.project_id = t.project_id AND s.person_id = t.person_id
  AND s.start_ts >= t.chain_start AND s.start_ts < t.latest_start
"""

# Sessions to write, staged by COPY (staging.py): a whole-history recomputation writes every
# session of its persons, often more rows than the batch has events. 100,000 rows took
# 0.43-0.52 s to stage and insert, against 0.82 s as seven arrays.
STAGED_SESSIONS = StagedTable(
    "staged_sessions",
    "project_id int, person_id text, start_ts timestamptz, end_ts timestamptz, events int, "
    "chain_start timestamptz, chain_end timestamptz",
)

INSERT_SESSIONS = """
INSERT INTO sessions (project_id, person_id, start_ts, end_ts, events, day,
                      chain_start, chain_end)
SELECT t.project_id, t.person_id, t.start_ts, t.end_ts, t.events,
       (t.start_ts AT TIME ZONE p.timezone)::date, t.chain_start, t.chain_end
FROM staged_sessions t
JOIN projects p ON p.id = t.project_id
ORDER BY 1, 2, 3
-- a conflict is the latest session an append continues from (same start, so same day)
ON CONFLICT (project_id, person_id, start_ts) DO UPDATE
SET end_ts = excluded.end_ts, events = excluded.events, chain_end = excluded.chain_end
"""

LOCK_PERSONS = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k"


Person = tuple[int, str]  # (project_id, person label)


class Session(NamedTuple):
    start: datetime
    end: datetime
    events: int
    chain_start: datetime
    chain_end: datetime


def split(
    times: Sequence[datetime],
    gap: timedelta = GAP,
    cap: timedelta = CAP,
    after: Session | None = None,
) -> list[Session]:
    """A person's sessions from their sorted event times (whole chains only): a session ends
    after `gap` without an event and lasts at most `cap`.

    `after`: the person's latest session, when every time is at or after its end; the cut goes
    on from it, and the first session returned replaces it (the same start, maybe more events).
    """
    out: list[Session] = []
    chain: list[tuple[datetime, datetime, int]] = []  # (start, end, events) of the open chain
    chain_start = None  # the open chain's first event, when it began before `times`
    if after is not None:
        chain.append((after.start, after.end, after.events))
        chain_start = after.chain_start

    def close_chain() -> None:
        nonlocal chain_start
        first = chain[0][0] if chain_start is None else chain_start
        out.extend(Session(s, e, n, first, chain[-1][1]) for s, e, n in chain)
        chain.clear()
        chain_start = None

    for ts in times:
        if chain and ts - chain[-1][1] <= gap:
            start, _, n = chain[-1]
            if ts - start <= cap:
                chain[-1] = (start, ts, n + 1)
            else:
                chain.append((ts, ts, 1))
            continue
        if chain:
            close_chain()
        chain.append((ts, ts, 1))
    if chain:
        close_chain()
    return out


def lock_key(person: Person) -> int:
    """A stable signed 64-bit advisory-lock key per person (the one-bigint key space, apart
    from the project locks' two-int keys)."""
    digest = hashlib.blake2b(f"{person[0]}:{person[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def recompute(
    conn: asyncpg.Connection, windows: Sequence[tuple[int, str, datetime | None, datetime | None]]
) -> None:
    """Recompute the sessions of each (project, person, lo, hi) around [lo, hi] (None: all)."""
    if not windows:
        return
    ordered = sorted(windows, key=lambda w: (w[0], w[1]))
    async with custom_plans(conn):
        rows = await conn.fetch(
            TAKE_WINDOWS,
            [w[0] for w in ordered],
            [w[1] for w in ordered],
            [w[2] for w in ordered],
            [w[3] for w in ordered],
        )
    found: list[tuple[int, str, Session]] = []
    for (project_id, person_id, gap, cap), group in groupby(
        rows, key=lambda r: (r[0], r[1], r[2], r[3])
    ):
        cut = split([r[4] for r in group], timedelta(seconds=gap), timedelta(seconds=cap))
        found.extend((project_id, person_id, s) for s in cut)
    await _insert(conn, found)


async def _insert(conn: asyncpg.Connection, found: Sequence[tuple[int, str, Session]]) -> None:
    if not found:
        return
    await stage(
        conn,
        STAGED_SESSIONS,
        [(p, who, s.start, s.end, s.events, s.chain_start, s.chain_end) for p, who, s in found],
    )
    await conn.execute(INSERT_SESSIONS)


async def apply_sessions(conn: asyncpg.Connection, times: dict[Person, list[datetime]]) -> None:
    """Fold a batch's new events ((project, person) -> their times, sorted and rounded to the
    second like the archive's) into sessions; the caller holds the persons' locks."""
    if not times:
        return
    people = sorted(times)
    latest = await conn.fetch(LATEST_SESSIONS, [p[0] for p in people], [p[1] for p in people])
    late: list[tuple[int, str, datetime | None, datetime | None]] = []
    grown: list[tuple[int, str, datetime, datetime, datetime]] = []
    found: list[tuple[int, str, Session]] = []
    for r in latest:
        person = (r["project_id"], r["person_id"])
        new = times[person]
        if r["end_ts"] is not None and new[0] < r["end_ts"]:
            late.append((*person, new[0], new[-1]))
            continue
        last = None
        if r["start_ts"] is not None:
            last = Session(
                r["start_ts"], r["end_ts"], r["events"], r["chain_start"], r["chain_end"]
            )
        cut = split(new, timedelta(seconds=r["gap"]), timedelta(seconds=r["cap"]), after=last)
        if last is not None:
            if cut[0] == last:  # the new events start a new chain: the latest session stays
                cut = cut[1:]
            elif cut[0].chain_end != last.chain_end and last.chain_start < last.start:
                grown.append((*person, last.chain_start, last.start, cut[0].chain_end))
        found.extend((*person, s) for s in cut)
    if grown:
        await conn.execute(SET_CHAIN_ENDS, *zip(*grown, strict=True))
    await _insert(conn, found)
    await recompute(conn, late)


async def lock_persons(conn: asyncpg.Connection, people: Iterable[Person]) -> None:
    """Take the persons' transaction locks, in key order (concurrent consumers never deadlock:
    a transaction takes all it needs in one statement, or only ones it already holds)."""
    keys = sorted({lock_key(p) for p in people})
    if keys:
        await conn.execute(LOCK_PERSONS, keys)


async def recompute_persons(conn: asyncpg.Connection, people: Sequence[Person]) -> None:
    """Whole-history recomputation, after merges re-keyed `people`'s distinct ids."""
    await recompute(conn, [(p, person, None, None) for p, person in sorted(set(people))])
