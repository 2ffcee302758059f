"""The test oracle itself, and CSV rendering of read rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.gateway.queries.activity import ActivityDay
from services.gateway.render import to_csv
from tests.support.oracle import SentEvent, activity


def test_oracle_counts_a_tiny_history_by_hand() -> None:
    at = datetime(2026, 1, 1, 10, tzinfo=UTC)
    events = [
        SentEvent("1", "track", "a", at),
        SentEvent("1", "track", "a", at),  # duplicate messageId
        SentEvent("2", "page", "b", at),
        SentEvent("3", "identify", "c", at),  # not activity
        SentEvent("4", "track", "a", datetime(2026, 1, 3, 10, tzinfo=UTC)),
    ]
    days = activity(events, date(2026, 1, 1), date(2026, 1, 3))
    assert [(d["dau"], d["wau"], d["new_users"], d["events"]) for d in days] == [
        (2, 2, 2, 2),
        (0, 2, 0, 0),
        (1, 2, 0, 1),
    ]
    assert days[2]["stickiness"] == 0.5


def test_oracle_uses_the_project_timezone() -> None:
    late_evening_la = datetime(2026, 1, 2, 3, tzinfo=UTC)  # Jan 1, 19:00 in Los Angeles
    events = [SentEvent("1", "track", "a", late_evening_la)]
    days = activity(events, date(2026, 1, 1), date(2026, 1, 2), tz="America/Los_Angeles")
    assert [d["dau"] for d in days] == [1, 0]


def test_csv_has_a_header_and_one_line_per_row() -> None:
    rows = [
        ActivityDay(
            date=date(2026, 1, 1), dau=2, wau=2, mau=2, new_users=2, events=3, stickiness=1.0
        ),
        ActivityDay(
            date=date(2026, 1, 2), dau=0, wau=2, mau=2, new_users=0, events=0, stickiness=None
        ),
    ]
    assert to_csv(rows).splitlines() == [
        "date,dau,wau,mau,new_users,events,stickiness",
        "2026-01-01,2,2,2,2,3,1.0",
        "2026-01-02,0,2,2,0,0,",
    ]
