"""Project lookup by key, cached for a short TTL so auth costs no database round trip per request.

A new project's key works, and a rotated key stops working, within `project_cache_seconds`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.tables import projects


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
        self._refreshing = asyncio.Lock()
        # Indexed by a digest of the key: lookup time depends on the digest, not on how many
        # leading characters of a guessed key match a real one.
        self._by_write_key: dict[bytes, Project] = {}
        self._by_read_key: dict[bytes, Project] = {}
        self._by_id: dict[int, Project] = {}

    async def _refresh_if_stale(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self._ttl:
            return
        requested_at = time.monotonic()
        # One refresh at a time: requests that waited for it use its result.
        async with self._refreshing:
            if self._loaded_at >= requested_at:
                return
            await self._load()

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
