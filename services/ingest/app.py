"""The ingest service: HTTP in, Kafka out (SPEC §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.common.db import create_engine, database_reachable
from services.common.http import (
    install_error_handlers,
    install_health_routes,
    install_request_metrics,
)
from services.common.kafka import broker_reachable, durable_producer, ensure_topics
from services.common.logging import get_logger
from services.common.projects import ProjectDirectory
from services.common.settings import IngestSettings
from services.ingest import metric_defs as m
from services.ingest.publisher import Publisher
from services.ingest.routes import segment
from services.ingest.state import IngestState

log = get_logger(__name__)


def create_app(settings: IngestSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        await ensure_topics(settings)
        producer = durable_producer(settings)
        await producer.start()
        app.state.pulse = IngestState(
            settings=settings,
            engine=engine,
            producer=producer,
            projects=ProjectDirectory(engine, settings.project_cache_seconds),
            publisher=Publisher(producer, settings),
        )
        log.info("ingest_started", port=settings.port)
        try:
            yield
        finally:
            app.state.pulse.draining = True
            # stop() flushes what is still queued before closing.
            await producer.stop()
            await engine.dispose()
            log.info("ingest_stopped")

    app = FastAPI(title="Pulse ingest", lifespan=lifespan)
    install_error_handlers(app)
    install_request_metrics(app)

    @app.middleware("http")
    async def count_in_flight(request: Any, call_next: Any) -> Any:
        with m.IN_FLIGHT.track_inprogress():
            return await call_next(request)

    # Browser SDKs post from any origin, without credentials (SPEC §3).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["*"],
        allow_credentials=False,
        max_age=86400,
    )

    async def ready() -> tuple[bool, Any]:
        state: IngestState = app.state.pulse
        if state.draining:
            return False, {"draining": True}
        checks = {"postgres": await database_reachable(state.engine)}
        checks["kafka"] = await broker_reachable(state.producer.client)
        return all(checks.values()), checks

    install_health_routes(app, ready)
    app.include_router(segment.router)
    return app
