"""Planning the metrics service's array-driven statements for their arguments.

The statements that take a batch's (project, person, window) arrays and join them to large
tables are prepared statements: after five runs PostgreSQL may switch to a generic plan, made
without the arrays' sizes and contents, that joins whole tables (seconds per batch instead of
milliseconds, measured on the sessions windows). Inside `custom_plans` they are planned for
their arguments, and only they: the setting is back to the default after the block. (If the
block raises, the transaction is lost anyway, and SET LOCAL with it.)

`planned_for` asks for them only for a batch of PLANNED_FROM_ROWS rows or more. A smaller batch
gets PostgreSQL's usual choice: its arrays are small enough for the generic plan, and planning
costs more than it saves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

import asyncpg

CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
USUAL_PLANS = "SET LOCAL plan_cache_mode TO DEFAULT"

# Measured on the activity rollup's and retention's batch statements (the `metrics_apply`
# workload, tables of 260k events): generic plans took no longer than custom ones from 60 to
# 4,000 rows, and planning them took 2-5 ms of a 60-event batch's 40-60 ms. At 32,000 rows the
# generic plans took 1.3-2.2 times as long, and 6 s against 0.1 s at 50,000 on 1M events.
PLANNED_FROM_ROWS = 500


@asynccontextmanager
async def custom_plans(conn: asyncpg.Connection) -> AsyncIterator[None]:
    await conn.execute(CUSTOM_PLANS)
    yield
    await conn.execute(USUAL_PLANS)


def planned_for(conn: asyncpg.Connection, rows: int) -> AbstractAsyncContextManager[None]:
    """`custom_plans` for a batch of `rows` rows or more; PostgreSQL's usual choice below."""
    return custom_plans(conn) if rows >= PLANNED_FROM_ROWS else nullcontext()
