"""Run an ASGI app the way every Pulse service does: uvicorn, JSON logs, graceful SIGTERM.

On SIGTERM uvicorn stops accepting, finishes in-flight requests, then runs the lifespan's
shutdown (flush the producer, close the database) before the process exits.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from services.common.settings import CommonSettings


def serve(app: FastAPI, settings: CommonSettings, port: int) -> None:
    uvicorn.run(
        app,
        host=settings.bind_host,
        port=port,
        log_config=None,  # structlog owns logging
        access_log=False,
        timeout_graceful_shutdown=15,
        lifespan="on",
    )
