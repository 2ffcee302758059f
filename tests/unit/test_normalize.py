"""Segment message normalization: validation reasons, clock-skew correction, id generation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.normalize import Invalid, normalize_segment, rejection

RECEIVED = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The device clock runs 1 hour fast: it stamped the event 10 s before sending.
    device_now = RECEIVED + timedelta(hours=1)
    message = {
        "type": "track",
        "event": "x",
        "userId": "u",
        "timestamp": (device_now - timedelta(seconds=10)).isoformat(),
        "sentAt": device_now.isoformat(),
    }
    event = normalize_segment(message, 1, RECEIVED, None)
    assert event.timestamp == RECEIVED - timedelta(seconds=10)
    assert event.original_timestamp == device_now - timedelta(seconds=10)
    assert event.sent_at == device_now
    assert event.received_at == RECEIVED


def test_batch_sent_at_applies_when_the_message_has_none() -> None:
    sent = RECEIVED + timedelta(minutes=5)
    message = {"type": "page", "anonymousId": "a", "timestamp": sent.isoformat()}
    event = normalize_segment(message, 1, RECEIVED, batch_sent_at=sent)
    assert event.timestamp == RECEIVED


def test_without_sent_at_the_timestamp_is_trusted_and_without_either_it_is_receipt() -> None:
    at = RECEIVED - timedelta(days=3)
    assert (
        normalize_segment(
            {"type": "track", "event": "x", "userId": "u", "timestamp": at.isoformat()},
            1,
            RECEIVED,
            None,
        ).timestamp
        == at
    )
    assert (
        normalize_segment(
            {"type": "track", "event": "x", "userId": "u"}, 1, RECEIVED, None
        ).timestamp
        == RECEIVED
    )


def test_message_id_is_generated_when_absent_and_kept_when_given() -> None:
    a = normalize_segment({"type": "track", "event": "x", "userId": "u"}, 1, RECEIVED, None)
    b = normalize_segment({"type": "track", "event": "x", "userId": "u"}, 1, RECEIVED, None)
    assert a.message_id and b.message_id and a.message_id != b.message_id
    given = {"type": "track", "event": "x", "userId": "u", "messageId": "m-1"}
    assert normalize_segment(given, 1, RECEIVED, None).message_id == "m-1"


def test_person_is_user_id_else_anonymous_id() -> None:
    both = {"type": "track", "event": "x", "userId": "u", "anonymousId": "a"}
    assert normalize_segment(both, 1, RECEIVED, None).distinct_id == "u"
    anon = {"type": "track", "event": "x", "anonymousId": "a"}
    assert normalize_segment(anon, 1, RECEIVED, None).distinct_id == "a"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "track", "event": "x"}, "missing_id"),
        ({"type": "track", "userId": "u"}, "missing_event"),
        (
            {"type": "track", "event": "x", "userId": "u", "timestamp": "yesterday"},
            "invalid_timestamp",
        ),
        (
            {"type": "track", "event": "x", "userId": "u", "messageId": "m" * 101},
            "message_id_too_long",
        ),
        ({"type": "bogus", "userId": "u"}, "invalid_type"),
        ({"type": ["track"], "userId": "u"}, "invalid_type"),  # unhashable: was a TypeError
        ({"type": "alias", "userId": "u"}, "missing_id"),
        ({"type": "track", "event": "x", "userId": "u", "properties": [1]}, "invalid_field"),
        ("not an object", "not_an_object"),
    ],
)
def test_invalid_events_are_rejected_with_a_reason(message: object, code: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_segment(message, 1, RECEIVED, None)
    assert caught.value.code == code
    rejected = rejection(message, 1, RECEIVED, caught.value)
    assert rejected.reason == code
    assert rejected.detail == str(caught.value)


def test_a_message_id_of_100_chars_is_fine() -> None:
    message = {"type": "track", "event": "x", "userId": "u", "messageId": "m" * 100}
    assert normalize_segment(message, 1, RECEIVED, None).message_id == "m" * 100


def test_rejections_never_keep_the_write_key() -> None:
    message = {"type": "track", "userId": "u", "writeKey": "secret"}
    with pytest.raises(Invalid) as caught:
        normalize_segment(message, 1, RECEIVED, None)
    assert "writeKey" not in rejection(message, 1, RECEIVED, caught.value).payload


def test_page_name_becomes_the_event_name() -> None:
    page = {"type": "page", "name": "Pricing", "userId": "u"}
    assert normalize_segment(page, 1, RECEIVED, None).event == "Pricing"


def test_partition_key_follows_the_device() -> None:
    with_device = {"type": "track", "event": "x", "userId": "u", "anonymousId": "d"}
    assert normalize_segment(with_device, 7, RECEIVED, None).partition_key == b"7:d"
