"""Calendar periods for period-based reads: ISO weeks (Monday first) and calendar months."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

Period = Literal["day", "week", "month"]


def period_start(day: date, period: Period) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def next_period(start: date, period: Period) -> date:
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def previous_period(start: date, period: Period) -> date:
    if period == "week":
        return start - timedelta(days=7)
    if period == "month":
        return (start - timedelta(days=1)).replace(day=1)
    return start - timedelta(days=1)


def periods_between(start: date, stop: date, period: Period) -> list[date]:
    """Starts of every period that overlaps [start, stop]."""
    out = []
    current = period_start(start, period)
    while current <= stop:
        out.append(current)
        current = next_period(current, period)
    return out
