"""The ingest service: HTTP in, Kafka out (SPEC §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from services.common.db import create_engine, database_reachable
from services.common.http import install_error_handlers, install_health_routes
from services.common.kafka import ensure_topics
from services.common.logging import get_logger
from services.common.projects import ProjectDirectory
from services.common.serve import waiting_drain
from services.common.settings import IngestSettings
from services.ingest.body_budget import BodyBudget
from services.ingest.dispatch import IngestRoutes
from services.ingest.observe import ObserveRequests
from services.ingest.publisher import Publisher
from services.ingest.quota import Quota
from services.ingest.routes import posthog, posthog_config, segment
from services.ingest.state import IngestState

log = get_logger(__name__)


class IngestApp(FastAPI):
    """FastAPI, with the SDK routes answered before its middleware stack (see dispatch.py).

    Every request passes request metrics, then a dict lookup of its path: SDK POSTs go to their
    handler, everything else (health, metrics, CORS preflight, 404s) to FastAPI as usual.
    """

    def __init__(self, body_budget: BodyBudget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        routes = {**segment.ROUTES, **posthog.ROUTES}
        self._front = ObserveRequests(IngestRoutes(super().__call__, routes, body_budget))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        await self._front(scope, receive, send)


def create_app(settings: IngestSettings) -> FastAPI:
    body_budget = BodyBudget(settings.max_body_bytes_in_flight)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        await ensure_topics(settings)
        publisher = Publisher(settings)
        await publisher.start()
        app.state.pulse = IngestState(
            settings=settings,
            engine=engine,
            projects=ProjectDirectory(engine, settings.project_cache_seconds),
            publisher=publisher,
            quota=Quota(settings.quota_events_per_second, settings.quota_burst_events),
            body_budget=body_budget,
        )
        log.info("ingest_started", port=settings.port)
        try:
            yield
        finally:
            app.state.pulse.draining = True
            # stop() flushes what is still queued before closing.
            await publisher.stop()
            await engine.dispose()
            log.info("ingest_stopped")

    app = IngestApp(body_budget, title="Pulse ingest", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(posthog_config.router)

    # Browser SDKs post from any origin, without credentials (SPEC §3).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        allow_credentials=False,
        max_age=86400,
    )

    async def ready() -> tuple[bool, Any]:
        state: IngestState = app.state.pulse
        if state.draining:
            return False, {"draining": True}
        checks = {"postgres": await database_reachable(state.engine)}
        checks["kafka"] = await state.publisher.ready()
        # Without PostgreSQL the keys loaded before still authenticate (common/projects.py).
        keys = checks["postgres"] or state.projects.loaded
        return keys and checks["kafka"], checks

    app.state.drain = waiting_drain(app, settings.drain_seconds)
    install_health_routes(app, ready)
    return app
