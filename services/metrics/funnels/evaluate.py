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
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.common.funnels import FunnelDefinition, Step


class FunnelEvent:
    """An archived event. Its properties are parsed from the archived JSON only when a condition
    or a tie-break needs them: most events of most funnels are judged by their name alone."""

    __slots__ = ("_props", "name", "props_json", "ts")

    def __init__(
        self,
        ts: datetime,  # rounded to the second, as archived
        name: str,
        props: dict[str, Any] | None = None,
        props_json: str | None = None,  # the archived text, handed back unchanged on insert
    ) -> None:
        self.ts = ts
        self.name = name
        self._props = props
        self.props_json = props_json

    @property
    def props(self) -> dict[str, Any]:
        if self._props is None:
            self._props = orjson.loads(self.props_json) if self.props_json else {}
        return self._props


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
    """Time order; for `strict`, the total order docs/funnels.md defines (properties decide
    only among events of the same second and name, so only those are serialized)."""
    if not strict:
        events.sort(key=lambda e: e.ts)
        return
    events.sort(key=lambda e: (e.ts, e.name))
    start = 0
    while start < len(events):
        end = start + 1
        while end < len(events) and (events[end].ts, events[end].name) == (
            events[start].ts,
            events[start].name,
        ):
            end += 1
        if end - start > 1:
            events[start:end] = sorted(events[start:end], key=lambda e: canonical(e.props))
        start = end


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
        # hits[s][j]: event j matches step s; hit_index[s]: those j, ascending
        self.hits = [_matching(step, events) for step in funnel.steps]
        self.hit_index = [[j for j, hit in enumerate(row) if hit] for row in self.hits]
        # events that can serve a step after the first, ascending (all `any` ever looks at)
        self.later = sorted({j for index in self.hit_index[1:] for j in index})
        self.exclusions = [
            (*funnel.exclusion_span(ex), _matching(ex, events)) for ex in funnel.exclusions
        ]

    def best(self, zone: ZoneInfo, days: tuple[date, date] | None) -> dict[date, Attempt]:
        reach: Callable[[int], list[datetime]] = {
            "ordered": self._reach_ordered,
            "strict": self._reach_strict,
            "any": self._reach_any,
        }[self.funnel.order]
        best: dict[date, tuple[list[datetime], int]] = {}  # day -> (times, opening event)
        for i in self.hit_index[0]:
            day = self.times[i].astimezone(zone).date()
            if days is not None and not days[0] <= day <= days[1]:
                continue
            times = reach(i)
            if self._voided(times):
                continue
            current = best.get(day)
            if current is None or self._better(times, i, *current):
                best[day] = (times, i)
        out = {}
        for day, (times, i) in best.items():
            seconds = [0] + [int((b - a).total_seconds()) for a, b in pairwise(times)]
            out[day] = Attempt(times[0], len(times), seconds, self.events[i].props_json)
        return out

    def _better(self, times: list[datetime], i: int, other: list[datetime], j: int) -> bool:
        """Deeper; then earlier step times (entry first); then smaller step-1 properties."""
        if len(times) != len(other):
            return len(times) > len(other)
        if times != other:
            return times < other
        return canonical(self.events[i].props) < canonical(self.events[j].props)

    def _second(self, j: int) -> tuple[int, int]:
        """Index range of the events in the same second as event j."""
        t = self.times[j]
        return bisect_left(self.times, t), bisect_right(self.times, t)

    def _next_hit(self, steps: range, pos: int) -> int | None:
        """The first event at or after index `pos` matching one of `steps`."""
        found = None
        for s in steps:
            index = self.hit_index[s]
            k = bisect_left(index, pos)
            if k < len(index) and (found is None or index[k] < found):
                found = index[k]
        return found

    def _reach_ordered(self, i: int) -> list[datetime]:
        n = len(self.funnel.steps)
        deadline = self.times[i] + self.window
        start, end = self._second(i)
        step = _match_run(self.hits, 1, n, [j for j in range(start, end) if j != i])
        times = [self.times[i]] * step
        while step < n:
            # Only a second holding an event for the next step can move the attempt on.
            j = self._next_hit(range(step, step + 1), end)
            if j is None or self.times[j] > deadline:
                break
            start, end = self._second(j)
            placed = _match_run(self.hits, step, n, list(range(start, end)))
            times.extend([self.times[j]] * (placed - step))
            step = placed
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
        t1 = self.times[i]
        deadline = t1 + self.window
        times = [t1]
        # `allowed`: the events that can serve later steps, other than e1, from t1's second up
        # to `frontier`, in order; `admitted`: how far into self.later they reach.
        first, last = self._second(i)
        admitted = bisect_left(self.later, last)
        allowed = [k for k in self.later[bisect_left(self.later, first) : admitted] if k != i]
        frontier = t1
        owner: dict[int, int] = {}  # event -> the step it is matched to
        for step in range(1, n):
            while not _augment(self.hits, step, allowed, owner, set()):
                # An augmenting path needs a new event matching one of the steps so far: let in
                # every event up to the next second that has one.
                j = self._next_hit(range(1, step + 1), bisect_right(self.times, frontier))
                if j is None or self.times[j] > deadline:
                    return times
                frontier = self.times[j]
                upto = bisect_left(self.later, self._second(j)[1])
                allowed.extend(self.later[admitted:upto])
                admitted = upto
            times.append(frontier)
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


def _matching(step: Step, events: Sequence[FunnelEvent]) -> list[bool]:
    if not step.where:
        return [e.name == step.event for e in events]
    return [e.name == step.event and step.matches(e.name, e.props) for e in events]


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
