"""The per-value activity trigger reads each changed row once, however PostgreSQL plans it
(migration 0023).

Its statement takes a person's other days from `person_day_values` and leaves the changed rows
out. As migration 0021 wrote it, by `NOT EXISTS` over the changed rows, which have no index: a
project the table's statistics did not know yet got a nested loop that read every changed row
again for each row of the table (50,000 rows: 1.25 billion comparisons, over 120 s). Here the
connection may join only by nested loops, the plan a misestimate leads to, and `auto_explain`
sends back the trigger's executed plans: no scan of the changed rows may run more than once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson

from tests.support.store_db import Db, new_project

PERSONS = 200

INSERT_DAYS = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT $1, 'plan', 'v' || (p % 2), date '2026-03-01' + d, 'p' || p, 1
FROM generate_series(1, $2) AS p, generate_series($3::int, $4::int) AS d
"""


def _changed_row_scans(plan: dict[str, Any]) -> Iterator[int]:
    """The loops of each scan of the statement's changed rows (its CTE `changed`)."""
    if plan.get("Node Type") == "CTE Scan" and plan.get("CTE Name") == "changed":
        yield plan["Actual Loops"]
    for child in plan.get("Plans", []):
        yield from _changed_row_scans(child)


async def _trigger_plans(db: Db, statement: str, *args: object) -> list[dict[str, Any]]:
    """Run `statement` with nested loops as the only joins; the executed plans of the activity
    trigger's statements it fired."""
    plans: list[dict[str, Any]] = []

    def keep_plan(_: asyncpg.Connection, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message
        if text.startswith("duration:") and "plan:" in text:
            explained = orjson.loads(text.split("plan:", 1)[1])
            if "INSERT INTO activity_value_daily" in explained["Query Text"]:
                plans.append(explained["Plan"])

    conn = await asyncpg.connect(
        db.url, server_settings={"enable_hashjoin": "off", "enable_mergejoin": "off"}
    )
    try:
        conn.add_log_listener(keep_plan)
        await conn.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
            "SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on; "
            "SET auto_explain.log_timing = off; SET auto_explain.log_format = json; "
            "SET client_min_messages = log"
        )
        await conn.execute(statement, *args)
    finally:
        conn.remove_log_listener(keep_plan)
        await conn.close()
    return plans


async def test_inserted_and_deleted_values_are_each_read_once(db: Db) -> None:
    project_id = await new_project(db.pool)
    await db.pool.execute(INSERT_DAYS, project_id, PERSONS, 0, 9)  # days the persons already had
    inserted = await _trigger_plans(db, INSERT_DAYS, project_id, PERSONS, 10, 14)
    deleted = await _trigger_plans(
        db,
        "DELETE FROM person_day_values WHERE project_id = $1 AND day >= date '2026-03-08'",
        project_id,
    )
    for plans in (inserted, deleted):
        assert plans  # the trigger ran, and its plan came back
        loops = [n for plan in plans for n in _changed_row_scans(plan)]
        assert loops and set(loops) == {1}
    # And the rollup is still the image of the rows (the property test checks every shape).
    dau = await db.pool.fetch(
        "SELECT day, sum(dau) AS dau FROM activity_value_daily WHERE project_id = $1 AND dau > 0"
        " GROUP BY day ORDER BY day",
        project_id,
    )
    assert [r["dau"] for r in dau] == [PERSONS] * 7
