"""How the e2e tests deliver a generated history: through the official Segment client, with
late deliveries held back and duplicate sends interleaved later in the stream."""

from __future__ import annotations

import random

from segment.analytics import Client

from tests.support.oracle import SentEvent


def messy_order(
    rng: random.Random, events: list[SentEvent], late_share: float = 0.05, dup_share: float = 0.03
) -> tuple[list[SentEvent], list[SentEvent]]:
    """(the delivery order, the duplicates in it): a share of the events is sent after all the
    others, and a share is sent a second time, somewhere after its first send."""
    late = set(rng.sample(range(len(events)), int(len(events) * late_share)))
    order = [e for i, e in enumerate(events) if i not in late] + [events[i] for i in sorted(late)]
    duplicates = rng.sample(order, int(len(order) * dup_share))
    for d in duplicates:
        order.insert(rng.randrange(order.index(d) + 1, len(order) + 1), d)
    return order, duplicates


def send(client: Client, e: SentEvent) -> None:
    """One oracle event as the Segment call an app would make for it."""
    if e.type == "identify":
        client.identify(
            user_id=e.person,
            anonymous_id=e.linked,
            timestamp=e.timestamp,
            message_id=e.message_id,
            traits={"plan": "free"},
        )
    elif e.type == "alias":
        client.alias(
            previous_id=e.linked, user_id=e.person, timestamp=e.timestamp, message_id=e.message_id
        )
    else:
        ids = {"user_id": e.person} if e.person.startswith("user-") else {"anonymous_id": e.person}
        if e.type == "page":
            client.page(name=None, timestamp=e.timestamp, message_id=e.message_id, **ids)
        else:
            client.track(event=e.event, timestamp=e.timestamp, message_id=e.message_id, **ids)
