"""The per-value stickiness trigger counts a person's days of a period through the person's
index, whatever PostgreSQL's statistics say of values and persons (migration 0026).

For each (person, value, period) a statement changes, the trigger counts the person's rows of
that value in the period. Migration 0025's trigger could read them through the primary key
(project_id, key, value, day, person_id), the person only a filter: every person's rows of the
value in the period, for each lookup. It did after `make bench`'s earlier benchmarks had filled
the database. Statistics in which a value looks rarer than a person bring that plan back here:
with 0025's trigger, this test fails.
"""

from __future__ import annotations

import pytest

from tests.support.explained import NestedLoopsOnly, index_scans
from tests.support.store_db import Db, new_project

# A database of its own: the statistics are of this module's rows only.
pytestmark = pytest.mark.private_db

INSERT_VALUES = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT $1, 'plan', {value}, date '2026-03-01' + d, $2 || p, 1
FROM generate_series(1, $3) AS p, generate_series(0, $4) AS d
"""


async def test_the_stickiness_trigger_counts_a_persons_days_through_their_index(db: Db) -> None:
    # Another project with 20 persons and a value per row: known to ANALYZE, a value looks
    # rarer than a person, and the primary key's range of a value the cheaper read (it is
    # index-only, too).
    other = INSERT_VALUES.format(value="'v' || (p * 1000 + d)")
    await db.pool.execute(other, await new_project(db.pool), "q", 20, 999)
    await db.pool.execute("ANALYZE person_day_values")
    # This project's 2,000 persons all carry the null group, 21 days of March.
    project_id = await new_project(db.pool)
    await db.pool.execute(INSERT_VALUES.format(value="''"), project_id, "p", 2000, 20)
    inserting = NestedLoopsOnly(db, "INSERT INTO stickiness_value_periods")
    async with inserting as conn:
        await conn.execute(
            "INSERT INTO person_day_values (project_id, key, value, day, person_id, events)"
            " SELECT $1, 'plan', '', date '2026-03-25', 'p' || p, 1 FROM generate_series(1, 50) p",
            project_id,
        )
    scans = [s for plan in inserting.plans for s in index_scans(plan, "person_day_values")]
    assert scans  # the statement ran and counted through an index
    assert {s["Index Name"] for s in scans} == {"ix_person_day_values_project_id_person_id_day"}
    # Each lookup reads the person's own days of the period: 21 of March, plus the new one.
    assert all(s["Actual Rows"] + s.get("Rows Removed by Filter", 0) <= 22 for s in scans)
    histogram = await db.pool.fetch(
        "SELECT active_days, persons FROM stickiness_value_periods WHERE project_id = $1"
        " AND kind = 'month' AND persons <> 0 ORDER BY active_days",
        project_id,
    )
    assert [(r["active_days"], r["persons"]) for r in histogram] == [(21, 1950), (22, 50)]
