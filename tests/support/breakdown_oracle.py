"""Brute-force recomputation of breakdowns that need each event's value: retention by value.

`oracle.SentEvent` carries no properties, so `ValuedEvent` adds what the SDK put on the event for
the breakdown key — as an event property, as a `context.traits` trait, or both (the property
wins, as in the metrics service) — and, for an identify, the trait it sets. An event without a
value of its own takes its person's latest identify trait at or before it (to the second; the
larger value when two identifies share a second). Plain Python over the deduplicated events,
with oracle.py's identity merges, so it can be trusted as the reference for the streaming
aggregates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support import oracle
from tests.support.oracle import ACTIVE, SentEvent

MAX_VALUES = 50


@dataclass(frozen=True)
class ValuedEvent:
    sent: SentEvent
    prop: str | None = None  # properties[key]
    trait: str | None = None  # context.traits[key]
    sets: str | None = None  # an identify's traits[key]

    @property
    def value(self) -> str | None:
        return self.prop if self.prop is not None else self.trait


def _second(ts: datetime) -> datetime:
    return (ts + timedelta(milliseconds=500)).replace(microsecond=0)


def values_as_of(events: list[ValuedEvent]) -> dict[str, str]:
    """message_id -> the active event's value: its own, else its person's identify trait as of
    the event."""
    unique = list({v.sent.message_id: v for v in events}.values())
    person = oracle._people([v.sent for v in unique])
    sets: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for v in unique:
        if v.sent.type == "identify" and v.sets:
            sets[person[v.sent.person]].append((_second(v.sent.timestamp), v.sets))
    out = {}
    for v in unique:
        if v.sent.type not in ACTIVE:
            continue
        value = v.value
        if value is None:
            at = _second(v.sent.timestamp)
            earlier = [s for s in sets[person[v.sent.person]] if s[0] <= at]
            value = max(earlier)[1] if earlier else None
        if value is not None:
            out[v.sent.message_id] = value
    return out


def _name(e: SentEvent) -> str:
    return e.event if e.type == "track" else f"${e.type}"


def retention_breakdown(
    events: list[ValuedEvent],
    start: date,
    stop: date,
    length: int,
    period: str,
    mode: str,
    start_event: str | None = None,
    return_event: str | None = None,
    tz: str = "UTC",
) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    """(the unsplit cohorts, [{"value", "cohorts"}]) as /v1/retention?breakdown= reports them.

    A member's values are those any of their active events carried on their cohort-defining day
    (first active day, or first `start_event` day); none -> the None group. Days are in `tz`.
    """
    unique = list({v.sent.message_id: v for v in events}.values())
    person = oracle._people([v.sent for v in unique])
    resolved = values_as_of(unique)
    step = 7 if period == "week" else 1
    zone = ZoneInfo(tz)

    def period_of(d: date) -> date:
        return d - timedelta(days=d.weekday()) if period == "week" else d

    first_day: dict[str, date] = {}
    returns: dict[str, set[date]] = defaultdict(set)
    values_on: dict[tuple[str, date], set[str]] = defaultdict(set)
    for v in unique:
        e = v.sent
        if e.type not in ACTIVE:
            continue
        p, day = person[e.person], e.timestamp.astimezone(zone).date()
        if start_event is None or _name(e) == start_event:
            first_day[p] = min(first_day.get(p, day), day)
        if return_event is None or _name(e) == return_event:
            returns[p].add(period_of(day))
        if e.message_id in resolved:
            values_on[(p, day)].add(resolved[e.message_id])

    starts = []
    cohort = period_of(start)
    while cohort <= stop:
        starts.append(cohort)
        cohort += timedelta(days=step)
    everyone = {p for p, day in first_day.items() if period_of(day) in starts}
    groups: dict[str | None, set[str]] = defaultdict(set)
    for p in everyone:
        carried = values_on.get((p, first_day[p]))
        for value in sorted(carried) if carried else [None]:
            groups[value].add(p)

    def cohorts(members: set[str]) -> list[dict]:  # type: ignore[type-arg]
        out = []
        for c in starts:
            in_cohort = [p for p in members if period_of(first_day[p]) == c]
            retained = []
            for k in range(length + 1):
                target = c + timedelta(days=k * step)
                if mode == "on":
                    hit = [p for p in in_cohort if target in returns[p]]
                else:
                    hit = [p for p in in_cohort if any(r >= target for r in returns[p])]
                retained.append(len(hit))
            out.append({"date": c.isoformat(), "size": len(in_cohort), "retained": retained})
        return out

    ranked = sorted((v for v in groups if v is not None), key=lambda v: (-len(groups[v]), v))
    shown: list[str | None] = [*ranked[:MAX_VALUES]]
    if None in groups:
        shown.append(None)
    return cohorts(everyone), [{"value": v, "cohorts": cohorts(groups[v])} for v in shown]


def carried_values(
    events: list[ValuedEvent], tz: str = "UTC"
) -> dict[tuple[str, date], set[str | None]]:
    """(person, day) -> the values their active events carried that day; None when one of
    them carried no value (the splits' null group)."""
    values = values_as_of(events)
    sent = list({v.sent.message_id: v.sent for v in events}.values())
    person = oracle._people(sent)
    carried: dict[tuple[str, date], set[str | None]] = defaultdict(set)
    for e in sent:
        if e.type in ACTIVE:
            carried[(person[e.person], oracle.day_of(e, tz))].add(values.get(e.message_id))
    return carried


def _null_last(ranked: list[str | None], groups: Collection[str | None]) -> list[str | None]:
    """The ranked values in code point order, then the None group if there is one."""
    return [*sorted(v for v in ranked if v is not None), *([None] if None in groups else [])]


def sessions_breakdown(
    events: list[ValuedEvent], start: date, stop: date, tz: str = "UTC"
) -> list[dict]:  # type: ignore[type-arg]
    """[{"value", "days"}] as /v1/sessions?breakdown= reports them: a session counts under each
    value its person's active events carried on its day; the values with the most sessions in
    the range, then the None group."""
    carried = carried_values(events, tz)
    by_value: dict[str | None, list[tuple[date, int, int]]] = defaultdict(list)
    for who, day, seconds, n in oracle.session_rows([v.sent for v in events], tz):
        if start <= day <= stop:
            for value in carried[(who, day)]:
                by_value[value].append((day, seconds, n))
    valued = [v for v in by_value if v is not None]
    ranked = sorted(valued, key=lambda v: (-len(by_value[v]), v))[:MAX_VALUES]
    return [
        {"value": v, "days": oracle.session_days(by_value[v], start, stop)}
        for v in _null_last(ranked, by_value)
    ]


def stickiness_breakdown(
    events: list[ValuedEvent], start: date, stop: date, period: str, tz: str = "UTC"
) -> list[dict]:  # type: ignore[type-arg]
    """[{"value", "periods"}] as /v1/stickiness?breakdown= reports them: per value, persons by
    the number of days of the period they were active carrying it; the values with the most
    persons summed over the range's periods (a person counts once per period), then the None
    group."""
    lo = oracle._period_start(start, period)
    hi = oracle._shift(oracle._period_start(stop, period), period, 1)
    days: dict[str | None, dict[str, set[date]]] = defaultdict(lambda: defaultdict(set))
    for (who, day), carried in carried_values(events, tz).items():
        if lo <= day < hi:
            for value in carried:
                days[value][who].add(day)

    def person_periods(value: str) -> int:
        return len({(who, oracle._period_start(d, period)) for who, ds in days[value].items()
                    for d in ds})  # fmt: skip

    valued = [v for v in days if v is not None]
    ranked = sorted(valued, key=lambda v: (-person_periods(v), v))[:MAX_VALUES]
    return [
        {"value": v, "periods": oracle.stickiness_of(days[v], start, stop, period)}
        for v in _null_last(ranked, days)
    ]


def lifecycle_breakdown(
    events: list[ValuedEvent], start: date, stop: date, period: str, tz: str = "UTC"
) -> list[dict]:  # type: ignore[type-arg]
    """[{"value", "periods"}] as /v1/lifecycle?breakdown= reports them: per value and period,
    the persons who carried it in the period by their own status (oracle.lifecycle's), and as
    dormant (negative) those who carried it in the period before and were not active at all in
    this one; the values with the most persons counted over the range's periods, then the None
    group."""
    active = {
        who: {oracle._period_start(d, period) for d in days}
        for who, days in oracle.active_days([v.sent for v in events], tz).items()
    }
    holders: dict[str | None, dict[date, set[str]]] = defaultdict(lambda: defaultdict(set))
    for (who, day), carried in carried_values(events, tz).items():
        for value in carried:
            holders[value][oracle._period_start(day, period)].add(who)
    series: dict[str | None, list[dict]] = {}  # type: ignore[type-arg]
    counted: dict[str | None, int] = {}
    for value, by_period in holders.items():
        rows, persons = [], 0
        current = oracle._period_start(start, period)
        while current <= stop:
            before = oracle._shift(current, period, -1)
            now = by_period.get(current, set())
            returning = {who for who in now if before in active[who]}
            new = {who for who in now if min(active[who]) == current}
            gone = {who for who in by_period.get(before, set()) if current not in active[who]}
            rows.append(
                {
                    "start": current.isoformat(),
                    "new": len(new),
                    "returning": len(returning),
                    "resurrecting": len(now - returning - new),
                    "dormant": -len(gone),
                }
            )
            persons += len(now) + len(gone)
            current = oracle._shift(current, period, 1)
        if persons:
            series[value], counted[value] = rows, persons
    valued = [v for v in series if v is not None]
    ranked = sorted(valued, key=lambda v: (-counted[v], v))[:MAX_VALUES]
    return [{"value": v, "periods": series[v]} for v in _null_last(ranked, series)]
