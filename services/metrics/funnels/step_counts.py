"""Keeping the funnel step counts (migration 0012) the exact image of `funnel_attempts`.

An attempt of day d and depth k is its person's best attempt for exactly the ranges
[from, to] with `prior_day < from <= d <= to < deeper_day` (the person's latest earlier entry
day with an attempt at least k deep, and their earliest later entry day with a deeper one), so
the step counts hold each attempt under those two days, and a read sums the rows that pass the
test for its range (services/gateway/queries/funnels.py). A change of one attempt can move
the days of the person's other attempts, so whenever a batch replaces some of a person's
attempts, `shift` subtracts all of that person's contributions as stored and adds them as they
will be, in one statement before the replacement; contributions that did not move cancel out
before anything is written (`funnel_steps_add`, migration 0012).
"""

from __future__ import annotations

from datetime import date

import asyncpg

from services.metrics.funnels.evaluate import Attempt
from services.metrics.plans import custom_plans

# `attempts` (sign, funnel_id, person_id, day, depth, seconds) -> each attempt's two days, then
# one row per step it reached with that step's seconds (step 1: 0), summed into the counts.
# A person has at most a few hundred entry days, so pairing their attempts is cheap.
PLACE = """
placed AS (
    SELECT a.sign, a.funnel_id, a.day, a.depth, a.seconds,
           coalesce(max(b.day) FILTER (WHERE b.day < a.day AND b.depth >= a.depth),
                    '-infinity') AS prior_day,
           coalesce(min(b.day) FILTER (WHERE b.day > a.day AND b.depth > a.depth),
                    'infinity') AS deeper_day
    FROM attempts a
    JOIN attempts b
      ON b.sign = a.sign AND b.funnel_id = a.funnel_id AND b.person_id = a.person_id
    GROUP BY a.sign, a.funnel_id, a.person_id, a.day, a.depth, a.seconds
),
steps AS (
    SELECT p.funnel_id, CAST(s.step AS int) AS step, p.day, p.prior_day, p.deeper_day,
           s.seconds, p.sign
    FROM placed p CROSS JOIN LATERAL unnest(p.seconds) WITH ORDINALITY AS s(seconds, step)
    WHERE s.step <= p.depth
)
SELECT funnel_steps_add(array_agg(funnel_id), array_agg(step), array_agg(day),
                        array_agg(prior_day), array_agg(deeper_day), array_agg(seconds),
                        array_agg(sign))
FROM steps
"""

# $1..$4: the (funnel, person, first day, last day) windows REPLACE_ATTEMPTS (maintain.py) is
# about to rewrite (NULL days: all); $5..$9: the attempts it will write there. Each touched
# person's attempts now count -1, their attempts after the replacement +1.
SHIFT = f"""
WITH touched AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::date[])
        AS w(funnel_id, person_id, lo, hi)
),
stored AS (
    SELECT f.funnel_id, f.person_id, f.day, f.depth, f.seconds,
           f.day BETWEEN coalesce(w.lo, '-infinity'::date)
                     AND coalesce(w.hi, 'infinity'::date) AS replaced
    FROM touched w
    JOIN funnel_attempts f ON f.funnel_id = w.funnel_id AND f.person_id = w.person_id
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
{PLACE}"""

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
{PLACE}"""

Window = tuple[int, str, date | None, date | None]  # funnel, person, first, last day (None: all)
Found = tuple[int, str, date, Attempt]  # funnel, person, entry day, that day's best attempt


async def shift(conn: asyncpg.Connection, windows: list[Window], found: list[Found]) -> None:
    """Move the touched persons' contributions from their stored attempts to theirs once
    `found` replaces `windows`. Call before the replacement, in its transaction."""
    async with custom_plans(conn):
        await conn.execute(
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


def seconds_literal(attempt: Attempt) -> str:
    """The attempt's seconds as a PostgreSQL array literal."""
    return "{" + ",".join(map(str, attempt.seconds)) + "}"


async def refill(conn: asyncpg.Connection, funnel_id: int) -> None:
    """Recompute funnel `funnel_id`'s counts from its stored attempts."""
    async with conn.transaction():
        await conn.execute(CLEAR, funnel_id)
        await conn.execute(FILL, funnel_id)
