"""Funnel definitions (`funnels` rows) of a project: create, list, get, delete.

The definition is stored as `FunnelDefinition.model_dump(mode="json")`, which the metrics service
reads back to evaluate and backfill the funnel. Every lookup is by project as well as id, so a
read key never reaches another project's funnel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.funnels import FunnelDefinition
from services.common.tables import funnels, projects

MAX_FUNNELS_PER_PROJECT = 100

Backfill = Literal["running", "complete"]


class FunnelOut(FunnelDefinition):
    """A stored funnel: its definition, id, and whether the history walk is done."""

    id: int
    backfill: Backfill
    created_at: datetime


def _out(row: Any) -> FunnelOut:
    return FunnelOut.model_validate(
        {**row.definition, "id": row.id, "backfill": row.backfill, "created_at": row.created_at}
    )


COLUMNS = (funnels.c.id, funnels.c.definition, funnels.c.backfill, funnels.c.created_at)


async def create_funnel(
    conn: AsyncConnection, project_id: int, definition: FunnelDefinition
) -> FunnelOut | None:
    """Insert the funnel (backfill 'running'); None when the project has its maximum already.

    Call inside a transaction: the project's row is locked so concurrent creations count each
    other (NO KEY UPDATE: foreign-key checks of other writers are not blocked).
    """
    await conn.execute(
        select(projects.c.id).where(projects.c.id == project_id).with_for_update(key_share=True)
    )
    count = await conn.scalar(
        select(func.count()).select_from(funnels).where(funnels.c.project_id == project_id)
    )
    if (count or 0) >= MAX_FUNNELS_PER_PROJECT:
        return None
    row = (
        await conn.execute(
            insert(funnels)
            .values(
                project_id=project_id,
                name=definition.name,
                definition=definition.model_dump(mode="json"),
                backfill="running",
            )
            .returning(*COLUMNS)
        )
    ).one()
    return _out(row)


async def list_funnels(conn: AsyncConnection, project_id: int) -> list[FunnelOut]:
    rows = await conn.execute(
        select(*COLUMNS).where(funnels.c.project_id == project_id).order_by(funnels.c.id)
    )
    return [_out(r) for r in rows]


async def get_funnel(conn: AsyncConnection, project_id: int, funnel_id: int) -> FunnelOut | None:
    row = (
        await conn.execute(
            select(*COLUMNS).where(funnels.c.id == funnel_id, funnels.c.project_id == project_id)
        )
    ).first()
    return None if row is None else _out(row)


async def delete_funnel(conn: AsyncConnection, project_id: int, funnel_id: int) -> bool:
    """Delete the funnel and (by cascade) its attempts; False when the project has no such one."""
    result = await conn.execute(
        delete(funnels)
        .where(funnels.c.id == funnel_id, funnels.c.project_id == project_id)
        .returning(funnels.c.id)
    )
    return result.first() is not None
