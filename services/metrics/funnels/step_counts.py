"""Keeping the funnel step counts (migration 0012) the exact image of `funnel_attempts`.

An attempt of day d and depth k is its person's best attempt for exactly the ranges
[from, to] with `prior_day < from <= d <= to < deeper_day` (the person's latest earlier entry
day with an attempt at least k deep, and their earliest later entry day with a deeper one), so
the step counts hold each attempt under those two days, and a read sums the rows that pass the
test for its range (services/gateway/queries/funnels.py). A change of one attempt can move
the days of the person's other attempts, so whenever a batch replaces some of a person's
attempts, `shift` subtracts all of that person's contributions as stored and adds them as they
will be, before the replacement: contributions that did not move cancel out before anything
is written, the rest are added per key in key order (concurrent consumers lock rows in one
order), and rows that fall to zero are dropped.
"""

from __future__ import annotations

from datetime import date

import asyncpg

from services.common.funnels import MAX_STEPS
from services.metrics.funnels.evaluate import Attempt
from services.metrics.plans import custom_plans

# `attempts` (sign, funnel_id, person_id, day, depth, seconds) -> each attempt's two days, then
# one row per step it reached with that step's seconds (step 1: 0), summed into the counts.
# The two days come from running extremes per depth over the person's attempts in day order
# (both frames start at the partition's edge, so each is one pass), then the attempt's depth
# picks its own: linear in a person's entry days, however many years they span.
PRIOR = ",\n               ".join(
    f"max(day) FILTER (WHERE depth >= {k}) OVER earlier" for k in range(1, MAX_STEPS + 1)
)
DEEPER = ",\n               ".join(
    f"min(day) FILTER (WHERE depth > {k}) OVER later" for k in range(1, MAX_STEPS + 1)
)
PLACE = f"""
placed AS (
    SELECT sign, funnel_id, day, depth, seconds,
           coalesce((ARRAY[
               {PRIOR}
           ])[depth], '-infinity') AS prior_day,
           coalesce((ARRAY[
               {DEEPER}
           ])[depth], 'infinity') AS deeper_day
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

# $1..$4: the (funnel, person, first day, last day) windows REPLACE_ATTEMPTS (maintain.py) is
# about to rewrite (NULL days: all); $5..$9: the attempts it will write there. Each touched
# person's attempts now count -1, their attempts after the replacement +1.
SHIFT = f"""
WITH touched AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::date[])
        AS w(funnel_id, person_id, lo, hi)
),
stored AS (  -- per person through the primary key, never a scan of the funnel's attempts
    SELECT w.funnel_id, w.person_id, f.day, f.depth, f.seconds,
           f.day BETWEEN coalesce(w.lo, '-infinity'::date)
                     AND coalesce(w.hi, 'infinity'::date) AS replaced
    FROM touched w
    CROSS JOIN LATERAL (
        SELECT day, depth, seconds FROM funnel_attempts
        WHERE funnel_id = w.funnel_id AND person_id = w.person_id
        OFFSET 0  -- kept a subquery: the planner would sort the whole table to merge it
    ) f
),
attempts AS (
    SELECT -1 AS sign, funnel_id, person_id, day, depth, seconds FROM stored
    UNION ALL
    SELECT 1, funnel_id, person_id, day, depth, seconds FROM stored WHERE NOT replaced
    UNION ALL
    SELECT 1, funnel_id, person_id, day, depth, CAST(seconds AS int[])
    FROM unnest($5::int[], $6::text[], $7::date[], $8::int[], $9::text[])
        AS n(funnel_id, person_id, day, depth, seconds)
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
    SELECT 1 AS sign, funnel_id, person_id, day, depth, seconds
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
