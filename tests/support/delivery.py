"""How tests deliver a generated history: the e2e tests through the official Segment client,
with late deliveries held back and duplicate sends interleaved later in the stream; the property
tests in batches hypothesis draws."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Protocol, TypeVar

from hypothesis import strategies as st
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


class Timed(Protocol):
    @property
    def timestamp(self) -> datetime: ...


T = TypeVar("T", bound=Timed)


def drawn_batches(
    data: st.DataObject, sent: list[T], max_repeats: int = 10, max_cuts: int = 10
) -> list[list[T]]:
    """For a property test: `sent` with duplicates, in any order (or newest first, or in time
    order with a few stragglers sent last), split into batches — all drawn by hypothesis."""
    repeats = data.draw(st.lists(st.sampled_from(sent), max_size=max_repeats), label="duplicates")
    mode = data.draw(st.sampled_from(["any", "newest_first", "some_late"]), label="mode")
    if mode == "any":
        delivery = data.draw(st.permutations(sent + repeats), label="order")
    else:
        delivery = sorted(sent + repeats, key=lambda e: e.timestamp, reverse=mode != "some_late")
        late = data.draw(st.sets(st.sampled_from(range(len(delivery))), max_size=4), label="late")
        delivery = [e for i, e in enumerate(delivery) if i not in late] + [
            delivery[i] for i in sorted(late)
        ]
    cuts = sorted(
        data.draw(
            st.sets(st.integers(1, max(1, len(delivery) - 1)), max_size=max_cuts), label="cuts"
        )
    )
    return [delivery[i:j] for i, j in zip([0, *cuts], [*cuts, len(delivery)], strict=True)]
