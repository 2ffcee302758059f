"""Per-write-key event quota: one token bucket per project, in this process's memory.

A request is admitted while its project's bucket is not in debt, and then takes one token per
event it carries, so a batch larger than the burst still gets through once and the bucket pays
it back at the steady rate; over any window a project sends at most `burst + rate * seconds`
events plus one request. Refused requests take nothing. Each ingest process keeps its own
buckets: with N replicas behind a load balancer a project gets up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Quota:
    def __init__(
        self,
        events_per_second: float,
        burst_events: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = events_per_second
        self._burst = max(burst_events, 1.0)
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}  # one per project: bounded by the projects

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, project_id: int, events: int) -> int | None:
        """Admit `events` (None), or say how many whole seconds to wait before retrying."""
        if not self.enabled:
            return None
        now = self._clock()
        bucket = self._buckets.get(project_id)
        if bucket is None:
            bucket = self._buckets[project_id] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens <= 0:
            # Retry-After is whole seconds (RFC 9110); at least 1, so clients do back off.
            return max(1, math.ceil(-bucket.tokens / self._rate + 1 / self._rate))
        bucket.tokens -= max(events, 1)
        return None
