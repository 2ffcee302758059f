"""Statements that replace rows read the rows they are given once, however PostgreSQL plans them.

Two statements find the stored rows that a set of new rows no longer holds: the per-value
activity trigger (migration 0023: a person's other days, without the changed ones) and the funnel
attempts' replacement (services/metrics/funnels/maintain.py: a window's attempts not found again).
Both once did it by `NOT EXISTS` over the new rows, which have no index. For the trigger, a
project the table's statistics did not know yet got a nested loop that read every changed row
again for each row of the table (50,000 rows: 1.25 billion comparisons, over 120 s). Here the
connection may join only by nested loops, the plan a misestimate leads to, and `auto_explain`
sends back the executed plans: no scan of the given rows may run more than once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from services.common.funnels import FunnelDefinition, Step
from services.metrics.funnels.evaluate import Attempt
from services.metrics.funnels.maintain import replace_attempts
from tests.support.explained import NestedLoopsOnly, plan_nodes
from tests.support.store_db import Db, new_project

PERSONS = 200
FIRST_DAY = date(2026, 3, 1)

INSERT_DAYS = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT $1, 'plan', 'v' || (p % 2), date '2026-03-01' + d, 'p' || p, 1
FROM generate_series(1, $2) AS p, generate_series($3::int, $4::int) AS d
"""


def _scans(plan: dict[str, Any], cte: str) -> Iterator[int]:
    """The loops of each scan of the CTE named `cte` (the rows the statement was given)."""
    for node in plan_nodes(plan):
        if node.get("Node Type") == "CTE Scan" and node.get("CTE Name") == cte:
            yield node["Actual Loops"]


def _each_read_once(plans: list[dict[str, Any]], cte: str) -> None:
    assert plans  # the statement ran, and its plan came back
    loops = [n for plan in plans for n in _scans(plan, cte)]
    assert loops and set(loops) == {1}


async def test_the_activity_trigger_reads_inserted_and_deleted_values_once(db: Db) -> None:
    project_id = await new_project(db.pool)
    await db.pool.execute(INSERT_DAYS, project_id, PERSONS, 0, 9)  # days the persons already had
    inserting = NestedLoopsOnly(db, "INSERT INTO activity_value_daily")
    async with inserting as conn:
        await conn.execute(INSERT_DAYS, project_id, PERSONS, 10, 14)
    _each_read_once(inserting.plans, "changed")
    deleting = NestedLoopsOnly(db, "INSERT INTO activity_value_daily")
    async with deleting as conn:
        await conn.execute(
            "DELETE FROM person_day_values WHERE project_id = $1 AND day >= date '2026-03-08'",
            project_id,
        )
    _each_read_once(deleting.plans, "changed")
    # And the rollup is still the image of the rows (the property test checks every shape).
    dau = await db.pool.fetch(
        "SELECT day, sum(dau) AS dau FROM activity_value_daily WHERE project_id = $1 AND dau > 0"
        " GROUP BY day ORDER BY day",
        project_id,
    )
    assert [r["dau"] for r in dau] == [PERSONS] * 7


async def test_replacing_funnel_attempts_reads_the_new_ones_once(db: Db) -> None:
    project_id = await new_project(db.pool)
    definition = FunnelDefinition(
        name="plans", steps=[Step(event="a"), Step(event="b")], window_seconds=86_400
    )
    funnel_id = await db.pool.fetchval(
        "INSERT INTO funnels (project_id, name, definition, backfill)"
        " VALUES ($1, 'plans', $2::jsonb, 'complete') RETURNING id",
        project_id,
        definition.model_dump_json(),
    )
    persons = [f"p{n}" for n in range(PERSONS)]
    days = [FIRST_DAY + timedelta(days=d) for d in range(10)]

    def attempts(kept: list[date]) -> list[tuple[int, str, date, Attempt]]:
        return [
            (funnel_id, p, d, Attempt(datetime.combine(d, time(12), UTC), 1, [], None))
            for p in persons
            for d in kept
        ]

    windows = [(funnel_id, p, days[0], days[-1]) for p in persons]
    async with db.pool.acquire() as conn, conn.transaction():
        await replace_attempts(conn, windows, attempts(days))
    replacing = NestedLoopsOnly(db, "DELETE FROM funnel_attempts")
    async with replacing as conn, conn.transaction():
        await replace_attempts(conn, windows, attempts(days[:4]))  # six days each gone
    _each_read_once(replacing.plans, "new")
    stored = await db.pool.fetch(
        "SELECT day, count(*) AS persons FROM funnel_attempts WHERE funnel_id = $1"
        " GROUP BY day ORDER BY day",
        funnel_id,
    )
    assert [(r["day"], r["persons"]) for r in stored] == [(d, PERSONS) for d in days[:4]]
