"""Whatever JSON a sender puts in a message, the ingest answers for it: each message becomes a
published event the consumer can read back, or a rejection with a reason, never an exception
(which would be a 500 for the whole batch, and the SDK would resend it forever).

Messages are generated around the fields each wire format reads
(tests/support/wire_messages.py). Found this way: a Segment `type` that was a list (unhashable),
and a `$pageview` whose `$current_url` was "http://[::1", which `urlsplit` refuses.
tests/integration/test_ingest_http_fuzz.py sends such messages over HTTP with any headers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.events import EventRecord, RejectedRecord
from services.ingest.accept import Converter, prepare
from services.ingest.posthog_mapping import posthog_to_segment
from tests.support.examples import scaled
from tests.support.wire_messages import posthog_events, segment_messages, times

PROJECT = 7
MAX_EVENT_BYTES = 2_000


def _check(messages: list[Any], convert: Converter | None, id_field: str) -> None:
    body_size = len(orjson.dumps(messages))
    prepared = prepare(
        messages,
        PROJECT,
        max_event_bytes=MAX_EVENT_BYTES,
        max_future_seconds=86_400,
        body_size=body_size,
        convert=convert,
        id_field=id_field,
    )
    assert len(prepared.events) + len(prepared.rejected) == len(messages)
    for key, value in prepared.events:
        event = EventRecord.model_validate_json(value)  # what the consumer does with it
        assert event.project_id == PROJECT
        assert event.user_id or event.anonymous_id
        assert key.startswith(f"{PROJECT}:".encode())
    for _, value in prepared.rejected:
        rejected = RejectedRecord.model_validate_json(value)
        assert re.fullmatch(r"[a-z_]+", rejected.reason), rejected.reason  # a bounded label
        assert rejected.detail


FUZZ = settings(
    max_examples=scaled(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(st.lists(segment_messages, max_size=4))
def test_any_segment_message_is_accepted_or_rejected_with_a_reason(messages: list[Any]) -> None:
    _check(messages, None, "messageId")


@FUZZ
@given(st.lists(posthog_events, max_size=4), st.one_of(st.none(), times))
def test_any_posthog_event_is_accepted_or_rejected_with_a_reason(
    events: list[Any], batch_sent_at: Any
) -> None:
    _check(events, partial(posthog_to_segment, sent_at=batch_sent_at), "uuid")


def test_a_pageview_whose_url_does_not_parse_is_an_unnamed_page() -> None:
    event = {
        "event": "$pageview",
        "distinct_id": "u",
        "properties": {"$current_url": "http://[::1"},
    }
    message = posthog_to_segment(event, datetime.now(UTC))
    assert (message["type"], message["name"]) == ("page", None)
