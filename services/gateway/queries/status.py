"""Pipeline counters for one project: `/v1/status` and `/v1/rejected` (SPEC §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.tables import project_stats, rejected_events


class Status(BaseModel):
    events_processed: int
    duplicates_dropped: int
    rejected: int
    lag: int | None
    processed_through: datetime | None


class Rejected(BaseModel):
    reason: str
    detail: str
    message_id: str | None
    received_at: datetime
    payload: Any


async def read_counters(conn: AsyncConnection, project_id: int) -> tuple[int, int, int]:
    row = (
        await conn.execute(
            select(
                project_stats.c.events_processed,
                project_stats.c.duplicates_dropped,
                project_stats.c.rejected,
            ).where(project_stats.c.project_id == project_id)
        )
    ).first()
    return (row.events_processed, row.duplicates_dropped, row.rejected) if row else (0, 0, 0)


async def read_rejected(conn: AsyncConnection, project_id: int, limit: int) -> list[Rejected]:
    rows = await conn.execute(
        select(rejected_events)
        .where(rejected_events.c.project_id == project_id)
        .order_by(rejected_events.c.id.desc())
        .limit(limit)
    )
    return [
        Rejected(
            reason=r.reason,
            detail=r.detail,
            message_id=r.message_id,
            received_at=r.received_at,
            payload=r.payload,
        )
        for r in rows
    ]
