"""The gateway's lag probe while Kafka does not answer (services/gateway/queries/freshness.py):
one request a second waits for it (at most PROBE_TIMEOUT_SECONDS); the others get an unknown lag
at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.settings import GatewaySettings
from services.gateway.queries import freshness


async def test_an_unanswered_probe_is_remembered_for_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    async def hung_broker(_servers: str, topic: str) -> list[int]:
        asked.append(topic)
        await asyncio.sleep(60)
        return [0]

    monkeypatch.setattr(freshness, "partitions_of", hung_broker)
    monkeypatch.setattr(freshness, "PROBE_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(freshness, "LAG_CACHE_SECONDS", 0.5)
    probe = freshness.LagProbe(GatewaySettings())

    try:
        began = time.monotonic()
        assert await probe.end_offsets() is None
        first = time.monotonic() - began
        assert await probe.end_offsets() is None  # within the second: not asked again
        second = time.monotonic() - began - first

        assert 0.3 <= first < 1
        assert second < 0.1
        assert asked == ["events"]
        await asyncio.sleep(freshness.LAG_CACHE_SECONDS)
        assert await probe.end_offsets() is None  # a second later, asked again
        assert asked == ["events", "events"]
    finally:
        await probe.stop()  # its consumer never started; closed all the same
