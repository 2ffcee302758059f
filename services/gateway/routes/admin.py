"""Admin API (Bearer admin token): create, list projects, rotate their keys (SPEC §5) and change
their session settings (README "Sessions")."""

from __future__ import annotations

import secrets
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.http import ApiError
from services.common.tables import projects
from services.common.text import StoredStr
from services.gateway.auth import require_admin
from services.gateway.state import GatewayState

router = APIRouter(dependencies=[Depends(require_admin)], tags=["admin"])


class ProjectIn(BaseModel):
    name: StoredStr = Field(min_length=1, max_length=200)
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
    session_timeout_seconds: int
    session_cap_seconds: int
    sessions_rebuild: Literal["running", "complete"]


MAX_TIMEOUT_SECONDS = 86400
MAX_CAP_SECONDS = 7 * 86400


class SessionSettingsIn(BaseModel):
    """Either setting or both; one left out keeps its value. The cap is at least the timeout."""

    model_config = ConfigDict(extra="forbid")

    session_timeout_seconds: int | None = Field(None, ge=60, le=MAX_TIMEOUT_SECONDS, strict=True)
    session_cap_seconds: int | None = Field(None, ge=60, le=MAX_CAP_SECONDS, strict=True)


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


async def change_session_settings(
    conn: AsyncConnection, project_id: int, body: SessionSettingsIn
) -> Row[Any] | None:
    """Set the project's session settings (None: no such project). A change marks every session
    of the project for a rebuild, from the first person (sessions_rebuild.py); the same values
    again change nothing. Call inside a transaction."""
    if body.session_timeout_seconds is None and body.session_cap_seconds is None:
        raise ApiError(
            422,
            "invalid_parameter",
            "session_timeout_seconds, session_cap_seconds: give one or both",
        )
    current = (
        await conn.execute(
            select(projects.c.session_timeout_seconds, projects.c.session_cap_seconds)
            .where(projects.c.id == project_id)
            .with_for_update(key_share=True)  # NO KEY UPDATE, as the UPDATE below
        )
    ).first()
    if current is None:
        return None
    timeout, cap = current.session_timeout_seconds, current.session_cap_seconds
    if body.session_timeout_seconds is not None:
        timeout = body.session_timeout_seconds
    if body.session_cap_seconds is not None:
        cap = body.session_cap_seconds
    if cap < timeout:
        if body.session_cap_seconds is not None:
            message = f"session_cap_seconds: must be at least session_timeout_seconds ({timeout})"
        else:
            message = f"session_timeout_seconds: must be at most session_cap_seconds ({cap})"
        raise ApiError(422, "invalid_parameter", message)
    values: dict[str, Any] = {"session_timeout_seconds": timeout, "session_cap_seconds": cap}
    if (timeout, cap) != (current.session_timeout_seconds, current.session_cap_seconds):
        values.update(
            sessions_rebuild="running",
            sessions_rebuild_cursor=None,
            sessions_rebuild_done_at=None,
            sessions_generation=projects.c.sessions_generation + 1,
        )
    changed = update(projects).where(projects.c.id == project_id).values(**values)
    row: Row[Any] = (await conn.execute(changed.returning(projects))).one()
    return row


@router.patch("/v1/projects/{project_id}")
async def update_project(project_id: int, body: SessionSettingsIn, request: Request) -> ProjectOut:
    """Change the project's session settings: a session ends after `session_timeout_seconds`
    (60-86400) without an active event and lasts at most `session_cap_seconds` (the timeout to
    604800). All the project's sessions are then rebuilt in the background: `/v1/sessions`
    says `"rebuild": "running"` until they are."""
    state: GatewayState = request.app.state.pulse
    async with state.engine.begin() as conn:
        row = await change_session_settings(conn, project_id, body)
    if row is None:
        raise ApiError(404, "not_found", f"no project {project_id}")
    return ProjectOut.model_validate(row, from_attributes=True)


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
