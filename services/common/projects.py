"""Project lookup by key, cached for a short TTL so auth costs no database round trip per request.

A new project's key works, and a rotated key stops working, within `project_cache_seconds`.

While PostgreSQL cannot be reached, the keys last loaded keep working (a refresh is tried again
once per TTL): the ingest keeps putting events into Kafka, which is all an acknowledgement
promises, and the metrics service applies them when the database is back. The price is that a
key rotated just before an outage works until the database answers again. Before the first load
there is nothing to serve from: requests get 503 `database_unavailable`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.http import ApiError
from services.common.logging import get_logger
from services.common.tables import projects

log = get_logger(__name__)

LOAD_TIMEOUT_SECONDS = 2.0  # an unreachable host must not hold requests for a connect timeout


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    timezone: str
    write_key: str
    read_key: str


class ProjectDirectory:
    """All projects in memory, reloaded at most every `ttl` seconds (projects are few)."""

    def __init__(self, engine: AsyncEngine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._loaded_at = float("-inf")
        self._failed_at = float("-inf")  # the last refresh that could not reach PostgreSQL
        self._refreshing = asyncio.Lock()
        # Indexed by a digest of the key: lookup time depends on the digest, not on how many
        # leading characters of a guessed key match a real one.
        self._by_write_key: dict[bytes, Project] = {}
        self._by_read_key: dict[bytes, Project] = {}
        self._by_id: dict[int, Project] = {}

    @property
    def loaded(self) -> bool:
        """Whether keys were ever loaded (and so can be served while PostgreSQL is away)."""
        return self._loaded_at > float("-inf")

    async def _refresh_if_stale(self, force: bool = False) -> None:
        now = time.monotonic()
        # After a failed refresh, the next is tried a TTL later, if there are keys to serve.
        backing_off = self.loaded and now - self._failed_at < self._ttl
        if not force and (now - self._loaded_at < self._ttl or backing_off):
            return
        requested_at = now
        # One refresh at a time: requests that waited for it use its result.
        async with self._refreshing:
            if self._loaded_at >= requested_at or (self.loaded and self._failed_at >= requested_at):
                return
            try:
                async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
                    await self._load()
            except (OSError, TimeoutError, SQLAlchemyError) as exc:
                self._failed_at = time.monotonic()
                if not self.loaded:
                    raise ApiError(
                        503,
                        "database_unavailable",
                        "project keys cannot be read right now; retry",
                        {"Retry-After": "5"},
                    ) from exc
                log.warning(
                    "project_keys_stale",
                    error=type(exc).__name__,
                    age_seconds=round(self._failed_at - self._loaded_at, 1),
                )

    async def _load(self) -> None:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(projects))).mappings().all()
        loaded = [
            Project(r["id"], r["name"], r["timezone"], r["write_key"], r["read_key"]) for r in rows
        ]
        self._by_write_key = {_digest(p.write_key): p for p in loaded}
        self._by_read_key = {_digest(p.read_key): p for p in loaded}
        self._by_id = {p.id: p for p in loaded}
        self._loaded_at = time.monotonic()

    async def by_write_key(self, key: str) -> Project | None:
        await self._refresh_if_stale()
        return self._by_write_key.get(_digest(key))

    async def by_read_key(self, key: str) -> Project | None:
        await self._refresh_if_stale()
        return self._by_read_key.get(_digest(key))

    async def by_id(self, project_id: int) -> Project | None:
        await self._refresh_if_stale()
        if project_id not in self._by_id:
            await self._refresh_if_stale(force=True)
        return self._by_id.get(project_id)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
