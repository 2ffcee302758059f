"""Property: funnel steps and entry days read from the step counts (migration 0012) equal those
computed from the stored attempts themselves, over every range, whatever replacements wrote them.

Writes attempts through the metrics service's own replacement (maintain.replace_attempts: the
step counts move, then the attempts are replaced), window by window as batches, merges and
backfills do, with depths and entry days drawn so that persons have earlier and later attempts
as deep, deeper and shallower (the two days that place an attempt), and seconds drawn around the
bucket boundaries, so the median's bucket lookup and its search inside the bucket meet every
shape: both middle positions in one bucket or two, at a bucket's first or last second, odd and
even counts. After the writes, the counts must equal a recomputation from scratch, with no rows
left at zero.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.common.funnels import FunnelDefinition, Step
from services.gateway.queries.funnels import FunnelStep, read_entry_days, read_funnel_steps
from services.metrics.funnels import step_counts
from services.metrics.funnels.evaluate import Attempt
from services.metrics.funnels.maintain import replace_attempts
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

FIRST_DAY = date(2026, 3, 2)
DAYS = 8
STEPS = 4
PERSONS = ["p0", "p1", "p2", "p3"]
DEFINITION = FunnelDefinition(
    name="counts", steps=[Step(event=f"e{i}") for i in range(STEPS)], window_seconds=7_776_000
)

COUNTS = """
SELECT 'buckets', funnel_id, step, day, prior_day, deeper_day, bucket, 0 AS seconds, persons
FROM funnel_step_buckets WHERE funnel_id = $1
UNION ALL
SELECT 'seconds', funnel_id, step, day, prior_day, deeper_day, bucket, seconds, persons
FROM funnel_step_seconds WHERE funnel_id = $1
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
"""

seconds = st.one_of(
    st.integers(0, 130),
    # Bucket boundaries of funnel_seconds_bucket, either side.
    st.sampled_from([0, 1, 2, 3, 4, 59, 60, 61, 3599, 3600, 3601, 86_399, 86_400, 7_776_000]),
    st.integers(0, 7_776_000),
)


@dataclass(frozen=True)
class Stored:
    depth: int
    seconds: tuple[int, ...]  # seconds[0] = 0


@st.composite
def attempts(draw: st.DrawFn) -> Stored:
    depth = draw(st.integers(1, STEPS))
    return Stored(depth, (0, *(draw(seconds) for _ in range(depth - 1))))


@dataclass(frozen=True)
class Write:
    """Replace `person`'s attempts on days [lo, hi] (None: all) with `new`."""

    person: str
    lo: int | None
    hi: int | None
    new: dict[int, Stored]  # day offset -> attempt


@st.composite
def writes(draw: st.DrawFn) -> Write:
    person = draw(st.sampled_from(PERSONS))
    if draw(st.booleans()):
        lo, hi = None, None
        days = range(DAYS)
    else:
        lo = draw(st.integers(0, DAYS - 1))
        hi = draw(st.integers(lo, min(DAYS - 1, lo + 3)))
        days = range(lo, hi + 1)
    new = {d: draw(attempts()) for d in days if draw(st.integers(0, 3))}
    return Write(person, lo, hi, new)


def _day(offset: int) -> date:
    return FIRST_DAY + timedelta(days=offset)


def _expected_steps(model: dict[tuple[str, int], Stored], lo: int, hi: int) -> list[FunnelStep]:
    """By definition: each person's best attempt in [lo, hi] (deepest, then earliest day)."""
    best: dict[str, Stored] = {}
    for person in PERSONS:
        mine = [(d, model[person, d]) for d in range(lo, hi + 1) if (person, d) in model]
        if mine:
            best[person] = min(mine, key=lambda da: (-da[1].depth, da[0]))[1]
    users = {i: sum(1 for a in best.values() if a.depth >= i) for i in range(1, STEPS + 1)}
    out = []
    for i in range(1, STEPS + 1):
        reached = [a.seconds[i - 1] for a in best.values() if a.depth >= i]
        previous = users[i - 1] if i > 1 else users[1]
        out.append(
            FunnelStep(
                event=f"e{i - 1}",
                users=users[i],
                conversion_from_start=_rate(users[i], users[1]),
                conversion_from_previous=_rate(users[i], previous),
                median_seconds_to_convert=(
                    round(float(statistics.median(reached)), 3) if i > 1 and reached else None
                ),
            )
        )
    return out


def _rate(part: int, whole: int) -> float | None:
    if not whole:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def _expected_entry_days(model: dict[tuple[str, int], Stored], lo: int, hi: int) -> list[list[int]]:
    return [
        [
            sum(1 for (_, d), a in model.items() if d == day and a.depth >= i)
            for i in range(1, STEPS + 1)
        ]
        for day in range(lo, hi + 1)
    ]


@database_examples(60)
@given(history=st.lists(writes(), min_size=1, max_size=8))
async def test_step_counts_read_as_the_attempts_they_count(db: Db, history: list[Write]) -> None:
    project_id = await new_project(db.pool)
    funnel_id = await db.pool.fetchval(
        "INSERT INTO funnels (project_id, name, definition, backfill)"
        " VALUES ($1, 'counts', $2::jsonb, 'complete') RETURNING id",
        project_id,
        DEFINITION.model_dump_json(),
    )
    model: dict[tuple[str, int], Stored] = {}
    for w in history:
        found = [
            (
                funnel_id,
                w.person,
                _day(d),
                Attempt(datetime.combine(_day(d), time(12), UTC), a.depth, list(a.seconds), None),
            )
            for d, a in w.new.items()
        ]
        window = (
            funnel_id,
            w.person,
            None if w.lo is None else _day(w.lo),
            None if w.hi is None else _day(w.hi),
        )
        async with db.pool.acquire() as conn, conn.transaction():
            await replace_attempts(conn, [window], found)
        for person, d in list(model):
            inside = (w.lo is None or w.lo <= d) and (w.hi is None or d <= w.hi)
            if person == w.person and inside:
                del model[person, d]
        model.update({(w.person, d): a for d, a in w.new.items()})

    events = [s.event for s in DEFINITION.steps]
    async with db.engine.connect() as conn:
        for lo in range(DAYS):
            for hi in range(lo, DAYS):
                steps = await read_funnel_steps(conn, funnel_id, events, _day(lo), _day(hi))
                assert steps == _expected_steps(model, lo, hi), (lo, hi)
                days = await read_entry_days(conn, funnel_id, STEPS, _day(lo), _day(hi))
                assert [d.users for d in days] == _expected_entry_days(model, lo, hi), (lo, hi)

    kept = await db.pool.fetch(COUNTS, funnel_id)
    assert all(r["persons"] > 0 for r in kept)
    async with db.pool.acquire() as conn:
        await step_counts.refill(conn, funnel_id)
    assert [tuple(r) for r in kept] == [tuple(r) for r in await db.pool.fetch(COUNTS, funnel_id)]
