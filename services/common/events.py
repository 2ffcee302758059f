"""The records on the Kafka topics: one normalized event model, one rejection model.

Ingest turns every wire format (Segment, PostHog) into `EventRecord`; metrics reads only this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal["track", "page", "screen", "identify", "group", "alias"]
ACTIVE_TYPES: frozenset[str] = frozenset({"track", "page", "screen"})


class EventRecord(BaseModel):
    """A validated event as published to the `events` topic."""

    project_id: int
    message_id: str
    type: EventType
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    timestamp: datetime
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def distinct_id(self) -> str:
        """The id that did the event: userId when known, else anonymousId (SPEC §1); validation
        guarantees one exists. Identity merges map it to a person (see aggregates/identity.py)."""
        return self.user_id or self.anonymous_id or ""

    @property
    def props(self) -> dict[str, Any]:
        """Its properties over the traits its SDK attached (`context.traits`): what funnels
        filter on and breakdowns split by — "a property, else the trait as of the event"."""
        traits = self.context.get("traits")
        if isinstance(traits, dict) and traits:
            return {**traits, **self.properties}
        return self.properties

    @property
    def partition_key(self) -> bytes:
        """One device (or user, when there is no device id) always lands on one partition."""
        return f"{self.project_id}:{self.anonymous_id or self.user_id}".encode()


class RejectedRecord(BaseModel):
    """An event refused individually, published to `events.rejected` and kept with its reason."""

    project_id: int | None
    reason: str  # a short code, e.g. `missing_id`
    detail: str  # what was wrong, in words a developer can act on
    message_id: str | None = None
    received_at: datetime
    payload: Any
