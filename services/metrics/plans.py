"""Planning the metrics service's array-driven statements for their arguments.

The statements that take a batch's (project, person, window) arrays and join them to large
tables are prepared statements: after five runs PostgreSQL may switch to a generic plan, made
without the arrays' sizes and contents, that joins whole tables (seconds per batch instead of
milliseconds, measured on the sessions windows). Inside `custom_plans` they are planned for
their arguments, and only they: the setting is back to the default after the block. (If the
block raises, the transaction is lost anyway, and SET LOCAL with it.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
USUAL_PLANS = "SET LOCAL plan_cache_mode TO DEFAULT"


@asynccontextmanager
async def custom_plans(conn: asyncpg.Connection) -> AsyncIterator[None]:
    await conn.execute(CUSTOM_PLANS)
    yield
    await conn.execute(USUAL_PLANS)
