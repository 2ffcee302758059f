"""Brute-force recomputation of the activity numbers from a list of sent events (SPEC §4).

Deliberately naive: plain Python over the deduplicated events, so it can be trusted as the
reference the streaming aggregates must equal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

ACTIVE = {"track", "page", "screen"}


@dataclass(frozen=True)
class SentEvent:
    message_id: str
    type: str
    person: str
    timestamp: datetime


def activity(events: list[SentEvent], start: date, stop: date, tz: str = "UTC") -> list[dict]:  # type: ignore[type-arg]
    unique = {e.message_id: e for e in events}.values()
    days_by_person: dict[str, set[date]] = defaultdict(set)
    events_by_day: dict[date, int] = defaultdict(int)
    zone = ZoneInfo(tz)
    for e in unique:
        if e.type in ACTIVE:
            day = e.timestamp.astimezone(zone).date()
            days_by_person[e.person].add(day)
            events_by_day[day] += 1
    first_day = {p: min(days) for p, days in days_by_person.items()}
    out = []
    day = start
    while day <= stop:

        def active_within(width: int, d: date = day) -> int:
            lo = d - timedelta(days=width - 1)
            return sum(1 for days in days_by_person.values() if any(lo <= x <= d for x in days))

        dau, mau = active_within(1), active_within(30)
        out.append(
            {
                "date": day.isoformat(),
                "dau": dau,
                "wau": active_within(7),
                "mau": mau,
                "new_users": sum(1 for f in first_day.values() if f == day),
                "events": events_by_day[day],
                "stickiness": round(dau / mau, 4) if mau else None,
            }
        )
        day += timedelta(days=1)
    return out
