"""What the ingest app holds while it runs, built by the lifespan and closed in reverse."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.projects import ProjectDirectory
from services.common.settings import IngestSettings
from services.ingest.body import read_json_body
from services.ingest.publisher import Publisher


@dataclass
class IngestState:
    settings: IngestSettings
    engine: AsyncEngine
    producer: AIOKafkaProducer
    projects: ProjectDirectory
    publisher: Publisher
    draining: bool = field(default=False)

    async def read_body(self, request: Request, limit: int) -> Any:
        return await read_json_body(request, limit)
