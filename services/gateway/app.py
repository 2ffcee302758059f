"""The gateway: aggregates -> HTTP (JSON/CSV), the admin API, health and Prometheus (SPEC §5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.common.db import create_engine, database_reachable
from services.common.http import (
    install_error_handlers,
    install_health_routes,
    install_request_metrics,
)
from services.common.logging import get_logger
from services.common.projects import ProjectDirectory
from services.common.settings import GatewaySettings
from services.gateway.queries.freshness import LagProbe
from services.gateway.routes import activity, admin, engagement, status
from services.gateway.state import GatewayState

log = get_logger(__name__)


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, pool_size=10)
        lag = LagProbe(settings)
        await lag.start()
        app.state.pulse = GatewayState(
            settings=settings,
            engine=engine,
            projects=ProjectDirectory(engine, settings.project_cache_seconds),
            lag=lag,
        )
        log.info("gateway_started", port=settings.port)
        try:
            yield
        finally:
            app.state.pulse.draining = True
            await lag.stop()
            await engine.dispose()
            log.info("gateway_stopped")

    app = FastAPI(
        title="Pulse gateway",
        description="Product analytics read API: activity, pipeline status and project admin.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_request_metrics(app)

    async def ready() -> tuple[bool, Any]:
        state: GatewayState = app.state.pulse
        if state.draining:
            return False, {"draining": True}
        checks = {"postgres": await database_reachable(state.engine)}
        return all(checks.values()), checks

    install_health_routes(app, ready)
    for module in (admin, activity, engagement, status):
        app.include_router(module.router)
    return app
