"""PostHog capture events -> Segment messages -> EventRecord (the mapping documented in README)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.common.events import EventRecord
from services.ingest.normalize import Invalid, normalize_segment
from services.ingest.posthog_mapping import posthog_to_segment

RECEIVED = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def _record(event: Any, sent_at: Any = None) -> EventRecord:
    return normalize_segment(posthog_to_segment(event, RECEIVED, sent_at), 3, RECEIVED, None)


def test_a_custom_event_is_a_track_keyed_by_uuid_and_distinct_id() -> None:
    record = _record(
        {
            "event": "signed up",
            "distinct_id": "user-1",
            "uuid": "0191e5a2-0000-7000-8000-000000000001",
            "properties": {"plan": "free", "$lib": "posthog-python", "$lib_version": "7.91.1"},
            "timestamp": (RECEIVED - timedelta(minutes=1)).isoformat(),
        }
    )
    assert (record.type, record.event, record.user_id) == ("track", "signed up", "user-1")
    assert record.message_id == "0191e5a2-0000-7000-8000-000000000001"
    assert record.properties["plan"] == "free"
    assert record.context["library"] == {"name": "posthog-python", "version": "7.91.1"}
    assert record.timestamp == RECEIVED - timedelta(minutes=1)
    assert record.project_id == 3


def test_identify_links_the_anonymous_id_and_carries_set_as_traits() -> None:
    record = _record(
        {
            "event": "$identify",
            "distinct_id": "user-1",
            "properties": {
                "$anon_distinct_id": "anon-9",
                "$set": {"plan": "vip"},
                "$set_once": {"plan": "free", "first_seen": "2026-01-01"},
            },
        }
    )
    assert (record.type, record.user_id, record.anonymous_id) == ("identify", "user-1", "anon-9")
    assert record.traits == {"plan": "vip", "first_seen": "2026-01-01"}
    assert "$set" not in record.properties


def test_create_alias_merges_the_alias_into_the_distinct_id() -> None:
    # posthog-python: alias(previous_id="p", distinct_id="d") sends distinct_id "p", alias "d".
    record = _record({"event": "$create_alias", "distinct_id": "p", "properties": {"alias": "d"}})
    assert (record.type, record.user_id, record.previous_id) == ("alias", "p", "d")


def test_create_alias_without_alias_is_rejected() -> None:
    with pytest.raises(Invalid) as caught:
        _record({"event": "$create_alias", "distinct_id": "p", "properties": {}})
    assert caught.value.code == "missing_id"


def test_pageview_and_screen_become_page_and_screen_views() -> None:
    page = _record(
        {
            "event": "$pageview",
            "distinct_id": "a",
            "properties": {"$current_url": "https://shop.example/pricing?x=1"},
        }
    )
    assert (page.type, page.event) == ("page", "/pricing")
    named = _record(
        {"event": "$pageview", "distinct_id": "a", "properties": {"$pathname": "/docs"}}
    )
    assert named.event == "/docs"
    screen = _record(
        {"event": "$screen", "distinct_id": "a", "properties": {"$screen_name": "Cart"}}
    )
    assert (screen.type, screen.event) == ("screen", "Cart")


def test_person_property_updates_are_not_activity() -> None:
    assert _record({"event": "$set", "distinct_id": "a", "$set": {"x": 1}}).type == "identify"
    group = _record(
        {
            "event": "$groupidentify",
            "distinct_id": "a",
            "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"n": 3}},
        }
    )
    assert (group.type, group.group_id, group.traits) == ("group", "acme", {"n": 3})


def test_other_dollar_events_are_track_events() -> None:
    record = _record({"event": "$autocapture", "distinct_id": "a"})
    assert (record.type, record.event) == ("track", "$autocapture")


def test_posthog_js_shape_distinct_id_and_token_in_properties() -> None:
    record = _record(
        {"event": "clicked", "properties": {"distinct_id": "a", "token": "phc_secret", "k": 1}}
    )
    assert record.user_id == "a"
    assert record.properties == {"distinct_id": "a", "k": 1}


def test_clock_skew_uses_sent_at_of_the_batch() -> None:
    device_now = RECEIVED + timedelta(hours=2)
    record = _record(
        {
            "event": "x",
            "distinct_id": "a",
            "timestamp": (device_now - timedelta(seconds=30)).isoformat(),
        },
        sent_at=device_now.isoformat(),
    )
    assert record.timestamp == RECEIVED - timedelta(seconds=30)
    assert record.sent_at == device_now


def test_offset_means_milliseconds_before_sending() -> None:
    record = _record({"event": "x", "distinct_id": "a", "offset": 1500})
    assert record.timestamp == RECEIVED - timedelta(milliseconds=1500)


def test_missing_uuid_gets_a_generated_message_id() -> None:
    a = _record({"event": "x", "distinct_id": "a"})
    b = _record({"event": "x", "distinct_id": "a"})
    assert a.message_id != b.message_id


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"distinct_id": "a"}, "missing_event"),
        ({"event": "x"}, "missing_id"),
        ({"event": "x", "distinct_id": "a", "properties": "nope"}, "invalid_field"),
        ({"event": "x", "distinct_id": "a", "uuid": "u" * 101}, "message_id_too_long"),
        ({"event": "x", "distinct_id": "a", "timestamp": "soon"}, "invalid_timestamp"),
        ({"event": "x", "distinct_id": "a", "offset": 1e300}, "timestamp_out_of_range"),
        (["not", "an", "event"], "not_an_object"),
    ],
)
def test_invalid_posthog_events_are_rejected_with_a_reason(event: Any, code: str) -> None:
    with pytest.raises(Invalid) as caught:
        _record(event)
    assert caught.value.code == code
