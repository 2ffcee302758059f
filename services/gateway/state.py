"""What the gateway holds while it runs, built by the lifespan and closed in reverse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.projects import ProjectDirectory
from services.common.settings import GatewaySettings
from services.gateway.queries.freshness import Freshness, LagProbe, read_freshness

T = TypeVar("T")


@dataclass
class GatewayState:
    settings: GatewaySettings
    engine: AsyncEngine
    projects: ProjectDirectory
    lag: LagProbe
    draining: bool = False

    async def read_fresh(
        self, project_id: int, read: Callable[[AsyncConnection], Awaitable[T]]
    ) -> tuple[T, Freshness]:
        """A read and the project's freshness, which every read carries (SPEC §4), on one
        connection."""
        async with self.engine.connect() as conn:
            result = await read(conn)
            return result, await read_freshness(conn, project_id, self.lag, self.settings)
