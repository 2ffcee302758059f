"""The gateway: aggregates -> HTTP (JSON/CSV), the admin API, health and Prometheus (SPEC §5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from services.common.db import create_engine, database_reachable
from services.common.http import (
    install_error_handlers,
    install_health_routes,
    install_request_metrics,
)
from services.common.logging import get_logger
from services.common.projects import ProjectDirectory
from services.common.serve import waiting_drain
from services.common.settings import GatewaySettings
from services.gateway.caching import ReadCaching, VersionCache
from services.gateway.docs_pages import install_docs_pages
from services.gateway.kpis import KpiRefresher
from services.gateway.openapi import install_openapi
from services.gateway.params import known_parameters
from services.gateway.queries.freshness import LagProbe
from services.gateway.routes import (
    activity,
    admin,
    breakdowns,
    dashboard,
    engagement,
    funnels,
    live,
    paths,
    retention,
    sessions,
    status,
)
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
        kpis = KpiRefresher(engine, settings.kpi_refresh_seconds)
        kpis.start()
        log.info("gateway_started", port=settings.port)
        try:
            yield
        finally:
            app.state.pulse.draining = True
            await kpis.stop()
            await lag.stop()
            await engine.dispose()
            log.info("gateway_stopped")

    app = FastAPI(
        title="Pulse gateway",
        description=(
            "Product analytics read API: activity, funnels, pipeline status and project admin."
        ),
        lifespan=lifespan,
        docs_url=None,  # docs_pages.py serves /docs without a CDN; no /redoc (see there)
        redoc_url=None,
    )
    install_error_handlers(app)
    # Added before the request metrics so that reused responses are observed like the others.
    versions = VersionCache(lambda: app.state.pulse, settings.read_cache_staleness_seconds)
    app.add_middleware(
        ReadCaching,
        max_age=settings.read_cache_max_age_seconds,
        max_entries=settings.read_cache_entries,
        version_of=versions,
        on_write=versions.forget,
    )
    install_request_metrics(app)

    async def ready() -> tuple[bool, Any]:
        state: GatewayState = app.state.pulse
        if state.draining:
            return False, {"draining": True}
        checks = {"postgres": await database_reachable(state.engine)}
        return all(checks.values()), checks

    app.state.drain = waiting_drain(app, settings.drain_seconds)
    install_health_routes(app, ready)
    app.include_router(admin.router)
    for module in (
        activity,
        breakdowns,
        engagement,
        funnels,
        live,
        paths,
        retention,
        sessions,
        status,
    ):
        app.include_router(module.router, dependencies=[Depends(known_parameters)])
    app.include_router(dashboard.router)
    install_openapi(app)
    install_docs_pages(app)
    return app
