"""`pulse-ingest`: the ingest service, configured only by the environment."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.common.serve import serve
from services.common.settings import IngestSettings
from services.ingest.app import create_app


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, "ingest")
    serve(create_app(settings), settings, settings.port)
