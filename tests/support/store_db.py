"""Direct access to the migrated PostgreSQL for tests that drive the metrics Store themselves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.events import EventRecord
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.explained import explaining


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


def one_day_events(project_id: int, count: int, persons: int) -> list[EventRecord]:
    """`count` "Home" track events of `persons` users (u0, u1, ...) in turn, a second apart on
    2026-03-02."""
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    return [
        EventRecord(
            project_id=project_id,
            message_id=str(uuid.uuid4()),
            received_at=datetime.now(UTC),
            timestamp=at + timedelta(seconds=n),
            type="track",
            event="Home",
            user_id=f"u{n % persons}",
        )
        for n in range(count)
    ]


class OneConnection:
    """A pool of one connection, the caller's own: a pool's connections may not keep the log
    listener that receives the plans when they are released."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn


async def apply_explained(
    db: Db,
    events: list[EventRecord],
    consumer_group: str,
    breakdown_keys: Sequence[str] = (),
    *,
    analyze: bool = False,
    server_settings: dict[str, str] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Apply one batch through the real Store on a connection of its own, with `auto_explain`
    sending back each statement's plan (executed, with row counts, when `analyze`): the
    (query text, explain output) pairs in the order they ran; the plan is its "Plan", JIT
    compilation its "JIT"."""
    plans: list[tuple[str, dict[str, Any]]] = []

    def keep(explained: dict[str, Any]) -> None:
        plans.append((explained["Query Text"], explained))

    conn = await asyncpg.connect(db.url, server_settings=server_settings)
    try:
        async with explaining(conn, keep, analyze=analyze):
            store = Store(OneConnection(conn), consumer_group, breakdown_keys)
            await store.apply(ParsedBatch(events=events), {})
    finally:
        await conn.close()
    return plans
