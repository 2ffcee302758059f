"""A generated product's event history: anonymous browsing, sign-up, second devices, churn.

Each person browses anonymously on a device, may sign up (identify links the device to their
userId), may later use a second device that an alias merges into them, and is active on a
random subset of days. Returns the events as the oracle sees them, in time order.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from tests.support.oracle import SentEvent

EVENTS = ["viewed_item", "searched", "added_to_cart", "purchased"]


def generate(rng: random.Random, persons: int, start: datetime, days: int) -> list[SentEvent]:
    out: list[SentEvent] = []

    def at(day: int) -> datetime:
        # Hours 1..22: clock-skew correction moves times by milliseconds, never across midnight.
        return start + timedelta(days=day, hours=rng.randint(1, 22), minutes=rng.randint(0, 59))

    def emit(kind: str, actor: str, day: int, linked: str | None = None) -> None:
        name = rng.choice(EVENTS) if kind == "track" else "viewed"
        out.append(SentEvent(str(uuid.uuid4()), kind, actor, at(day), linked, name))

    for n in range(persons):
        device, user = f"anon-{n}-{uuid.uuid4().hex[:6]}", f"user-{n}"
        first = rng.randrange(days)
        active = sorted(
            {first, *rng.sample(range(first, days), min(days - first, rng.randint(0, 6)))}
        )
        signs_up = rng.random() < 0.6
        signup_day = rng.choice(active) if signs_up else None
        second_device = f"phone-{n}" if signs_up and rng.random() < 0.3 else None
        for day in active:
            known = signup_day is not None and day >= signup_day
            if day == signup_day:
                emit("identify", user, day, linked=device)
            actor = user if known else device
            for _ in range(rng.randint(1, 4)):
                emit(rng.choice(["track", "track", "page"]), actor, day)
            if second_device and known and rng.random() < 0.5:
                # The phone is used anonymously first; the alias comes (possibly) later.
                emit("track", second_device, day)
        if second_device:
            emit("alias", user, days - 1, linked=second_device)
    out.sort(key=lambda e: e.timestamp)
    return out
