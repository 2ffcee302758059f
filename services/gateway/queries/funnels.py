"""Funnel reads (docs/funnels.md "Counting"): steps, conversions, medians, breakdown, entry days.

A person counts once over the range, with their best attempt: the deepest, then the earliest
`entry_ts`; `users(i)` is the number of best attempts of depth >= i. The metrics service keeps
`funnel_attempts` (per funnel, person and entry day, that day's best attempt: `depth`,
`seconds[i]` from step i-1 to step i with `seconds[1] = 0`, the step-1 event's `props`) and,
from them, the step counts of migration 0012, which place each attempt under the two days that
decide the ranges where it is its person's best. Steps and entry days read the step counts only
(per step and day, a row per pair of days and duration bucket); a breakdown needs each best
attempt's properties, so it picks them from `funnel_attempts` (`DISTINCT ON (person_id) ...
ORDER BY person_id, depth DESC, entry_ts`) over the `(funnel_id, day, person_id)` index range,
aggregating every step in one pass.

Figures: conversions rounded to 4 decimals, halves up (null when the divisor is 0; 1.0 at step 1
unless nobody entered); medians the mean of the two middle values for an even count (from the
step counts; `percentile_cont(0.5)` in a breakdown) rounded to 3, null at step 1 and when nobody
reached the step.

Breakdown values are the best attempt's `props -> key`, by `jsonb_typeof`: a string as it is; a
number as its JSON text, as the event archive holds it — the spelling Pulse's JSON writer gave it
(`1` is "1", `1.0` is "1.0", `2.5` is "2.5": what Python's `json.dumps` writes, and what the
activity breakdown shows), except that PostgreSQL never writes an exponent (`1e20` is
"100000000000000000000"); a boolean as "true" / "false". So `1` and `1.0` are two values, as the
SDK sent them. A missing key, JSON null, an object or an array falls back to the person trait:
the value the person's latest `identify` set at or before the step-1 event's second, over all
their distinct ids (`trait_changes`, every key since migration 0018: the rule of
services/metrics/aggregates/traits.py); without one, null. The trait is looked up for the best
attempts only, once each. At most `MAX_GROUPS` values, by persons at step 1 (descending), then
value (code point order, null last).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.funnels import MAX_STEPS

MAX_GROUPS = 50
RATE_PLACES = Decimal("0.0001")


class FunnelStep(BaseModel):
    event: str
    users: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_seconds_to_convert: float | None


class BreakdownGroup(BaseModel):
    value: str | None  # None: the key was missing, null, an object or an array
    steps: list[FunnelStep]


class EntryDay(BaseModel):
    date: date
    users: list[int]  # per step, for the persons who entered that day (their best attempt of it)


# The best attempt per person over the range, for breakdowns. Sorting person ids by code point
# ("C") is much cheaper than by the database's collation, and equality is the same; `day` last
# gives a total order.
BEST_ATTEMPTS = """
SELECT DISTINCT ON (person_id COLLATE "C") depth, seconds, person_id, entry_ts, props
FROM funnel_attempts
WHERE funnel_id = :funnel AND day BETWEEN :start AND :stop
ORDER BY person_id COLLATE "C", depth DESC, entry_ts, day
"""

# One pass over the best attempts for every step's figures, whatever the funnel's length (steps
# a funnel does not have count nobody): `users_i` and `median_i` (from step 2).
FIGURES = ",\n".join(
    [f"count(*) FILTER (WHERE depth >= {i}) AS users_{i}" for i in range(1, MAX_STEPS + 1)]
    + [
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds[{i}]) FILTER (WHERE depth >= {i})"
        f" AS median_{i}"
        for i in range(2, MAX_STEPS + 1)
    ]
)

# The funnel's steps over the range from the step counts (migration 0012): `users(i)` sums step
# i's rows whose attempts are their persons' best over [start, stop]; the cumulative counts over
# duration buckets find the bucket of each middle position (0-based: (n-1)/2 and n/2, one
# position when n is odd), and that bucket's counts per second find the value there. So a read
# costs its days' rows of the bucket grain plus one bucket's rows per step, not a row per person.
STEPS_SQL = text(
    """
WITH counted AS (
    SELECT step, bucket, sum(persons) AS persons
    FROM funnel_step_buckets
    WHERE funnel_id = :funnel AND day BETWEEN :start AND :stop
      AND prior_day < :start AND deeper_day > :stop
    GROUP BY step, bucket
),
cumulative AS (
    SELECT step, bucket, persons,
           sum(persons) OVER (PARTITION BY step ORDER BY bucket) AS upto,
           sum(persons) OVER (PARTITION BY step) AS users
    FROM counted
),
middle AS (
    SELECT c.step, c.bucket, c.upto - c.persons AS before, p.pos
    FROM cumulative c CROSS JOIN LATERAL (VALUES ((c.users - 1) / 2), (c.users / 2)) AS p(pos)
    WHERE c.step > 1 AND c.upto - c.persons <= p.pos AND p.pos < c.upto
),
per_second AS (
    SELECT b.step, b.bucket, x.seconds, x.upto
    FROM (SELECT DISTINCT step, bucket FROM middle) b
    CROSS JOIN LATERAL (
        SELECT seconds, sum(sum(persons)) OVER (ORDER BY seconds) AS upto
        FROM funnel_step_seconds
        WHERE funnel_id = :funnel AND step = b.step AND bucket = b.bucket
          AND day BETWEEN :start AND :stop AND prior_day < :start AND deeper_day > :stop
        GROUP BY seconds
    ) x
),
medians AS (
    SELECT m.step, avg(at.seconds) AS median
    FROM middle m CROSS JOIN LATERAL (
        SELECT s.seconds FROM per_second s
        WHERE s.step = m.step AND s.bucket = m.bucket AND m.before + s.upto > m.pos
        ORDER BY s.seconds
        LIMIT 1
    ) at
    GROUP BY m.step
)
SELECT u.step, u.users, m.median
FROM (SELECT DISTINCT step, users FROM cumulative) u
LEFT JOIN medians m ON m.step = u.step
"""
)

# A value is a string as it is, a number as its JSON text, a boolean as true/false (all three
# as ->> writes them); anything else falls back to the person's identify trait as of the entry
# (traits.py's AS_OF: the latest second, then the larger value).
BREAKDOWN_SQL = text(
    f"""
WITH best AS ({BEST_ATTEMPTS}),
valued AS (
    SELECT depth, seconds,
           CASE WHEN jsonb_typeof(props -> CAST(:key AS text)) IN ('string', 'number', 'boolean')
                THEN props ->> CAST(:key AS text)
                ELSE (SELECT c.value
                      FROM identities d
                      JOIN trait_changes c
                        ON c.project_id = d.project_id AND c.distinct_id = d.distinct_id
                      WHERE d.project_id = :project AND d.person_id = best.person_id
                        AND c.key = CAST(:key AS text) AND c.ts <= best.entry_ts
                      ORDER BY c.ts DESC, c.value COLLATE "C" DESC
                      LIMIT 1)
           END AS value
    FROM best
)
SELECT value, {FIGURES}
FROM valued
GROUP BY value
ORDER BY users_1 DESC, value COLLATE "C" NULLS LAST
LIMIT :limit
"""
)

# Every attempt counts on its own day: the step counts of a day, whatever their two days.
ENTRY_DAYS_SQL = text(
    """
SELECT day, step, sum(persons) AS persons
FROM funnel_step_buckets
WHERE funnel_id = :funnel AND step <= :n AND day BETWEEN :start AND :stop
GROUP BY 1, 2
"""
)


def _rate(part: int, whole: int) -> float | None:
    """part / whole to 4 decimals, halves up (1/32 is 0.0313), as a person rounds."""
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP))


def _steps(
    step_events: Sequence[str], users: dict[int, int], medians: dict[int, Any]
) -> list[FunnelStep]:
    """The figures of each step from `users[i]` and the median of `seconds[i]` (1-based)."""
    out = []
    first = users.get(1, 0)
    for i, event in enumerate(step_events, start=1):
        n = users.get(i, 0)
        previous = users.get(i - 1, 0) if i > 1 else first
        median = medians.get(i)
        out.append(
            FunnelStep(
                event=event,
                users=n,
                conversion_from_start=_rate(n, first),
                conversion_from_previous=_rate(n, previous),
                median_seconds_to_convert=(
                    round(float(median), 3) if i > 1 and n and median is not None else None
                ),
            )
        )
    return out


def _params(funnel_id: int, start: date, stop: date) -> dict[str, Any]:
    return {"funnel": funnel_id, "start": start, "stop": stop}


def _figures(row: Any, n_steps: int) -> tuple[dict[int, int], dict[int, Any]]:
    users = {i: row._mapping[f"users_{i}"] for i in range(1, n_steps + 1)}
    medians = {i: row._mapping[f"median_{i}"] for i in range(2, n_steps + 1)}
    return users, medians


async def read_funnel_steps(
    conn: AsyncConnection, funnel_id: int, step_events: list[str], start: date, stop: date
) -> list[FunnelStep]:
    """The funnel's steps over persons whose best attempt in [start, stop] entered it."""
    rows = await conn.execute(STEPS_SQL, _params(funnel_id, start, stop))
    users, medians = {}, {}
    for r in rows:
        users[r.step] = int(r.users)
        medians[r.step] = r.median
    return _steps(step_events, users, medians)


async def read_funnel_breakdown(
    conn: AsyncConnection,
    project_id: int,
    funnel_id: int,
    step_events: list[str],
    start: date,
    stop: date,
    key: str,
) -> list[BreakdownGroup]:
    """The same figures per value of `key` in the best attempt's step-1 properties, else the
    person's trait as of it."""
    params = {
        **_params(funnel_id, start, stop),
        "project": project_id,
        "key": key,
        "limit": MAX_GROUPS,
    }
    rows = await conn.execute(BREAKDOWN_SQL, params)
    return [
        BreakdownGroup(value=r.value, steps=_steps(step_events, *_figures(r, len(step_events))))
        for r in rows
    ]


async def read_entry_days(
    conn: AsyncConnection, funnel_id: int, n_steps: int, start: date, stop: date
) -> list[EntryDay]:
    """Per day of [start, stop]: persons who entered that day, per step reached (zeros if none)."""
    params = {**_params(funnel_id, start, stop), "n": n_steps}
    rows = await conn.execute(ENTRY_DAYS_SQL, params)
    users: dict[date, list[int]] = {}
    for r in rows:
        users.setdefault(r.day, [0] * n_steps)[r.step - 1] = int(r.persons)
    out = []
    for offset in range((stop - start).days + 1):
        day = start + timedelta(days=offset)
        out.append(EntryDay(date=day, users=users.get(day, [0] * n_steps)))
    return out
