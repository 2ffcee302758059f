"""The async SQLAlchemy engine every service shares the shape of, and what an unreachable
database looks like to them."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.settings import CommonSettings

# The first key of a project's advisory lock. Metrics batches hold it shared (exclusively when
# they merge persons, services/metrics/store.py); what must wait for the batches in flight takes
# it exclusively: a walk's first chunk (services/metrics/walk.py), a breakdown key's removal.
PROJECT_LOCK_CLASS = 1347

# Set on every connection the services open. JIT compilation off: Pulse's statements work on a
# batch's or a read's rows, thousands, but unnest and generate_series give PostgreSQL estimates
# large enough to pass jit_above_cost, and compiling then costs more than the work. The activity
# rollup's statement on a 50,000-event batch (bench/metrics_apply.py's events) spent 0.80-0.86 s
# compiling and 0.13 s running.
SERVER_SETTINGS = {"jit": "off"}


def create_engine(settings: CommonSettings, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # A wedged database must not hang a request forever.
        connect_args={"timeout": 5, "command_timeout": 30, "server_settings": SERVER_SETTINGS},
    )


async def create_pool(url: str, min_size: int = 1, max_size: int = 2) -> asyncpg.Pool:
    """An asyncpg pool whose connections are set up as the services' (SERVER_SETTINGS)."""
    return await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, server_settings=SERVER_SETTINGS
    )


async def database_reachable(engine: AsyncEngine, wait_seconds: float = 2.0) -> bool:
    """True when a trivial query answers now: the readiness check for PostgreSQL."""
    try:
        async with asyncio.timeout(wait_seconds), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (TimeoutError, OSError, SQLAlchemyError):
        return False
    return True


# PostgreSQL cannot be reached right now: refused or dropped connections, a server shutting down
# or starting up, no connection slot left. The same work may succeed shortly: a request gets a
# 503 with Retry-After, not a 500 (http.py), and a batch is tried again (metrics/runner.py).
# TimeoutError, also an OSError, is not one: a statement over its timeout is answered as such.
UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps (SQLAlchemy keeps the driver's as `orig`, whose cause
    is asyncpg's), says the database cannot be reached right now."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UNAVAILABLE) and not isinstance(seen, TimeoutError):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        wrapped = seen.orig if isinstance(seen, DBAPIError) else None
        seen = wrapped if isinstance(wrapped, BaseException) else seen.__cause__
    return False
