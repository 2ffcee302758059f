"""Project keys while PostgreSQL is away (services/common/projects.py): the keys last loaded keep
working; with none loaded yet, requests get 503 `database_unavailable`, never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from deploy.local.stack import free_port
from services.common.http import ApiError
from services.common.projects import ProjectDirectory
from tests.support.store_db import Db, new_project


async def test_keys_loaded_before_an_outage_keep_working(db: Db) -> None:
    project_id = await new_project(db.pool)
    write_key = await db.pool.fetchval("SELECT write_key FROM projects WHERE id = $1", project_id)
    engine = create_async_engine(db.url.replace("postgresql://", "postgresql+asyncpg://"))
    directory = ProjectDirectory(engine, ttl=0)
    assert (await directory.by_write_key(write_key)).id == project_id  # type: ignore[union-attr]

    await engine.dispose()
    # The same directory, its database now gone: every refresh fails.
    directory._engine = create_async_engine(f"postgresql+asyncpg://pulse@127.0.0.1:{free_port()}/x")
    found = await directory.by_write_key(write_key)

    assert found is not None and found.id == project_id
    assert await directory.by_write_key("pw_unknown") is None


async def test_no_keys_loaded_and_no_database_is_a_503() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://pulse@127.0.0.1:{free_port()}/x")
    directory = ProjectDirectory(engine, ttl=2)

    for _ in range(2):  # a second request, within the TTL, is refused alike (not a 401)
        with pytest.raises(ApiError) as refused:
            await directory.by_write_key("pw_any")
        assert (refused.value.status, refused.value.code) == (503, "database_unavailable")
