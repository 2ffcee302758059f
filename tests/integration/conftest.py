"""Fixtures for the integration tests that drive the metrics Store against the real database."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.store_db import Db


async def _connect(url: str) -> AsyncIterator[Db]:
    pool = await asyncpg.create_pool(url)
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    yield Db(pool, engine, url)
    await pool.close()
    await engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(request: pytest.FixtureRequest, stack_env: dict[str, str]) -> AsyncIterator[Db]:
    """The stack's database, shared with the services the HTTP tests start; or, for a module
    marked `private_db`, a migrated database of the module's own on the same server. Tests that
    walk funnel backfills themselves need their own: the shared pipeline's metrics service walks
    every running backfill of its database, and would take their jobs between a test's steps."""
    shared = stack_env["DATABASE_URL"]
    if request.node.get_closest_marker("private_db") is None:
        async for connected in _connect(shared):
            yield connected
        return
    name = f"pulse_private_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(shared)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(shared).set(database=name).render_as_string(hide_password=False)
    migrate = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "pulse"),
        "migrate",
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await migrate.wait() == 0
    try:
        async for connected in _connect(url):
            yield connected
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
