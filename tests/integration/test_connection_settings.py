"""The services' connections never JIT-compile a statement.

Pulse's statements work on a batch's or a read's rows, thousands, but unnest and generate_series
give PostgreSQL estimates past `jit_above_cost`: the activity rollup's statement on a
50,000-event batch spent 0.8 s compiling for 0.13 s of work. `SERVER_SETTINGS`
(services/common/db.py) turns JIT off on every connection the services open. Here every statement
of a batch is made a JIT candidate (`jit_above_cost = 0`): with the services' settings none is
compiled; without them (on a server that can JIT at all) some are, so the check would see it.
"""

from __future__ import annotations

from sqlalchemy import text

from services.common.db import SERVER_SETTINGS, create_engine, create_pool
from services.common.settings import CommonSettings
from tests.support.store_db import Db, apply_explained, new_project, one_day_events


async def _compiled(db: Db, server_settings: dict[str, str]) -> list[str]:
    """The statements of one batch that PostgreSQL JIT-compiled, every statement a candidate."""
    events = one_day_events(await new_project(db.pool), 20, 5)
    plans = await apply_explained(
        db,
        events,
        "connection-settings",
        analyze=True,
        server_settings={**server_settings, "jit_above_cost": "0"},
    )
    assert plans
    return [query for query, explained in plans if "JIT" in explained]


async def test_no_statement_of_a_batch_is_jit_compiled(db: Db) -> None:
    assert await _compiled(db, SERVER_SETTINGS) == []
    if await db.pool.fetchval("SELECT pg_jit_available()"):
        assert await _compiled(db, {}) != []


async def test_the_metrics_pool_and_the_gateway_engine_connect_with_jit_off(db: Db) -> None:
    pool = await create_pool(db.url)
    try:
        assert await pool.fetchval("SHOW jit") == "off"
    finally:
        await pool.close()
    engine = create_engine(CommonSettings(DATABASE_URL=db.url))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW jit"))).scalar_one() == "off"
    finally:
        await engine.dispose()
