"""Failed metadata updates wait before they report, doubling up to a maximum (kafka.py says why)."""

from __future__ import annotations

import asyncio

import pytest

from services.common import kafka
from services.common.kafka import (
    METADATA_RETRY_FIRST_SECONDS,
    METADATA_RETRY_MAX_SECONDS,
    pace_metadata_retries,
)


class Client:
    """What `pace_metadata_retries` touches of an AIOKafkaClient: its update method."""

    def __init__(self, outcomes: list[bool]) -> None:
        self.outcomes = outcomes

    async def _metadata_update(self, cluster_metadata: object, topics: object) -> bool:
        return self.outcomes.pop(0)


def test_failures_wait_doubling_up_to_the_maximum_and_a_success_starts_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(kafka.asyncio, "sleep", sleep)
    client = Client([False] * 6 + [True, False, True])
    pace_metadata_retries(client)  # type: ignore[arg-type]

    async def updates() -> list[bool]:
        return [await client._metadata_update(None, None) for _ in range(9)]

    assert asyncio.run(updates()) == [False] * 6 + [True, False, True]
    first, most = METADATA_RETRY_FIRST_SECONDS, METADATA_RETRY_MAX_SECONDS
    assert first < most
    doubled = [min(first * 2**n, most) for n in range(6)]
    assert waits == [*doubled, first]
    assert doubled[-1] == most  # the six failures reached the maximum
