"""The async SQLAlchemy engine every service shares the shape of."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.settings import CommonSettings


def create_engine(settings: CommonSettings, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # A wedged database must not hang a request forever.
        connect_args={"timeout": 5, "command_timeout": 30},
    )


async def database_reachable(engine: AsyncEngine, wait_seconds: float = 2.0) -> bool:
    """True when a trivial query answers now: the readiness check for PostgreSQL."""
    try:
        async with asyncio.timeout(wait_seconds), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (TimeoutError, OSError, SQLAlchemyError):
        return False
    return True
