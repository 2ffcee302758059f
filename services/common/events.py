"""The records on the Kafka topics: one normalized event model, one rejection model.

Ingest turns every wire format (Segment, PostHog) into `EventRecord`; metrics reads only this.
The model holds the limits the ingest enforces (services/ingest/normalize.py says why each), so
that a record from anywhere else that breaks one (another producer, a hand-made replay) is a
dead letter when the consumer reads it, not a statement that fails and stops the consumer on
every restart. A NUL character, which PostgreSQL cannot store, is the consumer's own check on
the raw record (services/metrics/parse.py): cheaper there than walking every event's fields.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator

EventType = Literal["track", "page", "screen", "identify", "group", "alias"]
ACTIVE_TYPES: frozenset[str] = frozenset({"track", "page", "screen"})

MAX_MESSAGE_ID_CHARS = 100
MAX_ID_CHARS = 255
MAX_EVENT_NAME_CHARS = 255
# Earlier than this is an unset device clock (1970) or a unit mix-up, not product history.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
# Later than this is no product history either; the margin keeps the arithmetic on a day (the
# windows after it, in any timezone) inside the years Python holds.
LATEST_TIMESTAMP = datetime(9000, 1, 1, tzinfo=UTC)


def _plausible(moment: datetime) -> datetime:
    if not EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP:
        raise ValueError(f"must be in [{EARLIEST_TIMESTAMP.date()}, {LATEST_TIMESTAMP.date()})")
    return moment


# The ingest stamps receipt with its clock. A record received "later" than a day from now
# comes from elsewhere, and would hold its project's `processed_through` in the future for good
# (it only moves forward).
RECEIPT_CLOCK_SKEW = timedelta(days=1)


def _received(moment: datetime) -> datetime:
    if moment > datetime.now(UTC) + RECEIPT_CLOCK_SKEW:
        raise ValueError("is more than a day after this consumer's clock")
    return moment


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class EventRecord(BaseModel):
    """A validated event as published to the `events` topic."""

    project_id: int = Field(ge=1, le=2**31 - 1)  # a PostgreSQL integer
    message_id: str = Field(min_length=1, max_length=MAX_MESSAGE_ID_CHARS)
    type: EventType
    event: str | None = Field(default=None, max_length=MAX_EVENT_NAME_CHARS)
    user_id: Id | None = None
    anonymous_id: Id | None = None
    previous_id: Id | None = None
    group_id: Id | None = None
    timestamp: Annotated[AwareDatetime, AfterValidator(_plausible)]
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: Annotated[AwareDatetime, AfterValidator(_received)]
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_a_person(self) -> Self:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("user_id or anonymous_id is required")
        if self.type == "alias" and (self.previous_id is None or self.user_id is None):
            raise ValueError("an alias needs previous_id and user_id")
        return self

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

    project_id: int | None = Field(ge=1, le=2**31 - 1)  # None: the request named no project
    reason: str  # a short code, e.g. `missing_id`
    detail: str  # what was wrong, in words a developer can act on
    message_id: str | None = None
    received_at: datetime
    payload: Any
