"""What the gateway holds while it runs, built by the lifespan and closed in reverse."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.projects import ProjectDirectory
from services.common.settings import GatewaySettings
from services.gateway.queries.freshness import LagProbe


@dataclass
class GatewayState:
    settings: GatewaySettings
    engine: AsyncEngine
    projects: ProjectDirectory
    lag: LagProbe
    draining: bool = False
