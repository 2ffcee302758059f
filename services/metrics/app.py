"""The metrics service: the consumer loop plus `/livez`, `/readyz`, `/metrics` over HTTP.

The consumer runs as a task in the app's lifespan. If it fails, the process exits with code 1
without committing anything more (crash-only): a supervisor (compose's restart policy, or
`make run`) restarts it and it resumes from the offsets stored with the aggregates. A database
that cannot be reached is waited for first, up to PULSE_DATABASE_RETRY_SECONDS (runner.py), also
by a service that starts while it is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.common.db import create_pool
from services.common.http import install_error_handlers, install_health_routes
from services.common.kafka import ensure_topics
from services.common.logging import get_logger
from services.common.serve import stop_serving
from services.common.settings import MetricsSettings
from services.metrics.breakdown_backfill import backfill_forever as breakdown_backfill_forever
from services.metrics.dedup import prune_seen_messages
from services.metrics.funnels.backfill import backfill_forever
from services.metrics.key_drops import drop_forever
from services.metrics.lifecycle_changes import prune_forever as prune_lifecycle_changes
from services.metrics.runner import Runner
from services.metrics.sessions_rebuild import rebuild_forever

log = get_logger(__name__)


def create_app(settings: MetricsSettings) -> FastAPI:
    state: dict[str, Any] = {"draining": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One connection each: consumer, dedup pruner, the three walks (funnel and breakdown
        # backfills, sessions rebuild), the dropped keys' deletes, the lifecycle notes' pruner,
        # /readyz.
        # None opened up front: a service started while PostgreSQL is down waits for it as a
        # running one does (the consumer's first claim is retried, runner.py), /readyz says so.
        pool = await create_pool(settings.database_url, min_size=0, max_size=8)
        await ensure_topics(settings)
        runner = Runner(settings, pool)
        task = asyncio.create_task(runner.run(), name="consumer")
        pruner = asyncio.create_task(prune_seen_messages(pool, settings), name="dedup-pruner")
        backfiller = asyncio.create_task(backfill_forever(pool), name="funnel-backfill")
        rebuilder = asyncio.create_task(rebuild_forever(pool), name="sessions-rebuild")
        key_backfiller = asyncio.create_task(
            breakdown_backfill_forever(pool, settings.breakdown_key_list), name="breakdown-backfill"
        )
        key_dropper = asyncio.create_task(
            drop_forever(pool, settings.breakdown_key_list), name="breakdown-drops"
        )
        lifecycle_pruner = asyncio.create_task(
            prune_lifecycle_changes(pool), name="lifecycle-changes-pruner"
        )
        task.add_done_callback(lambda t: _exit_if_failed(app, t))
        state.update(pool=pool, runner=runner, task=task)
        log.info("metrics_started", port=settings.port)
        try:
            yield
        finally:
            await drain()  # done already when a signal stopped us (serve.py)
            pruner.cancel()
            backfiller.cancel()
            rebuilder.cancel()
            key_backfiller.cancel()
            key_dropper.cancel()
            lifecycle_pruner.cancel()
            await pool.close()
            log.info("metrics_stopped")

    async def drain() -> None:
        """The first phase of a stop (services/common/serve.py): /readyz answers 503, and the
        consumer applies and commits its open batch before it returns, while /livez and
        /metrics still answer."""
        state["draining"] = True
        state["runner"].stop()
        await asyncio.wait({state["task"]}, timeout=30)

    app = FastAPI(title="Pulse metrics", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.drain = drain
    app.state.consumer_failed = False
    install_error_handlers(app)

    async def ready() -> tuple[bool, Any]:
        if state["draining"]:
            return False, {"draining": True}
        task: asyncio.Task[None] = state["task"]
        try:
            await state["pool"].fetchval("SELECT 1", timeout=2)
            postgres = True
        except (OSError, asyncpg.PostgresError, TimeoutError):
            postgres = False
        checks = {"postgres": postgres, "consumer": not task.done()}
        return all(checks.values()), checks

    install_health_routes(app, ready)
    return app


def _exit_if_failed(app: FastAPI, task: asyncio.Task[None]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    log.error("consumer_failed", exc_info=task.exception())
    # The HTTP side shuts down as on SIGTERM; main() then exits with code 1.
    app.state.consumer_failed = True
    stop_serving(app)
