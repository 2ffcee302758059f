"""Admin API (Bearer admin token): create, list projects and rotate their keys (SPEC §5)."""

from __future__ import annotations

import secrets
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import insert, select, update

from services.common.http import ApiError
from services.common.tables import projects
from services.gateway.auth import require_admin
from services.gateway.state import GatewayState

router = APIRouter(dependencies=[Depends(require_admin)], tags=["admin"])


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value


class ProjectOut(BaseModel):
    id: int
    name: str
    timezone: str
    write_key: str
    read_key: str


class RotateIn(BaseModel):
    keys: Literal["write", "read", "both"] = "both"


def new_key(kind: Literal["write", "read"]) -> str:
    return f"p{kind[0]}_{secrets.token_urlsafe(24)}"


@router.post("/v1/projects", status_code=201)
async def create_project(body: ProjectIn, request: Request) -> ProjectOut:
    """Create a project: its write key sends events, its read key reads its numbers."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.begin() as conn:
        row = (
            await conn.execute(
                insert(projects)
                .values(
                    name=body.name,
                    timezone=body.timezone,
                    write_key=new_key("write"),
                    read_key=new_key("read"),
                )
                .returning(projects)
            )
        ).one()
    return ProjectOut.model_validate(row, from_attributes=True)


@router.get("/v1/projects")
async def list_projects(request: Request) -> list[ProjectOut]:
    """Every project, with its keys."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.connect() as conn:
        rows = await conn.execute(select(projects).order_by(projects.c.id))
    return [ProjectOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/v1/projects/{project_id}/rotate-keys")
async def rotate_keys(project_id: int, body: RotateIn, request: Request) -> ProjectOut:
    """New keys take effect, and old ones stop working, within the key cache TTL (seconds)."""
    state: GatewayState = request.app.state.pulse
    values = {}
    if body.keys in ("write", "both"):
        values["write_key"] = new_key("write")
    if body.keys in ("read", "both"):
        values["read_key"] = new_key("read")
    async with state.engine.begin() as conn:
        row = (
            await conn.execute(
                update(projects)
                .where(projects.c.id == project_id)
                .values(**values)
                .returning(projects)
            )
        ).first()
    if row is None:
        raise ApiError(404, "not_found", f"no project {project_id}")
    return ProjectOut.model_validate(row, from_attributes=True)
