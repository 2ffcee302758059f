"""What the ingest app holds while it runs, built by the lifespan and closed in reverse."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.http import ApiError
from services.common.projects import ProjectDirectory
from services.common.settings import IngestSettings
from services.ingest import metric_defs as m
from services.ingest.body import Body, read_body
from services.ingest.body_budget import BodyBudget
from services.ingest.publisher import Publisher
from services.ingest.quota import Quota


@dataclass
class IngestState:
    settings: IngestSettings
    engine: AsyncEngine
    projects: ProjectDirectory
    publisher: Publisher
    quota: Quota
    body_budget: BodyBudget
    draining: bool = field(default=False)

    async def read_body(
        self, request: Request, limit: int, gzip: bool = False, form: bool = False
    ) -> Body:
        return await read_body(request, limit, gzip, form, self.body_budget)

    def admit(self, project_id: int, events: int) -> None:
        """429 + Retry-After when the project is over its events/s quota; nothing is written."""
        wait = self.quota.take(project_id, events)
        if wait is not None:
            m.QUOTA_EXCEEDED.labels(str(project_id)).inc()
            raise ApiError(
                429,
                "quota_exceeded",
                f"this write key sends more than {self.settings.quota_events_per_second:g} "
                f"events/s; retry after {wait} s",
                {"Retry-After": str(wait)},
            )
