"""Run an ASGI app the way every Pulse service does: uvicorn, JSON logs, graceful SIGTERM.

A stop has two phases. First the service *drains* while it still serves: `/readyz` answers 503
(`"checks": {"draining": true}`), and the app's `drain` step runs (the ingest and the gateway
wait PULSE_DRAIN_SECONDS, for load balancers polling readiness to stop sending them requests;
the metrics service applies and commits its open batch, with `/livez` and `/metrics` still up).
Then uvicorn's own shutdown: stop accepting, finish in-flight requests, run the lifespan's
shutdown (flush the producer, close the database). A second SIGTERM or SIGINT skips the rest of
the drain, and SIGINT alone (Ctrl-C: a person at a terminal, not an orchestrator) skips it all;
the metrics service still commits its open batch then, in the lifespan's shutdown. Without the
first phase the port closed at once: nothing could ever read the 503, and a load balancer found
out by refused connections.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from services.common.logging import get_logger
from services.common.settings import CommonSettings

log = get_logger(__name__)

# uvicorn's exit code for an app that did not start (uvicorn.run's too).
STARTUP_FAILURE = 3

Drain = Callable[[], Awaitable[None]]


class DrainingServer(uvicorn.Server):
    """uvicorn's server, running `drain` between a stop signal and its shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self._drain = drain
        self._drain_requested = False
        self._drain_task: asyncio.Task[None] | None = None  # referenced, or it may be collected
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Runs in the signal handler, so the drain is only scheduled here, on the loop."""
        if sig == signal.SIGINT or self._drain_requested or not self.started or self._loop is None:
            super().handle_exit(sig, frame)  # Ctrl-C, a second signal, or not serving yet
            return
        self._drain_requested = True
        self._loop.call_soon_threadsafe(self._start_drain, sig)

    def _start_drain(self, sig: int) -> None:
        self._drain_task = asyncio.create_task(self._drain_then_exit(sig), name="drain")

    async def _drain_then_exit(self, sig: int) -> None:
        log.info("draining", signal=signal.Signals(sig).name)
        try:
            await self._drain()
        except Exception:  # the stop goes on: a failed drain only makes it less gentle
            log.exception("drain_failed")
        finally:
            super().handle_exit(sig, None)


def waiting_drain(app: FastAPI, seconds: float) -> Drain:
    """The ingest's and the gateway's drain step: /readyz answers 503 (their state's `draining`)
    while requests are still served for `seconds`, for load balancers to notice and stop
    sending them."""

    async def drain() -> None:
        app.state.pulse.draining = True
        await asyncio.sleep(seconds)

    return drain


def serve(app: FastAPI, settings: CommonSettings, port: int) -> None:
    """Serve until a stop signal; `app.state.drain` (every service's create_app sets it) is the
    app's drain step (the module docstring)."""
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=settings.bind_host,
            port=port,
            log_config=None,  # structlog owns logging
            access_log=False,
            timeout_graceful_shutdown=15,
            lifespan="on",
        ),
        app.state.drain,
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
    """Shut down at once (no drain), as uvicorn does on a signal: stop accepting, then run the
    lifespan's shutdown."""
    server: uvicorn.Server = app.state.server
    server.should_exit = True
