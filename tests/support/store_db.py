"""Direct access to the migrated PostgreSQL for tests that drive the metrics Store themselves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Db:
    pool: asyncpg.Pool  # what the metrics Store writes with
    engine: AsyncEngine  # what the gateway's queries read with
    url: str  # DATABASE_URL, for services started on it


async def new_project(pool: asyncpg.Pool, timezone: str = "UTC") -> int:
    """A fresh project row, so each generated example has numbers of its own."""
    tag = uuid.uuid4().hex
    return int(
        await pool.fetchval(
            "INSERT INTO projects (name, timezone, write_key, read_key) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            f"store-test-{tag}",
            timezone,
            f"pw_{tag}",
            f"pr_{tag}",
        )
    )


class OneConnection:
    """A pool of one connection, the test's own: a pool's connections may not keep the log
    listener that receives the plans when they are released."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn
