"""Brute-force recomputation of the activity numbers from a list of sent events (SPEC §1, §4).

Deliberately naive: plain Python over the deduplicated events, with identity merges done by a
union-find over every identify/alias link, so it can be trusted as the reference the streaming
aggregates must equal whatever the order, duplication or batching of delivery.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

ACTIVE = {"track", "page", "screen"}


@dataclass(frozen=True)
class SentEvent:
    message_id: str
    type: str
    person: str  # the actor: userId, else anonymousId
    timestamp: datetime
    linked: str | None = None  # identify: the anonymousId; alias: the previousId
    event: str = "viewed"


def day_of(e: SentEvent, tz: str = "UTC") -> date:
    """The event's day in the project's timezone."""
    return e.timestamp.astimezone(ZoneInfo(tz)).date()


def _people(events: list[SentEvent]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for e in events:
        find(e.person)
        if e.type in ("identify", "alias") and e.linked and e.linked != e.person:
            a, b = find(e.person), find(e.linked)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in parent}


def active_days(events: list[SentEvent], tz: str = "UTC") -> dict[str, set[date]]:
    """person -> the days (in tz) they did an active event, after dedup and identity merges."""
    unique = list({e.message_id: e for e in events}.values())
    person = _people(unique)
    days: dict[str, set[date]] = defaultdict(set)
    for e in unique:
        if e.type in ACTIVE:
            days[person[e.person]].add(day_of(e, tz))
    return days


def activity(events: list[SentEvent], start: date, stop: date, tz: str = "UTC") -> list[dict]:  # type: ignore[type-arg]
    unique = list({e.message_id: e for e in events}.values())
    days_by_person = active_days(unique, tz)
    events_by_day = Counter(day_of(e, tz) for e in unique if e.type in ACTIVE)
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


def _period_start(d: date, period: str) -> date:
    if period == "week":
        return d - timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    return d


def _shift(start: date, period: str, n: int) -> date:
    if period == "day":
        return start + timedelta(days=n)
    if period == "week":
        return start + timedelta(days=7 * n)
    month = start.month - 1 + n
    return date(start.year + month // 12, month % 12 + 1, 1)


def lifecycle(
    events: list[SentEvent], start: date, stop: date, period: str, tz: str = "UTC"
) -> list[dict]:  # type: ignore[type-arg]
    days_by_person = active_days(events, tz)
    periods_by_person = {
        p: {_period_start(d, period) for d in ds} for p, ds in days_by_person.items()
    }
    first = {p: min(ps) for p, ps in periods_by_person.items()}
    out = []
    current = _period_start(start, period)
    while current <= stop:
        prev = _shift(current, period, -1)
        now = {p for p, ps in periods_by_person.items() if current in ps}
        before = {p for p, ps in periods_by_person.items() if prev in ps}
        out.append(
            {
                "start": current.isoformat(),
                "new": sum(1 for p in now if first[p] == current),
                "returning": len(now & before),
                "resurrecting": sum(1 for p in now - before if first[p] < current),
                "dormant": -len(before - now),
            }
        )
        current = _shift(current, period, 1)
    return out


def stickiness(
    events: list[SentEvent], start: date, stop: date, period: str, tz: str = "UTC"
) -> list[dict]:  # type: ignore[type-arg]
    return stickiness_of(active_days(events, tz), start, stop, period)


def stickiness_of(
    days_by_person: dict[str, set[date]], start: date, stop: date, period: str
) -> list[dict]:  # type: ignore[type-arg]
    """Per period of [start, stop], persons by the number of their days in it."""
    width = 7 if period == "week" else 31
    out = []
    current = _period_start(start, period)
    while current <= stop:
        end = _shift(current, period, 1)
        histogram = [0] * width
        for days in days_by_person.values():
            n = sum(1 for d in days if current <= d < end)
            if n:
                histogram[n - 1] += 1
        out.append({"start": current.isoformat(), "histogram": histogram})
        current = end
    return out


def top_events(events: list[SentEvent], start: date, stop: date, tz: str = "UTC") -> list[dict]:  # type: ignore[type-arg]
    unique = list({e.message_id: e for e in events}.values())
    person = _people(unique)
    counts: Counter[str] = Counter()
    persons: dict[str, set[str]] = defaultdict(set)
    for e in unique:
        if e.type in ACTIVE and start <= day_of(e, tz) <= stop:
            name = e.event if e.type == "track" else f"${e.type}"
            counts[name] += 1
            persons[name].add(person[e.person])
    return sorted(
        ({"event": n, "count": c, "persons": len(persons[n])} for n, c in counts.items()),
        key=lambda r: (-r["count"], r["event"]),
    )


def _event_days(events: list[SentEvent], name: str | None, tz: str) -> dict[str, set[date]]:
    """person -> days they did an active event (or the named one)."""
    if name is None:
        return active_days(events, tz)
    unique = list({e.message_id: e for e in events}.values())
    person = _people(unique)
    days: dict[str, set[date]] = defaultdict(set)
    for e in unique:
        if e.type in ACTIVE and (e.event if e.type == "track" else f"${e.type}") == name:
            days[person[e.person]].add(day_of(e, tz))
    return days


def retention(
    events: list[SentEvent],
    start: date,
    stop: date,
    length: int,
    period: str,
    mode: str,
    start_event: str | None = None,
    return_event: str | None = None,
    tz: str = "UTC",
) -> list[dict]:  # type: ignore[type-arg]
    step = 7 if period == "week" else 1
    firsts = {
        p: _period_start(min(ds), period) for p, ds in _event_days(events, start_event, tz).items()
    }
    returns = {
        p: {_period_start(d, period) for d in ds}
        for p, ds in _event_days(events, return_event, tz).items()
    }
    out = []
    cohort = _period_start(start, period)
    while cohort <= stop:
        members = [p for p, first in firsts.items() if first == cohort]
        retained = []
        for k in range(length + 1):
            target = cohort + timedelta(days=k * step)
            if mode == "on":
                hit = [p for p in members if target in returns.get(p, set())]
            else:
                hit = [p for p in members if any(r >= target for r in returns.get(p, set()))]
            retained.append(len(hit))
        out.append({"date": cohort.isoformat(), "size": len(members), "retained": retained})
        cohort += timedelta(days=step)
    return out


def _name(e: SentEvent) -> str:
    return e.event if e.type == "track" else f"${e.type}"


def _timelines(events: list[SentEvent]) -> dict[str, list[SentEvent]]:
    """person -> their deduplicated active events in time order (ties by event name)."""
    unique = list({e.message_id: e for e in events}.values())
    person = _people(unique)
    out: dict[str, list[SentEvent]] = defaultdict(list)
    for e in unique:
        if e.type in ACTIVE:
            out[person[e.person]].append(e)
    for timeline in out.values():
        timeline.sort(key=lambda e: (e.timestamp, _name(e)))
    return out


def session_rows(
    events: list[SentEvent],
    tz: str = "UTC",
    gap: timedelta = timedelta(minutes=30),
    cap: timedelta = timedelta(hours=24),
) -> list[tuple[str, date, int, int]]:
    """Every session as (person, day it starts, seconds, events): `gap` of inactivity ends one,
    and one is at most `cap` long (by default 30 min and 24 h)."""
    zone = ZoneInfo(tz)
    out = []
    for who, timeline in _timelines(events).items():
        found: list[list[datetime]] = []
        for e in timeline:
            t = e.timestamp
            gap_ok = found and t - found[-1][-1] <= gap
            if gap_ok and t - found[-1][0] <= cap:
                found[-1].append(t)
            else:
                found.append([t])
        for times in found:
            day = times[0].astimezone(zone).date()
            out.append((who, day, int((times[-1] - times[0]).total_seconds()), len(times)))
    return out


def session_days(rows: list[tuple[date, int, int]], start: date, stop: date) -> list[dict]:  # type: ignore[type-arg]
    """Per day of [start, stop], the figures of the sessions (day, seconds, events) of `rows`
    (median as percentile_cont(0.5)), rounded as the API documents."""
    by_day: dict[date, list[tuple[int, int]]] = defaultdict(list)
    for day, seconds, n in rows:
        by_day[day].append((seconds, n))
    out = []
    day = start
    while day <= stop:
        found = by_day.get(day, [])
        n = len(found)
        durations = sorted(s for s, _ in found)
        out.append(
            {
                "date": day.isoformat(),
                "sessions": n,
                "median_seconds": round(float(statistics.median(durations)), 3) if n else None,
                "mean_seconds": round(sum(durations) / n, 3) if n else None,
                "events_per_session": round(sum(k for _, k in found) / n, 3) if n else None,
                "bounce_rate": round(sum(1 for _, k in found if k == 1) / n, 4) if n else None,
            }
        )
        day += timedelta(days=1)
    return out


def sessions(
    events: list[SentEvent],
    start: date,
    stop: date,
    tz: str = "UTC",
    gap: timedelta = timedelta(minutes=30),
    cap: timedelta = timedelta(hours=24),
) -> list[dict]:  # type: ignore[type-arg]
    """Per day: sessions started, median/mean seconds, events per session, bounce rate."""
    rows = session_rows(events, tz, gap, cap)
    return session_days([(day, seconds, n) for _, day, seconds, n in rows], start, stop)


def paths(
    events: list[SentEvent],
    start: date,
    stop: date,
    anchor: str,
    after: bool = True,
    depth: int = 3,
    limit: int = 20,
    tz: str = "UTC",
) -> list[dict]:  # type: ignore[type-arg]
    """Edges from a person's first `anchor` event (after) or to it (before), over the range's
    active events with consecutive repeats collapsed; per step the `limit` most common."""
    counts: Counter[tuple[int, str, str]] = Counter()
    for timeline in _timelines(events).values():
        names: list[str] = []
        for e in timeline:
            inside = start <= day_of(e, tz) <= stop
            if inside and (not names or names[-1] != _name(e)):
                names.append(_name(e))
        if anchor not in names:
            continue
        i = names.index(anchor)
        for k in range(1, depth + 1):
            if after and i + k < len(names):
                counts[(k, names[i + k - 1], names[i + k])] += 1
            elif not after and i - k >= 0:
                counts[(k, names[i - k], names[i - k + 1])] += 1
    edges = sorted(
        ({"from": a, "to": b, "step": k, "persons": n} for (k, a, b), n in counts.items()),
        key=lambda r: (r["step"], -r["persons"], r["from"], r["to"]),
    )
    kept: Counter[int] = Counter()
    out = []
    for edge in edges:
        kept[edge["step"]] += 1
        if kept[edge["step"]] <= limit:
            out.append(edge)
    return out


def breakdown(
    events: list[SentEvent], values: dict[str, str], start: date, stop: date, tz: str = "UTC"
) -> list[dict]:  # type: ignore[type-arg]
    """Per value: DAU/WAU/MAU/events by day; `values` maps message_id -> the event's value.

    The active events without one are the None group, listed after the 50 values with the most
    events (over the range and the 29 days before it)."""
    unique = list({e.message_id: e for e in events}.values())
    person = _people(unique)
    days: dict[str | None, dict[str, set[date]]] = defaultdict(lambda: defaultdict(set))
    counts: dict[str | None, Counter[date]] = defaultdict(Counter)
    for e in unique:
        value = values.get(e.message_id)
        day = day_of(e, tz)
        if e.type in ACTIVE and start - timedelta(days=29) <= day <= stop:
            days[value][person[e.person]].add(day)
            counts[value][day] += 1
    valued = [v for v in days if v is not None]
    ranked = sorted(valued, key=lambda v: (-sum(counts[v].values()), v))[:50]
    out = []
    for value in [*sorted(ranked), *([None] if None in days else [])]:
        series = []
        day = start
        while day <= stop:

            def within(width: int, d: date = day, v: str | None = value) -> int:
                lo = d - timedelta(days=width - 1)
                return sum(1 for ds in days[v].values() if any(lo <= x <= d for x in ds))

            series.append(
                {
                    "date": day.isoformat(),
                    "dau": within(1),
                    "wau": within(7),
                    "mau": within(30),
                    "events": counts[value][day],
                }
            )
            day += timedelta(days=1)
        out.append({"value": value, "days": series})
    return out
