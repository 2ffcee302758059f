"""The batch statements that join a batch's arrays to large tables are planned for a large batch.

After five runs PostgreSQL may give a prepared statement its generic plan, made without the
arguments: an array parameter counts as ten rows. For retention's batch statement that plan
joined a batch's rows to each other by nested loops, about 6 s per batch of 50,000 events in
`make bench`'s 1M-event load; the activity rollup's statement reads the same rows the same way
(services/metrics/plans.py). Here the connection plans generically by default, as if PostgreSQL
had switched, and `auto_explain` sends each statement's plan back: both statements must still be
planned for the batch's real row count, from PLANNED_FROM_ROWS rows on. A smaller batch is left
to PostgreSQL's choice, here the generic plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from services.metrics.aggregates import retention, rollup
from services.metrics.plans import PLANNED_FROM_ROWS
from tests.support.explained import plan_nodes
from tests.support.store_db import Db, apply_explained, new_project, one_day_events

GENERIC_ROWS = 10.0  # the generic plan's estimate for an array parameter


def _unnest_rows(plan: dict[str, Any]) -> Iterator[float]:
    """The planner's row estimates of the batch's arrays: both statements unnest them `AS t`."""
    for node in plan_nodes(plan):
        if node.get("Node Type") == "Function Scan" and node.get("Alias") == "t":
            yield node["Plan Rows"]


async def _batch_estimates(db: Db, persons: int) -> dict[str, list[float]]:
    """The row estimates of the two statements' arrays for a batch of `persons` person-days
    (one event each), on a connection that plans generically by default."""
    events = one_day_events(await new_project(db.pool), persons, persons)
    # A startup setting, not a SET: `custom_plans` returns to the default after its block, and a
    # session's SET would not survive that.
    plans = await apply_explained(
        db, events, "batch-plans", server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    estimates = {query: list(_unnest_rows(explained["Plan"])) for query, explained in plans}
    return {
        statement: estimates[statement] for statement in [rollup.ADD_BATCH, retention.ADD_BATCH]
    }


async def test_a_large_batch_is_planned_for_its_rows(db: Db) -> None:
    for statement, rows in (await _batch_estimates(db, PLANNED_FROM_ROWS)).items():
        assert rows and set(rows) == {PLANNED_FROM_ROWS}, statement


async def test_a_small_batch_is_left_to_postgresql(db: Db) -> None:
    for statement, rows in (await _batch_estimates(db, PLANNED_FROM_ROWS - 1)).items():
        assert rows and set(rows) == {GENERIC_ROWS}, statement
