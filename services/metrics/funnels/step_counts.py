"""Keeping the funnel step counts (migration 0012) the exact image of `funnel_attempts`.

An attempt of day d and depth k is its person's best attempt for exactly the ranges
[from, to] with `prior_day < from <= d <= to < deeper_day` (the person's latest earlier entry
day with an attempt at least k deep, and their earliest later entry day with a deeper one), so
the step counts hold each attempt under those two days, and a read sums the rows that pass the
test for its range (services/gateway/queries/funnels.py). A change of one attempt can move
the days of the person's other attempts, so whenever a batch replaces some of a person's
attempts, `shift` subtracts the contributions of every attempt that can move as stored and adds
them as they will be, before the replacement (SHIFT says which can move): contributions that
did not move cancel out before anything is written, the rest are added per key in key order
(concurrent consumers lock rows in one order), and rows that fall to zero are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import asyncpg

from services.common.funnels import MAX_STEPS
from services.metrics.funnels.evaluate import Attempt
from services.metrics.plans import custom_plans


def per_level(aggregate: Callable[[int], str]) -> str:
    """`ARRAY[aggregate(1), ..., aggregate(MAX_STEPS)]`: one per depth; `[depth]` picks its own."""
    return "ARRAY[" + ", ".join(aggregate(k) for k in range(1, MAX_STEPS + 1)) + "]"


# `attempts` (sign, funnel_id, person_id, day, depth, seconds, before_day) -> each attempt's two
# days, then one row per step it reached with that step's seconds (step 1: 0), summed into the
# counts. The two days come from running extremes per depth over the attempts given in day order
# (both frames start at the partition's edge, so each is one pass), then the attempt's depth
# picks its own. `before_day` is the prior day when none of the given attempts is: the person's
# latest attempt at least that deep among those left out, earlier than all given (NULL: none).
PRIOR = per_level(lambda k: f"max(day) FILTER (WHERE depth >= {k}) OVER earlier")
DEEPER = per_level(lambda k: f"min(day) FILTER (WHERE depth > {k}) OVER later")
PLACE = f"""
placed AS (
    SELECT sign, funnel_id, day, depth, seconds,
           coalesce(({PRIOR})[depth], before_day, '-infinity') AS prior_day,
           coalesce(({DEEPER})[depth], 'infinity') AS deeper_day
    FROM attempts
    WINDOW earlier AS (PARTITION BY sign, funnel_id, person_id COLLATE "C" ORDER BY day
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
           later AS (PARTITION BY sign, funnel_id, person_id COLLATE "C" ORDER BY day DESC
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
steps AS (
    SELECT p.funnel_id, CAST(s.step AS int) AS step, p.day, p.prior_day, p.deeper_day,
           CAST(s.seconds AS int) AS seconds, p.sign
    FROM placed p CROSS JOIN LATERAL unnest(p.seconds) WITH ORDINALITY AS s(seconds, step)
    WHERE s.step <= p.depth
)"""

# Both grains of `steps`, summed per key (step 1's seconds are all 0: the bucket grain only).
BUCKET_SUMS = """
SELECT funnel_id, step, day, prior_day, deeper_day, funnel_seconds_bucket(seconds) AS bucket,
       sum(sign) AS persons
FROM steps
GROUP BY 1, 2, 3, 4, 5, 6"""

SECOND_SUMS = """
SELECT funnel_id, step, funnel_seconds_bucket(seconds) AS bucket, day, prior_day, deeper_day,
       seconds, sum(sign) AS persons
FROM steps
WHERE step > 1
GROUP BY 1, 2, 3, 4, 5, 6, 7"""

# Per depth k: the latest day at least k deep, and the first day deeper than k (of one sign).
LATEST = per_level(lambda k: f"max(day) FILTER (WHERE depth >= {k})")


def first_deeper(sign: int) -> str:
    return per_level(lambda k: f"min(day) FILTER (WHERE sign = {sign} AND depth > {k})")


# $1..$4: the (funnel, person, first day, last day) windows REPLACE_ATTEMPTS (maintain.py) is
# about to rewrite (NULL days: all); $5..$9: the attempts it will write there. The attempts whose
# two days can move count -1 as stored and +1 as they will be: the replaced ones and those after
# them (their prior day can move), and, before the window, only those whose deeper day can: the
# ones after the person's latest attempt deeper than a depth whose first deeper day from the
# window on changes (`tail`). The attempts left out before them give the prior days
# (`before_day`): so a batch reads whole histories only as aggregates.
SHIFT = f"""
WITH touched AS (
    SELECT funnel_id, person_id, coalesce(lo, '-infinity'::date) AS lo,
           coalesce(hi, 'infinity'::date) AS hi
    FROM unnest($1::int[], $2::text[], $3::date[], $4::date[]) AS w(funnel_id, person_id, lo, hi)
),
inside AS (  -- per person through the primary key, never a scan of the funnel's attempts
    SELECT w.funnel_id, w.person_id, f.day, f.depth, f.seconds, f.day <= w.hi AS replaced
    FROM touched w
    CROSS JOIN LATERAL (
        SELECT day, depth, seconds FROM funnel_attempts
        WHERE funnel_id = w.funnel_id AND person_id = w.person_id AND day >= w.lo
        OFFSET 0  -- kept a subquery: the planner would sort the whole table to merge it
    ) f
),
states AS (
    SELECT -1 AS sign, funnel_id, person_id, day, depth, seconds FROM inside
    UNION ALL
    SELECT 1, funnel_id, person_id, day, depth, seconds FROM inside WHERE NOT replaced
    UNION ALL
    SELECT 1, funnel_id, person_id, day, depth, CAST(seconds AS int[])
    FROM unnest($5::int[], $6::text[], $7::date[], $8::int[], $9::text[])
        AS n(funnel_id, person_id, day, depth, seconds)
),
firsts AS (  -- per person (grouped, not joined: estimates here are poor), from the window on
    SELECT funnel_id, person_id, max(lo) AS lo, {first_deeper(-1)} AS old,
           {first_deeper(1)} AS new
    FROM (SELECT sign, funnel_id, person_id, day, depth, NULL::date AS lo FROM states
          UNION ALL
          SELECT 0, funnel_id, person_id, NULL, NULL, lo FROM touched) AS x
    GROUP BY funnel_id, person_id
),
reach AS (
    SELECT f.funnel_id, f.person_id, f.lo, b.latest,
           coalesce((SELECT min(coalesce(b.latest[k + 1], '-infinity'))
                     FROM generate_series(1, {MAX_STEPS}) AS k
                     WHERE f.old[k] IS DISTINCT FROM f.new[k]), f.lo) AS tail
    FROM firsts f
    CROSS JOIN LATERAL (
        SELECT {LATEST} AS latest FROM funnel_attempts
        WHERE funnel_id = f.funnel_id AND person_id = f.person_id AND day < f.lo
    ) b
),
attempts AS (
    SELECT s.*,
           CASE WHEN r.latest[s.depth] IS NOT NULL THEN least(r.latest[s.depth], r.tail) END
               AS before_day
    FROM (
        SELECT * FROM states
        UNION ALL
        SELECT sign, r.funnel_id, r.person_id, f.day, f.depth, f.seconds
        FROM reach r
        CROSS JOIN LATERAL (
            SELECT day, depth, seconds FROM funnel_attempts
            WHERE funnel_id = r.funnel_id AND person_id = r.person_id
              -- tail < day < lo, spelled so that only the primary key can serve it: the index
              -- by day would read every person's attempts of those days
              AND (person_id, day) > (r.person_id, r.tail)
              AND (person_id, day) < (r.person_id, r.lo)
            OFFSET 0
        ) f
        CROSS JOIN (VALUES (-1), (1)) AS v(sign)
    ) s
    JOIN reach r ON r.funnel_id = s.funnel_id AND r.person_id = s.person_id
),
{PLACE},
bucket_deltas AS ({BUCKET_SUMS}
    HAVING sum(sign) <> 0
),
second_deltas AS ({SECOND_SUMS}
    HAVING sum(sign) <> 0
),
buckets AS (
    INSERT INTO funnel_step_buckets AS h
        (funnel_id, step, day, prior_day, deeper_day, bucket, persons)
    SELECT * FROM bucket_deltas ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (funnel_id, step, day, prior_day, deeper_day, bucket) DO UPDATE
    SET persons = h.persons + excluded.persons
    RETURNING h.*
),
seconds AS (
    INSERT INTO funnel_step_seconds AS h
        (funnel_id, step, bucket, day, prior_day, deeper_day, seconds, persons)
    SELECT * FROM second_deltas ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (funnel_id, step, bucket, day, prior_day, deeper_day, seconds) DO UPDATE
    SET persons = h.persons + excluded.persons
    RETURNING h.*
)
-- The keys that fell to zero (seconds NULL: the bucket grain), for DROP_EMPTY.
SELECT funnel_id, step, day, prior_day, deeper_day, bucket, NULL::int AS seconds
FROM buckets WHERE persons = 0
UNION ALL
SELECT funnel_id, step, day, prior_day, deeper_day, bucket, seconds
FROM seconds WHERE persons = 0
"""

DROP_EMPTY = """
WITH k AS (
    SELECT * FROM unnest($1::int[], $2::int[], $3::date[], $4::date[], $5::date[], $6::int[],
                         $7::int[])
        AS k(funnel_id, step, day, prior_day, deeper_day, bucket, seconds)
),
buckets AS (
    DELETE FROM funnel_step_buckets h USING k
    WHERE k.seconds IS NULL AND h.funnel_id = k.funnel_id AND h.step = k.step
      AND h.day = k.day AND h.prior_day = k.prior_day AND h.deeper_day = k.deeper_day
      AND h.bucket = k.bucket AND h.persons = 0
)
DELETE FROM funnel_step_seconds h USING k
WHERE h.funnel_id = k.funnel_id AND h.step = k.step AND h.bucket = k.bucket
  AND h.day = k.day AND h.prior_day = k.prior_day AND h.deeper_day = k.deeper_day
  AND h.seconds = k.seconds AND h.persons = 0
"""

# The counts of funnel $1 from scratch, from its stored attempts, once CLEAR has emptied them
# (for writers that bypass maintain.py: tests that insert attempts directly).
CLEAR = """
WITH buckets AS (DELETE FROM funnel_step_buckets WHERE funnel_id = $1)
DELETE FROM funnel_step_seconds WHERE funnel_id = $1
"""

FILL = f"""
WITH attempts AS (
    SELECT 1 AS sign, funnel_id, person_id, day, depth, seconds, NULL::date AS before_day
    FROM funnel_attempts WHERE funnel_id = $1
),
{PLACE},
buckets AS (
    INSERT INTO funnel_step_buckets
        (funnel_id, step, day, prior_day, deeper_day, bucket, persons)
    {BUCKET_SUMS}
)
INSERT INTO funnel_step_seconds
    (funnel_id, step, bucket, day, prior_day, deeper_day, seconds, persons)
{SECOND_SUMS}
"""

Window = tuple[int, str, date | None, date | None]  # funnel, person, first, last day (None: all)
Found = tuple[int, str, date, Attempt]  # funnel, person, entry day, that day's best attempt


async def shift(conn: asyncpg.Connection, windows: list[Window], found: list[Found]) -> None:
    """Move the touched persons' contributions from their stored attempts to theirs once
    `found` replaces `windows`. Call before the replacement, in its transaction."""
    async with custom_plans(conn):
        emptied = await conn.fetch(
            SHIFT,
            [w[0] for w in windows],
            [w[1] for w in windows],
            [w[2] for w in windows],
            [w[3] for w in windows],
            [f[0] for f in found],
            [f[1] for f in found],
            [f[2] for f in found],
            [f[3].depth for f in found],
            [seconds_literal(f[3]) for f in found],
        )
        if emptied:
            await conn.execute(DROP_EMPTY, *[list(c) for c in zip(*emptied, strict=True)])


def seconds_literal(attempt: Attempt) -> str:
    """The attempt's seconds as a PostgreSQL array literal."""
    return "{" + ",".join(map(str, attempt.seconds)) + "}"


async def refill(conn: asyncpg.Connection, funnel_id: int) -> None:
    """Recompute funnel `funnel_id`'s counts from its stored attempts."""
    async with conn.transaction():
        await conn.execute(CLEAR, funnel_id)
        await conn.execute(FILL, funnel_id)
