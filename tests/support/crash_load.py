"""The load the crash tests send: tracks, pages and identifies of 300 persons over ten days of
September 2026, each by userId, as Segment messages."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from tests.support.oracle import SentEvent


def random_events(rng: random.Random, n: int) -> list[SentEvent]:
    return [
        SentEvent(
            str(uuid.uuid4()),
            rng.choice(["track", "page", "identify"]),
            f"person-{rng.randint(0, 300)}",
            datetime(2026, 9, 1, tzinfo=UTC)
            + timedelta(
                days=rng.randint(0, 9), hours=rng.randint(1, 22), minutes=rng.randint(0, 59)
            ),
        )
        for _ in range(n)
    ]


def segment_message(e: SentEvent) -> dict[str, object]:
    message: dict[str, object] = {
        "type": e.type,
        "messageId": e.message_id,
        "userId": e.person,
        "timestamp": e.timestamp.isoformat(),
    }
    if e.type == "track":
        message["event"] = "clicked"
    return message
