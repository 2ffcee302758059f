"""Run an ASGI app the way every Pulse service does: uvicorn, JSON logs, graceful SIGTERM.

On SIGTERM uvicorn stops accepting, finishes in-flight requests, then runs the lifespan's
shutdown (flush the producer, close the database) before the process exits.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from services.common.settings import CommonSettings

# uvicorn's exit code for an app that did not start (uvicorn.run's too).
STARTUP_FAILURE = 3


def serve(app: FastAPI, settings: CommonSettings, port: int) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.bind_host,
            port=port,
            log_config=None,  # structlog owns logging
            access_log=False,
            timeout_graceful_shutdown=15,
            lifespan="on",
        )
    )
    # A service that must end itself (metrics: its consumer failed) asks the server to stop
    # (`stop_serving`), as SIGTERM does but without a signal: uvicorn raises a signal it caught
    # again once it has shut down, and the process would end by SIGTERM before main() could
    # exit with its own code.
    app.state.server = server
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def stop_serving(app: FastAPI) -> None:
    """Shut down gracefully, as on SIGTERM: stop accepting, then run the lifespan's shutdown."""
    server: uvicorn.Server = app.state.server
    server.should_exit = True
