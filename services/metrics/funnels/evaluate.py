"""A person's funnel attempts from their events: pure Python, no I/O (docs/funnels.md).

Every event matching step 1 opens an attempt; `best_attempts` returns, per entry day, the best
one (deepest; then earliest entry; then earliest step times; then smallest step-1 properties
as JSON), which is what `funnel_attempts` stores.

`ordered` and `any` allow events in the same second to match steps in any order, so within one
second the steps are matched to distinct events by bipartite matching (Kuhn's augmenting paths;
at most ten steps). `ordered` walks the seconds in time order and places as many consecutive
steps as it can in each: a step placed in the earliest possible second never costs a later step
anything, so this reaches the deepest step at the earliest times.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.common.funnels import FunnelDefinition


@dataclass(frozen=True, slots=True)
class FunnelEvent:
    ts: datetime  # rounded to the second, as archived
    name: str
    props: dict[str, Any]
    props_json: str | None = None  # the archived JSON text, handed back unchanged on insert


@dataclass(frozen=True, slots=True)
class Attempt:
    entry_ts: datetime
    depth: int
    seconds: list[int]  # seconds[0] = 0; seconds[i] = from step i to step i + 1 (0-based)
    props_json: str | None


def canonical(props: dict[str, Any]) -> str:
    """The properties' place in `strict` order among same-second, same-name events."""
    return json.dumps(props, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sort_events(events: list[FunnelEvent], strict: bool) -> None:
    """Time order; for `strict`, the total order docs/funnels.md defines."""
    if strict:
        events.sort(key=lambda e: (e.ts, e.name, canonical(e.props)))
    else:
        events.sort(key=lambda e: e.ts)


def best_attempts(
    funnel: FunnelDefinition,
    events: Sequence[FunnelEvent],
    zone: ZoneInfo,
    days: tuple[date, date] | None = None,
) -> dict[date, Attempt]:
    """Per entry day (in `days`, or all), the best non-voided attempt. `events` are the person's
    events sorted by `sort_events` (with strict=True for a strict funnel)."""
    return _Person(funnel, events).best(zone, days)


class _Person:
    def __init__(self, funnel: FunnelDefinition, events: Sequence[FunnelEvent]) -> None:
        self.funnel = funnel
        self.events = events
        self.times = [e.ts for e in events]
        self.window = timedelta(seconds=funnel.window_seconds)
        # hits[s][j]: event j matches step s
        self.hits = [[s.matches(e.name, e.props) for e in events] for s in funnel.steps]
        self.exclusions = [
            (*funnel.exclusion_span(ex), [ex.matches(e.name, e.props) for e in events])
            for ex in funnel.exclusions
        ]

    def best(self, zone: ZoneInfo, days: tuple[date, date] | None) -> dict[date, Attempt]:
        reach: Callable[[int], list[datetime]] = {
            "ordered": self._reach_ordered,
            "strict": self._reach_strict,
            "any": self._reach_any,
        }[self.funnel.order]
        best: dict[date, tuple[Any, Attempt]] = {}
        for i, event in enumerate(self.events):
            if not self.hits[0][i]:
                continue
            day = event.ts.astimezone(zone).date()
            if days is not None and not days[0] <= day <= days[1]:
                continue
            times = reach(i)
            if self._voided(times):
                continue
            rank = (-len(times), times, canonical(event.props))
            current = best.get(day)
            if current is None or rank < current[0]:
                seconds = [0] + [
                    int((b - a).total_seconds()) for a, b in zip(times, times[1:], strict=False)
                ]
                best[day] = (rank, Attempt(event.ts, len(times), seconds, event.props_json))
        return {day: attempt for day, (_, attempt) in best.items()}

    def _in_window(self, i: int) -> tuple[int, int]:
        """Index range of the events in [t1, t1 + W] for the attempt opened by event i."""
        t1 = self.times[i]
        return bisect_left(self.times, t1), bisect_right(self.times, t1 + self.window)

    def _groups(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """[lo, hi) split into runs of same-second events."""
        out = []
        start = lo
        while start < hi:
            end = bisect_right(self.times, self.times[start], start, hi)
            out.append((start, end))
            start = end
        return out

    def _reach_ordered(self, i: int) -> list[datetime]:
        n = len(self.funnel.steps)
        times = [self.times[i]]
        step = 1
        lo, hi = self._in_window(i)
        for start, end in self._groups(lo, hi):
            members = [j for j in range(start, end) if j != i]
            placed = _match_run(self.hits, step, n, members)
            times.extend([self.times[start]] * (placed - step))
            step = placed
            if step == n:
                break
        return times

    def _reach_strict(self, i: int) -> list[datetime]:
        n = len(self.funnel.steps)
        times = [self.times[i]]
        deadline = self.times[i] + self.window
        j = i + 1
        while len(times) < n and j < len(self.events):
            if not self.hits[len(times)][j] or self.times[j] > deadline:
                break
            times.append(self.times[j])
            j += 1
        return times

    def _reach_any(self, i: int) -> list[datetime]:
        n = len(self.funnel.steps)
        times = [self.times[i]]
        lo, hi = self._in_window(i)
        groups = iter(self._groups(lo, hi))
        allowed: list[int] = []  # the events up to the current second, in time order
        owner: dict[int, int] = {}  # event -> the step it is matched to
        for step in range(1, n):
            while not (allowed and _augment(self.hits, step, allowed, owner, set())):
                group = next(groups, None)
                if group is None:
                    return times
                allowed.extend(j for j in range(*group) if j != i)
            times.append(self.times[allowed[-1]])
        return times

    def _voided(self, times: list[datetime]) -> bool:
        depth = len(times)
        deadline = times[0] + self.window
        for first, last, hits in self.exclusions:
            if depth < first:
                continue
            after = bisect_right(self.times, times[first - 1])  # strictly after step `first`
            if depth >= last:
                stop = bisect_left(self.times, times[last - 1])  # strictly before step `last`
            else:
                stop = bisect_right(self.times, deadline)  # no later than the window's end
            if any(hits[j] for j in range(after, stop)):
                return True
        return False


def _augment(
    hits: list[list[bool]], step: int, events: list[int], owner: dict[int, int], seen: set[int]
) -> bool:
    """Kuhn's augmenting path: match `step` to one of `events`, re-matching others if needed."""
    for j in events:
        if hits[step][j] and j not in seen:
            seen.add(j)
            if j not in owner or _augment(hits, owner[j], events, owner, seen):
                owner[j] = step
                return True
    return False


def _match_run(hits: list[list[bool]], step: int, n: int, members: list[int]) -> int:
    """How far steps step, step+1, ... can all be matched to distinct events of one second:
    the first step that cannot (n when all can)."""
    owner: dict[int, int] = {}
    while step < n and _augment(hits, step, members, owner, set()):
        step += 1
    return step
