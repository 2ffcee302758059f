"""Brute-force recomputation of funnels from a list of sent events, written from docs/funnels.md
alone (not from the metrics service's implementation), so it can serve as the reference the
streaming funnel rows must equal whatever the order, duplication or batching of delivery.

Deliberately naive and exponential: every attempt is found by enumerating every sequence (or, for
`any`, every assignment) of distinct events, and conditions are matched by a separate reading of
the operators' rules. Test histories are small.

Every tie is settled as docs/funnels.md settles it: `strict` orders a person's events by (time,
name, properties as sorted JSON); `ordered` takes the deepest sequence, then the earliest times;
the best attempt is the deepest, then the earliest entry, then the earliest step times, then the
step-1 event whose properties sort first.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from services.common.funnels import FunnelDefinition
from tests.support.oracle import SentEvent, _people

ACTIVE = {"track", "page", "screen"}
MISSING = object()


@dataclass(frozen=True)
class FunnelEvent:
    """A sent event with what funnels look at: its name, properties and SDK-attached traits."""

    message_id: str
    type: str
    person: str  # the actor: userId, else anonymousId
    timestamp: datetime  # as sent (sub-second); the archive rounds it to the second
    linked: str | None = None  # identify: the anonymousId; alias: the previousId
    event: str | None = None  # track: the event; page/screen: the name (None: `$page`/`$screen`)
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)  # context.traits
    sets: dict[str, Any] = field(default_factory=dict)  # an identify's traits

    def sent(self) -> SentEvent:
        """The activity oracle's view of it (for the identity merges)."""
        return SentEvent(
            self.message_id, self.type, self.person, self.timestamp, self.linked, self.name
        )

    @property
    def name(self) -> str:
        if self.type == "track":
            return self.event or ""
        return self.event or f"${self.type}"

    @property
    def props(self) -> dict[str, Any]:
        """Properties over traits: a property wins over a trait of the same name."""
        merged = dict(self.traits)
        merged.update(self.properties)
        return merged


def rounded(ts: datetime) -> datetime:
    """To the second, half up, in UTC."""
    ts = ts.astimezone(UTC) + timedelta(milliseconds=500)
    return ts.replace(microsecond=0)


# Conditions -------------------------------------------------------------------------------------


def _number(x: object) -> bool:
    return type(x) in (int, float)


def _json_equal(a: object, b: object) -> bool:
    if _number(a) and _number(b):
        assert isinstance(a, int | float) and isinstance(b, int | float)
        return Fraction(a) == Fraction(b)  # by value: 1 == 1.0
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b  # true never equals 1
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b  # "1" never equals 1
    return False  # lists, objects, null never equal a scalar


def condition_holds(prop: str, op: str, value: Any, props: dict[str, Any]) -> bool:
    actual = props.get(prop, MISSING)
    if actual is MISSING:
        return op == "neq"
    if op == "eq":
        return _json_equal(actual, value)
    if op == "neq":
        return not _json_equal(actual, value)
    if op == "in":
        return any(_json_equal(actual, v) for v in value)
    if not _number(actual):
        return False
    a, v = Fraction(actual), Fraction(value)
    return {"gt": a > v, "gte": a >= v, "lt": a < v, "lte": a <= v}[op]


def _matches(step: Any, e: _Ev) -> bool:
    """`step` is a Step or an Exclusion of the definition."""
    return e.name == step.event and all(
        condition_holds(c.property, c.op, c.value, e.props) for c in step.where
    )


# Attempts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ev:
    idx: int
    t: int  # epoch seconds, rounded
    name: str
    props: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class Attempt:
    t1: int
    day: date
    times: tuple[int, ...]  # T1..Td
    voided: bool
    props: dict[str, Any] = field(compare=False)  # the step-1 event's
    person: str = field(default="", compare=False)

    @property
    def depth(self) -> int:
        return len(self.times)

    @property
    def seconds(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in itertools.pairwise(self.times))


def canonical(props: dict[str, Any]) -> str:
    return json.dumps(props, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sequences(f: FunnelDefinition, timeline: list[_Ev], e1: _Ev) -> Iterator[list[_Ev]]:
    """Every sequence e1, e2, ... of distinct events, each matching its step, with
    non-decreasing times, within the window (`ordered`)."""
    end = e1.t + f.window_seconds

    def extend(seq: list[_Ev]) -> Iterator[list[_Ev]]:
        yield seq
        i = len(seq)
        if i == len(f.steps):
            return
        prev = seq[-1].t
        for e in timeline:
            if e not in seq and prev <= e.t <= end and _matches(f.steps[i], e):
                yield from extend([*seq, e])

    yield from extend([e1])


def _strict_times(f: FunnelDefinition, timeline: list[_Ev], e1: _Ev) -> tuple[int, ...]:
    """`strict`: each step is the very next event in the person's total order."""
    # Events equal in time, name and properties are interchangeable: the order of the list is
    # the same whichever of them stands where, and each still opens its own attempt.
    order = sorted(timeline, key=lambda e: (e.t, e.name, canonical(e.props), e.idx))
    position = order.index(e1)
    times = [e1.t]
    for step, e in zip(f.steps[1:], order[position + 1 :], strict=False):
        if not _matches(step, e) or e.t > e1.t + f.window_seconds:
            break
        times.append(e.t)
    return tuple(times)


def _any_times(f: FunnelDefinition, timeline: list[_Ev], e1: _Ev) -> tuple[int, ...]:
    """T1..Td for order `any`: Ti is the smallest max-time over assignments of distinct events
    (not e1, in [t1, t1 + W]) to steps 2..i."""
    end = e1.t + f.window_seconds
    pool = [e for e in timeline if e != e1 and e1.t <= e.t <= end]
    times = [e1.t]
    for i in range(2, len(f.steps) + 1):
        steps = f.steps[1:i]
        best: int | None = None
        for chosen in itertools.permutations(pool, len(steps)):
            if all(_matches(s, e) for s, e in zip(steps, chosen, strict=True)):
                t = max(e.t for e in chosen)
                best = t if best is None else min(best, t)
        if best is None:
            break
        times.append(best)
    return tuple(times)


def _voided(f: FunnelDefinition, timeline: list[_Ev], times: tuple[int, ...]) -> bool:
    n, d, t1 = len(f.steps), len(times), times[0]
    for ex in f.exclusions:
        a = ex.from_step
        b = ex.to_step if ex.to_step is not None else n
        if d < a:
            continue
        ta = times[a - 1]
        for e in timeline:
            if not _matches(ex, e):
                continue
            if d >= b and ta < e.t < times[b - 1]:
                return True
            if d < b and ta < e.t <= t1 + f.window_seconds:
                return True
    return False


def attempts(
    events: Sequence[FunnelEvent], f: FunnelDefinition, tz: str
) -> dict[str, list[Attempt]]:
    """person -> every attempt their step-1 events open (voided ones too)."""
    unique = list({e.message_id: e for e in events}.values())
    person = _people([e.sent() for e in unique])
    zone = ZoneInfo(tz)
    timelines: dict[str, list[_Ev]] = defaultdict(list)
    for i, e in enumerate(unique):
        if e.type in ACTIVE:
            t = int(rounded(e.timestamp).timestamp())
            timelines[person[e.person]].append(_Ev(i, t, e.name, e.props))
    out: dict[str, list[Attempt]] = {}
    for p, timeline in timelines.items():
        found = []
        for e1 in timeline:
            if not _matches(f.steps[0], e1):
                continue
            if f.order == "any":
                times = _any_times(f, timeline, e1)
            elif f.order == "strict":
                times = _strict_times(f, timeline, e1)
            else:
                seqs = _sequences(f, timeline, e1)
                times = min((tuple(e.t for e in s) for s in seqs), key=lambda ts: (-len(ts), ts))
            day = datetime.fromtimestamp(e1.t, UTC).astimezone(zone).date()
            voided = _voided(f, timeline, times)
            found.append(Attempt(e1.t, day, times, voided, e1.props, p))
        out[p] = found
    return out


def _best(candidates: list[Attempt]) -> Attempt | None:
    """The deepest non-voided attempt; then the earliest times, entry first; then the step-1
    event whose properties sort first as JSON."""
    alive = [a for a in candidates if not a.voided]
    if not alive:
        return None
    return min(alive, key=lambda a: (-a.depth, a.times, canonical(a.props)))


def breakdown_value(props: dict[str, Any], key: str) -> str | None:
    value = props.get(key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if _number(value):
        return json.dumps(value)
    return None


def trait_value(value: Any) -> str | None:
    """An identify trait as breakdowns see it: a non-empty string, a number as Python writes it,
    true/false; at most 200 characters. Anything else sets nothing."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value:
        return value[:200]
    if _number(value):
        return str(value)[:200]
    return None


def identify_traits(events: Sequence[FunnelEvent], key: str) -> dict[str, list[tuple[int, str]]]:
    """person -> the (second, value) of each identify that set `key`, over all their ids."""
    unique = list({e.message_id: e for e in events}.values())
    person = _people([e.sent() for e in unique])
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in unique:
        value = trait_value(e.sets.get(key)) if e.type == "identify" else None
        if value is not None:
            out[person[e.person]].append((int(rounded(e.timestamp).timestamp()), value))
    return out


# Counting ---------------------------------------------------------------------------------------


def _ratio(a: int, b: int, places: int) -> float | None:
    if b == 0:
        return None
    exact = Decimal(a) / Decimal(b)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    m = Fraction(s[mid]) if len(s) % 2 else Fraction(s[mid - 1] + s[mid], 2)
    return float(Decimal(m.numerator) / Decimal(m.denominator))  # halves: exact; 3 places suffice


def _steps(f: FunnelDefinition, best: list[Attempt]) -> list[dict[str, Any]]:
    users = [sum(1 for a in best if a.depth >= i) for i in range(1, len(f.steps) + 1)]
    out = []
    for i, step in enumerate(f.steps):
        reached = [a.seconds[i - 1] for a in best if a.depth > i] if i else []
        out.append(
            {
                "event": step.event,
                "users": users[i],
                "conversion_from_start": _ratio(users[i], users[0], 4),
                "conversion_from_previous": _ratio(users[i], users[i - 1] if i else users[0], 4),
                "median_seconds_to_convert": _median(reached),
            }
        )
    return out


def _best_in_range(
    all_attempts: dict[str, list[Attempt]], start: date, stop: date
) -> list[Attempt]:
    out = []
    for found in all_attempts.values():
        best = _best([a for a in found if start <= a.day <= stop])
        if best is not None:
            out.append(best)
    return out


class Evaluation:
    """One funnel over one history: its attempts found once, read many times."""

    def __init__(
        self,
        events: Sequence[FunnelEvent],
        f: FunnelDefinition,
        tz: str = "UTC",
        trait_keys: Sequence[str] = (),
    ):
        """`trait_keys`: the keys whose identify traits Pulse keeps (PULSE_BREAKDOWN_KEYS)."""
        self.f = f
        self.attempts = attempts(events, f, tz)
        self.traits = {key: identify_traits(events, key) for key in trait_keys}

    def steps(self, start: date, stop: date) -> list[dict[str, Any]]:
        """What GET /v1/funnels/{id}?from&to shows per step."""
        return _steps(self.f, _best_in_range(self.attempts, start, stop))

    def breakdown(self, start: date, stop: date, key: str) -> list[dict[str, Any]]:
        """The figures per step-1 value of `key` (else the person's latest identify trait at
        or before the step-1 second; the larger value on a tie): by users at step 1 desc, then
        value, null last."""
        groups: dict[str | None, list[Attempt]] = defaultdict(list)
        for a in _best_in_range(self.attempts, start, stop):
            groups[self.value(a, key)].append(a)
        order = sorted(groups, key=lambda v: (-len(groups[v]), v is None, v or ""))
        return [{"value": v, "steps": _steps(self.f, groups[v])} for v in order]

    def value(self, a: Attempt, key: str) -> str | None:
        """The attempt's breakdown value: its step-1 event's, else the trait as of it."""
        value = breakdown_value(a.props, key)
        if value is None:
            earlier = [s for s in self.traits.get(key, {}).get(a.person, []) if s[0] <= a.t1]
            value = max(earlier)[1] if earlier else None
        return value

    def trait_values(self, start: date, stop: date, key: str) -> int:
        """How many best attempts in [start, stop] take their value from an identify trait."""
        best = _best_in_range(self.attempts, start, stop)
        return sum(1 for a in best if breakdown_value(a.props, key) is None and self.value(a, key))

    def entry_days(self, start: date, stop: date) -> list[dict[str, Any]]:
        """Per day of [start, stop]: users per step over the persons who entered that day."""
        out = []
        day = start
        while day <= stop:
            best = _best_in_range(self.attempts, day, day)
            n = len(self.f.steps)
            users = [sum(1 for a in best if a.depth >= i) for i in range(1, n + 1)]
            out.append({"date": day.isoformat(), "users": users})
            day += timedelta(days=1)
        return out


def funnel_steps(
    events: Sequence[FunnelEvent], f: FunnelDefinition, start: date, stop: date, tz: str = "UTC"
) -> list[dict[str, Any]]:
    return Evaluation(events, f, tz).steps(start, stop)


def funnel_breakdown(
    events: Sequence[FunnelEvent],
    f: FunnelDefinition,
    start: date,
    stop: date,
    key: str,
    tz: str = "UTC",
    trait_keys: Sequence[str] = (),
) -> list[dict[str, Any]]:
    return Evaluation(events, f, tz, trait_keys).breakdown(start, stop, key)


def entry_days(
    events: Sequence[FunnelEvent], f: FunnelDefinition, start: date, stop: date, tz: str = "UTC"
) -> list[dict[str, Any]]:
    return Evaluation(events, f, tz).entry_days(start, stop)
