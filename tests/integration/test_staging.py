"""Staged rows live until the transaction commits (services/metrics/staging.py); staging outside
a transaction is refused, since the commit would empty the table before any statement read it."""

from __future__ import annotations

import pytest

from services.metrics.staging import StagedTable, stage
from tests.support.store_db import Db

TABLE = StagedTable("staged_test_rows", "n int")


async def test_staged_rows_are_there_for_the_transaction_and_gone_after(db: Db) -> None:
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            await stage(conn, TABLE, [(1,), (2,)])
            assert await conn.fetchval(f"SELECT sum(n) FROM {TABLE.name}") == 3
            await stage(conn, TABLE, [(5,)])  # a second use in one transaction starts empty
            assert await conn.fetchval(f"SELECT sum(n) FROM {TABLE.name}") == 5
        assert await conn.fetchval(f"SELECT count(*) FROM {TABLE.name}") == 0


async def test_staging_outside_a_transaction_is_refused(db: Db) -> None:
    async with db.pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="stage it in a transaction"):
            await stage(conn, TABLE, [(1,)])
