"""Fixtures for the integration tests that drive the metrics Store against the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.store_db import Db


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(stack_env: dict[str, str]) -> AsyncIterator[Db]:
    url = stack_env["DATABASE_URL"]
    pool = await asyncpg.create_pool(url)
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    yield Db(pool, engine)
    await pool.close()
    await engine.dispose()
