"""A bound on the request bodies one ingest process holds at once, so a burst cannot exhaust it.

Each request's body limit bounds one request (body.py), not how many arrive together: 20
concurrent 5 MB PostHog batches took the process from 84 MB to 1.06 GB resident (a `/tmp`
script, 2026-11-28), about ten times their bytes once parsed: at that rate a hundred would take
about 5 GB. So every request charges the bytes it reads, inflated, as it reads them, and gives
them back when it has been answered. A request that would take the process past
`PULSE_MAX_BODY_BYTES_IN_FLIGHT` while other requests hold bytes is answered 503 +
`Retry-After`, with nothing stored, as when Kafka is slow: the SDKs send it again. A request
alone is always let through, so a budget below the largest body still admits it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from services.common.http import ApiError
from services.ingest import metric_defs as m

# Where a request's scope keeps the bytes it holds.
HELD = "pulse.body_bytes"
RETRY_AFTER_SECONDS = "1"


class BodyBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0  # by every request being handled

    def take(self, scope: MutableMapping[str, Any], size: int) -> None:
        """Charge `size` more bytes to the request of `scope`, or refuse it (503)."""
        mine = scope.get(HELD, 0)
        if self.held + size > self.limit and self.held > mine:
            m.OVERLOADED.inc()
            raise ApiError(
                503,
                "overloaded",
                "the ingest holds as many request bodies as it may at once; nothing was stored, "
                "send again shortly",
                {"Retry-After": RETRY_AFTER_SECONDS},
            )
        self.held += size
        scope[HELD] = mine + size
        m.BODY_BYTES_IN_FLIGHT.set(self.held)

    def release(self, scope: MutableMapping[str, Any]) -> None:
        """Give back what the request of `scope` held: it has been answered."""
        self.held -= scope.pop(HELD, 0)
        m.BODY_BYTES_IN_FLIGHT.set(self.held)
