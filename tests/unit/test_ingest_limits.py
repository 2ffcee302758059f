"""Per-event limits: event time window, id lengths, size and nesting, NUL in strings."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from services.common.events import EventRecord, RejectedRecord
from services.ingest.accept import prepare, serialize_event
from services.ingest.body import read_body
from services.ingest.normalize import Invalid, event_time, normalize_fields, normalize_segment

RECEIVED = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def test_events_up_to_a_day_ahead_are_kept_and_later_ones_rejected() -> None:
    soon = RECEIVED + timedelta(hours=23)
    assert event_time(RECEIVED, soon, None) == soon
    with pytest.raises(Invalid) as caught:
        event_time(RECEIVED, RECEIVED + timedelta(hours=25), None)
    assert caught.value.code == "timestamp_in_future"
    # The limit applies after clock-skew correction: a device a year fast is fine.
    year_fast = RECEIVED + timedelta(days=365)
    assert event_time(RECEIVED, year_fast - timedelta(seconds=5), year_fast) == RECEIVED - (
        timedelta(seconds=5)
    )


def test_old_events_are_kept_for_imports_but_not_before_2000() -> None:
    old = datetime(2004, 2, 4, tzinfo=UTC)
    assert event_time(RECEIVED, old, None) == old
    for ancient in (datetime(1970, 1, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)):
        with pytest.raises(Invalid) as caught:
            event_time(RECEIVED, ancient, None)
        assert caught.value.code == "timestamp_out_of_range"


def test_skew_correction_overflow_is_a_rejection_not_a_crash() -> None:
    far = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(Invalid) as caught:
        event_time(RECEIVED, datetime(1, 1, 2, tzinfo=UTC), far)
    assert caught.value.code == "timestamp_out_of_range"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "track", "event": "x", "userId": "u" * 256}, "id_too_long"),
        ({"type": "track", "event": "x" * 256, "userId": "u"}, "event_name_too_long"),
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "2999-01-01"}, None),
    ],
)
def test_ids_and_names_are_capped(message: dict[str, Any], code: str | None) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_segment(message, 1, RECEIVED, None)
    assert caught.value.code == (code or "timestamp_in_future")


def _prepare(messages: list[Any], body_size: int = 10**6) -> tuple[list[Any], list[Any]]:
    prepared = prepare(
        messages, 1, max_event_bytes=1000, max_future_seconds=86_400, body_size=body_size
    )
    events = [EventRecord.model_validate_json(v) for _, v in prepared.events]
    rejected = [RejectedRecord.model_validate_json(v) for _, v in prepared.rejected]
    return events, rejected


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_oversized_and_deeply_nested_events_are_rejected_the_rest_kept() -> None:
    ok = {"type": "track", "event": "x", "userId": "u", "messageId": "ok"}
    big = {**ok, "messageId": "big", "properties": {"p": "x" * 1000}}
    deep = {**ok, "messageId": "deep", "properties": {"p": _deep(230)}}
    deeper = {**ok, "messageId": "deeper", "properties": {"p": _deep(400)}}
    events, rejected = _prepare([ok, big, deep, deeper])
    assert [e.message_id for e in events] == ["ok"]
    assert {(r.message_id, r.reason) for r in rejected} == {
        ("big", "event_too_large"),
        ("deep", "too_deeply_nested"),
        ("deeper", "too_deeply_nested"),
    }


@pytest.mark.parametrize("depth", [230, 400])
def test_nesting_is_caught_even_when_the_body_is_too_small_to_measure(depth: int) -> None:
    # A small body skips per-event measuring; serializing the record still catches it.
    message = {"type": "track", "event": "x", "userId": "u", "properties": {"p": _deep(depth)}}
    events, rejected = _prepare([message], body_size=10)
    assert (events, [r.reason for r in rejected]) == ([], ["too_deeply_nested"])


def test_a_nested_but_readable_event_is_kept() -> None:
    message = {"type": "track", "event": "x", "userId": "u", "properties": {"p": _deep(100)}}
    events, rejected = _prepare([message])
    assert (len(events), rejected) == (1, [])


def test_the_rejected_payload_of_a_huge_event_is_truncated() -> None:
    big = {"type": "track", "userId": "u", "properties": {"p": "x" * 100_000}}
    _, rejected = _prepare([big])
    assert rejected[0].reason == "event_too_large"
    assert rejected[0].payload["bytes"] > 100_000
    assert len(orjson.dumps(rejected[0].payload)) < 20_000


async def test_nul_in_strings_is_replaced() -> None:
    body = orjson.dumps({"batch": [{"event": "a\u0000b", "properties": {"k\u0000": "v\u0000"}}]})
    for content, headers in [
        (body, [(b"content-type", b"application/json")]),
        (gzip.compress(body), [(b"content-encoding", b"gzip")]),
    ]:
        chunks = [{"type": "http.request", "body": content, "more_body": False}]

        async def receive(chunks: list[dict[str, Any]] = chunks) -> dict[str, Any]:
            return chunks.pop(0)

        request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
        read = await read_body(request, 10_000)
        assert read.data == {"batch": [{"event": "a\ufffdb", "properties": {"k\ufffd": "v\ufffd"}}]}
        assert read.size == len(body)


def test_the_fast_serialization_is_the_event_record_contract() -> None:
    message = {
        "type": "page",
        "name": "Pricing ✓",
        "anonymousId": "device-1",
        "userId": 42,
        "messageId": "m-1",
        "timestamp": "2026-11-25T13:59:58.5+02:00",
        "sentAt": "2026-11-25T14:00:00+02:00",
        "properties": {"nested": {"list": [1, 2.5, None, True]}, "text": "é\u2028"},
        "context": {"traits": {"plan": "vip"}, "library": {"name": "x"}},
    }
    fields = normalize_fields(message, 9, RECEIVED, None)
    key, raw = serialize_event(fields)
    parsed = EventRecord.model_validate_json(raw)
    assert parsed == EventRecord(**fields)
    assert key == parsed.partition_key == b"9:device-1"
    assert parsed.original_timestamp == datetime(2026, 11, 25, 11, 59, 58, 500000, tzinfo=UTC)
    assert parsed.timestamp == RECEIVED - timedelta(seconds=1.5)
