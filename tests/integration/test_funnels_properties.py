"""Property: funnels equal the brute-force oracle's whatever the delivery, maintained or backfilled.

Generated histories of short bursts (gaps of 0 s, 1 s, a minute, an hour, a day; times a few
milliseconds either side of the half second, so rounding decides window edges and ties) over
three days, with properties and SDK-attached traits the steps filter on, identify calls setting
the `plan` trait breakdowns fall back to, identity links shuffled in, duplicates, any order, any
split into batches — applied through the real metrics
Store into the real PostgreSQL, read with the gateway's funnel queries, in UTC and in a
half-hour-offset timezone. Each example defines one generated funnel three times: before the
events (maintained batch by batch), in the middle of the delivery, and after it (both then
backfilled over the archive, in chunks of 1, 2 or many persons).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from services.common.events import EventRecord
from services.common.funnels import FunnelDefinition, Step
from services.gateway.queries.funnels import (
    read_entry_days,
    read_funnel_breakdown,
    read_funnel_steps,
)
from services.metrics.funnels.backfill import backfill_pending
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support import funnel_oracle as oracle
from tests.support.delivery import drawn_batches
from tests.support.examples import database_examples
from tests.support.funnel_oracle import FunnelEvent
from tests.support.store_db import Db, new_project

# These tests walk the backfills themselves (conftest.py: `db`).
pytestmark = pytest.mark.private_db


# Three days around New York's clocks going forward (2026-03-08 07:00 UTC: a 23-hour day).
START = datetime(2026, 3, 7, tzinfo=UTC)
TIMEZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
MINUTES = 3 * 24 * 60

# The store keeps every identify trait, tracked breakdown key (PULSE_BREAKDOWN_KEYS) or not: a
# funnel breakdown falls back to them for "plan" and for "price" alike.
BREAKDOWN_KEYS = ["plan"]
TRAIT_KEYS = ["plan", "price"]

INSERT_FUNNEL = """
INSERT INTO funnels (project_id, name, definition, backfill)
VALUES ($1, $2, $3::jsonb, $4) RETURNING id
"""

# Generation -------------------------------------------------------------------------------------

ids = st.sampled_from(["anon0", "anon1", "user0", "user1"])
names = st.sampled_from(["a", "b", "c", "d"])
plans = st.sampled_from(["free", "vip", "free", "vip", 1, True])
prices = st.sampled_from([5, 9.5, 10, 10.0, 20])
props = st.fixed_dictionaries({}, optional={"plan": plans, "price": prices})
traits = st.one_of(st.just({}), st.just({}), st.fixed_dictionaries({"plan": plans}))
# page/screen: named like a track, or unnamed ($page / $screen)
kinds = st.sampled_from(["track"] * 6 + ["page", "screen"])
millis = st.sampled_from([0, 0, 0, 250, 499, 500, 999])
# Bursts start anywhere, or together (so merged devices interleave), or around midnight in UTC
# (00:00) and in Kolkata (18:30 UTC).
starts = st.one_of(
    st.integers(0, MINUTES - 1),
    st.sampled_from([0, 23 * 60 + 58, 24 * 60, 18 * 60 + 28, 42 * 60 + 29, 47 * 60 + 59]),
)
link = st.tuples(st.sampled_from(["identify", "alias"]), ids, ids)
# What an identify sets `plan` to ("" and None set nothing): the breakdown's fallback for step-1
# events without a plan of their own.
trait_values = st.one_of(plans, st.sampled_from(["", None]))


def _satisfying(step: Step) -> dict[str, Any]:
    """Properties meeting the step's conditions (unless two of them contradict each other)."""
    out: dict[str, Any] = {}
    for c in step.where:
        if c.op == "neq":
            out.pop(c.property, None)  # missing: not equal to anything
        elif isinstance(c.value, list):
            out[c.property] = c.value[0]
        elif c.op in ("gt", "lt"):
            out[c.property] = c.value + (1 if c.op == "gt" else -1)  # type: ignore[operator]
        else:
            out[c.property] = c.value
    return out


@st.composite
def bursts(draw: st.DrawFn, f: FunnelDefinition, scripted: bool = False) -> tuple:  # type: ignore[type-arg]
    """One device's run of events: the funnel's steps in order (in any order after the first for
    `any`) with other events mixed in, mostly meeting the steps' conditions (as properties or as
    traits); or just any events."""
    n = len(f.steps)
    steps: list[tuple[str, dict[str, Any] | None]] = []
    if scripted or draw(st.booleans()):
        k = draw(st.one_of(st.just(n), st.integers(1, n)))
        order = [0, *draw(st.permutations(range(1, k)))] if f.order == "any" else range(k)
        for i in order:
            steps += [(name, None) for name in draw(st.lists(names, max_size=1))]
            meets = draw(st.sampled_from([True, True, False]))
            steps.append((f.steps[i].event, _satisfying(f.steps[i]) if meets else None))
    else:
        steps = [(name, None) for name in draw(st.lists(names, min_size=1, max_size=5))]
    w = f.window_seconds
    gaps = st.sampled_from([0, 0, 1, 30, 60, 61, 600, 3600, 86400, w // 3, w - 1, w, w + 1])
    run = []
    for name, wanted in steps:
        p, t = draw(props), draw(traits)
        if wanted is not None:
            p, t = (wanted, t) if draw(st.booleans()) else ({}, {**p, **wanted})
        run.append((draw(kinds), name, p, t, draw(gaps), draw(millis)))
    # The device's user identifies with a plan trait (and a price) somewhere in the run (0 s,
    # 1 s, ... from its neighbours: before, at or after a step-1 event's second).
    places = st.one_of(st.just(0), st.integers(0, len(run)))  # often before the first step
    for at in sorted(draw(st.lists(places, max_size=2)), reverse=True):
        sets = {"plan": draw(trait_values)}
        if draw(st.booleans()):
            sets["price"] = draw(prices)
        run.insert(at, ("identify", None, sets, {}, draw(gaps), draw(millis)))
    return (draw(ids), draw(starts), run)


step_names = st.sampled_from(["a", "b", "c", "d", "a", "b", "$page"])
scalars = st.sampled_from(["free", "vip", 1, 1.0, True, 10, 10.0])
numbers = st.sampled_from([5, 9.5, 10, 10.0, 20])


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["eq", "neq", "in", "gt", "gte", "lt", "lte"]))
    prop = draw(st.sampled_from(["plan", "price"]))
    if op in ("eq", "neq"):
        value: Any = draw(scalars)
    elif op == "in":
        value = draw(st.lists(scalars, min_size=1, max_size=3))
    else:
        value = draw(numbers)
    return {"property": prop, "op": op, "value": value}


wheres = st.one_of(st.just([]), st.just([]), st.lists(conditions(), min_size=1, max_size=2))


@st.composite
def funnels(draw: st.DrawFn) -> FunnelDefinition:
    n = draw(st.integers(2, 4))
    steps = [{"event": draw(step_names), "where": draw(wheres)} for _ in range(n)]
    exclusions = []
    for _ in range(draw(st.integers(0, 2))):
        a = draw(st.integers(1, n - 1))
        b = draw(st.one_of(st.none(), st.integers(a + 1, n)))
        exclusions.append(
            {"event": draw(names), "where": draw(wheres), "from_step": a, "to_step": b}
        )
    window = draw(
        st.one_of(st.sampled_from([60, 61, 120, 3600, 86400, 172800]), st.integers(60, 2 * 86400))
    )
    return FunnelDefinition.model_validate(
        {
            "name": "generated",
            "steps": steps,
            "window_seconds": window,
            "order": draw(st.sampled_from(["ordered", "strict", "any"])),
            "exclusions": exclusions,
        }
    )


def _sent(history: list[tuple]) -> list[FunnelEvent]:  # type: ignore[type-arg]
    out = []
    for item in history:
        if item[0] in ("identify", "alias"):
            kind, a, b = item
            out.append(FunnelEvent(str(uuid.uuid4()), kind, a, START, linked=b))
            continue
        actor, minute, run = item
        at = START + timedelta(minutes=minute)
        for kind, name, p, t, gap, ms in run:
            at += timedelta(seconds=gap)
            if kind == "identify":  # p: the traits it sets
                sent_at = at + timedelta(milliseconds=ms)
                out.append(FunnelEvent(str(uuid.uuid4()), kind, actor, sent_at, sets=p))
                continue
            # An unnamed page/screen is `$page`/`$screen`; about half of them are unnamed.
            unnamed = kind != "track" and name in ("c", "d")
            out.append(
                FunnelEvent(
                    str(uuid.uuid4()),
                    kind,
                    actor,
                    at + timedelta(milliseconds=ms),
                    event=None if unnamed else name,
                    properties=p,
                    traits=t,
                )
            )
    return out


def _record(project_id: int, e: FunnelEvent) -> EventRecord:
    fields: dict[str, Any] = {"user_id": e.person}
    if e.type == "identify":
        fields["anonymous_id"] = e.linked
    elif e.type == "alias":
        fields["previous_id"] = e.linked
    elif e.person.startswith("anon"):
        fields = {"anonymous_id": e.person}
    return EventRecord(
        project_id=project_id,
        message_id=e.message_id,
        type=e.type,  # type: ignore[arg-type]
        event=e.event,
        timestamp=e.timestamp,
        received_at=datetime.now(UTC),
        properties=e.properties,
        context={"traits": e.traits} if e.traits else {},
        traits=e.sets,
        **fields,
    )


# Reading and comparing --------------------------------------------------------------------------


def _ranges() -> list[tuple[date, date]]:
    d = START.date()
    return [
        (d - timedelta(days=1), d + timedelta(days=4)),
        (d, d),
        (d + timedelta(days=1), d + timedelta(days=1)),
        (d + timedelta(days=2), d + timedelta(days=2)),
        (d + timedelta(days=1), d + timedelta(days=3)),
    ]


async def _read(db: Db, funnel_id: int, f: FunnelDefinition, start: date, stop: date) -> Any:
    """Every read of one range: steps, breakdowns by plan and by price, entry days."""
    step_events = [s.event for s in f.steps]
    project_id = await db.pool.fetchval("SELECT project_id FROM funnels WHERE id = $1", funnel_id)
    async with db.engine.connect() as conn:
        steps = await read_funnel_steps(conn, funnel_id, step_events, start, stop)
        groups = {
            key: await read_funnel_breakdown(
                conn, project_id, funnel_id, step_events, start, stop, key
            )
            for key in ("plan", "price")
        }
        days = await read_entry_days(conn, funnel_id, len(f.steps), start, stop)
    return {
        "steps": [s.model_dump(mode="json") for s in steps],
        **{key: [g.model_dump(mode="json") for g in gs] for key, gs in groups.items()},
        "entry_days": [d.model_dump(mode="json") for d in days],
    }


def _answer(expected: oracle.Evaluation, what: str, start: date, stop: date) -> Any:
    if what == "steps":
        return expected.steps(start, stop)
    if what == "entry_days":
        return expected.entry_days(start, stop)
    return expected.breakdown(start, stop, what)


async def _compare(db: Db, funnel_id: int, expected: oracle.Evaluation, label: str) -> None:
    """The funnel's reads equal the oracle's, over every range of `_ranges`."""
    f = expected.f
    for start, stop in _ranges():
        got = await _read(db, funnel_id, f, start, stop)
        for what in got:
            assert got[what] == _answer(expected, what, start, stop), (label, start, stop, what)


async def _add_funnel(db: Db, project_id: int, f: FunnelDefinition, backfill: str) -> int:
    return int(
        await db.pool.fetchval(
            INSERT_FUNNEL, project_id, f"{f.name}-{backfill}", f.model_dump_json(), backfill
        )
    )


async def _backfill(db: Db, chunk: int, funnel_ids: list[int]) -> None:
    await backfill_pending(db.pool, chunk_persons=chunk)
    states = await db.pool.fetch(
        "SELECT id, backfill FROM funnels WHERE id = ANY($1::int[])", funnel_ids
    )
    assert {r["id"]: r["backfill"] for r in states} == dict.fromkeys(funnel_ids, "complete")


# The property -----------------------------------------------------------------------------------


@database_examples(70)
@given(definition=funnels(), data=st.data())
async def test_funnels_equal_the_oracle_whatever_the_delivery(
    db: Db, definition: FunnelDefinition, data: st.DataObject
) -> None:
    b = bursts(definition)
    history = [
        *data.draw(st.lists(bursts(definition, True), min_size=1, max_size=3), "funnel runs"),
        *data.draw(st.lists(st.one_of(b, b, link), max_size=4), "other events and links"),
    ]
    sent = _sent(history)
    batches = drawn_batches(data, sent, max_repeats=6, max_cuts=8)
    middle = data.draw(st.integers(0, len(batches)), label="funnel added before batch")
    timezone = data.draw(st.sampled_from(TIMEZONES), label="timezone")
    chunk = data.draw(st.sampled_from([1, 2, 1000]), label="chunk_persons")

    project_id = await new_project(db.pool, timezone)
    maintained = await _add_funnel(db, project_id, definition, "complete")
    store = Store(db.pool, "funnels-property-tests", BREAKDOWN_KEYS)
    added_midway = None
    for i, batch in enumerate(batches):
        if i == middle:
            added_midway = await _add_funnel(db, project_id, definition, "running")
        await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})
    added_after = await _add_funnel(db, project_id, definition, "running")
    backfilled = [added_after] if added_midway is None else [added_midway, added_after]
    await _backfill(db, chunk, backfilled)

    expected = oracle.Evaluation(sent, definition, timezone, TRAIT_KEYS)
    await _compare(db, maintained, expected, "maintained")
    if added_midway is not None:
        await _compare(db, added_midway, expected, "added midway, backfilled")
    await _compare(db, added_after, expected, "added after, backfilled")
    whole = (START.date() - timedelta(days=1), START.date() + timedelta(days=4))
    reached = expected.steps(*whole)
    depth = max([i + 1 for i, s in enumerate(reached) if s["users"]], default=0)
    event(f"deepest step anyone reached: {depth} of {len(definition.steps)}")
    event(f"order {definition.order}")
    event(f"plans from identify traits: {min(expected.trait_values(*whole, 'plan'), 2)}+")


# Known hard deliveries --------------------------------------------------------------------------

_n = iter(range(10**6))


def _ev(person: str, seconds: int, name: str, kind: str = "track", **p: Any) -> FunnelEvent:
    return FunnelEvent(
        f"hard-{next(_n)}",
        kind,
        person,
        START + timedelta(seconds=seconds),
        event=name,
        properties=p,
    )


def _funnel(
    *steps: Any, window: int = 86400, order: str = "ordered", **more: Any
) -> FunnelDefinition:
    return FunnelDefinition.model_validate(
        {
            "name": "hard",
            "steps": [{"event": s} if isinstance(s, str) else s for s in steps],
            "window_seconds": window,
            "order": order,
            **more,
        }
    )


H = 3600
D = 86400
VIP = {"event": "b", "where": [{"property": "plan", "value": "vip"}]}

# (definition, batches of events in delivery order)
HARD_CASES: dict[str, tuple[FunnelDefinition, list[list[FunnelEvent]]]] = {
    # Day 1's attempt reaches c; late, an a on day 0 (23:00) opens a deeper-reaching attempt for
    # day 0, and an a earlier on day 1 becomes day 1's best (same depth, earlier t1, new seconds).
    "late_better_step_one": (
        _funnel("a", "b", "c", window=4 * H),
        [
            [
                _ev("user0", D + 30 * 60, "a"),
                _ev("user0", D + H, "b"),
                _ev("user0", D + 2 * H, "c"),
            ],
            [_ev("user0", D - H, "a")],
            [_ev("user0", D + 10 * 60, "a")],
        ],
    ),
    # A late step-2 event makes an earlier day's attempt deeper.
    "late_step_two": (
        _funnel("a", "b", "c", window=D),
        [
            [_ev("user0", 10 * H, "a"), _ev("user0", D + 8 * H, "c")],
            [_ev("user0", D + 2 * H, "b")],
        ],
    ),
    # A late event (of a name no step has) lands inside a strict attempt and breaks it.
    "late_event_inside_strict": (
        _funnel("a", "b", "c", window=H, order="strict"),
        [
            [_ev("user0", 0, "a"), _ev("user0", 60, "b"), _ev("user0", 120, "c")],
            [_ev("user0", 90, "d", kind="page")],
        ],
    ),
    # Two devices each hold part of the funnel; the identify joining them comes last.
    "merge_after_the_events": (
        _funnel("a", "b", "c", window=H),
        [
            [_ev("anon0", 0, "a"), _ev("user0", 60, "b")],
            [_ev("anon0", 120, "c"), _ev("anon1", 30, "a"), _ev("user1", 40, "b")],
            [FunnelEvent("hard-identify", "identify", "user0", START, linked="anon0")],
            [FunnelEvent("hard-alias", "alias", "user0", START, linked="user1")],
        ],
    ),
    # A late exclusion event voids a complete attempt; the person drops out.
    "late_exclusion": (
        _funnel("a", "b", "c", window=H, exclusions=[{"event": "d", "to_step": 2}]),
        [
            [_ev("user0", 0, "a"), _ev("user0", 60, "b"), _ev("user0", 120, "c")],
            [_ev("user0", 30, "d")],
        ],
    ),
    # Two b's in one second: step 2 must take the free one so the vip one can be step 3.
    "same_second_candidates": (
        _funnel("a", "b", VIP, window=H),
        [
            [_ev("user0", 0, "a"), _ev("user0", 5, "b", plan="vip")],
            [_ev("user0", 5, "b", plan="free")],
        ],
    ),
    # Same second: simultaneous for `ordered`, so b then a counts...
    "same_second_steps_ordered": (
        _funnel("b", "a", window=60),
        [[_ev("anon0", 0, "a"), _ev("anon0", 0, "b")]],
    ),
    # ...while `strict` orders a second by name: a, b — so b -> a is no strict sequence.
    "same_second_steps_strict": (
        _funnel("b", "a", window=60, order="strict"),
        [[_ev("anon0", 0, "a"), _ev("anon0", 0, "b")]],
    ),
    # Strict: d sorts right after a in their second, so it is between a and b.
    "strict_other_event_in_step_ones_second": (
        _funnel("a", "b", window=60, order="strict"),
        [[_ev("user0", 0, "a"), _ev("user0", 0, "d"), _ev("user0", 10, "b")]],
    ),
    # Strict: two identical a's in one second, then b: the second a is followed by b.
    "strict_identical_events_in_one_second": (
        _funnel("a", "b", "a", window=60, order="strict"),
        [[_ev("anon0", 0, "a"), _ev("anon0", 0, "b"), _ev("anon0", 0, "a")]],
    ),
    # Strict: a's next event is the b of its own second, whose next is the other b, not c.
    "strict_after_a_same_second_candidate": (
        _funnel("a", "b", "c", window=H, order="strict"),
        [[_ev("user0", 0, "a"), _ev("user0", 0, "b"), _ev("user0", 5, "b"), _ev("user0", 10, "c")]],
    ),
}


@pytest.mark.parametrize("case", sorted(HARD_CASES))
async def test_funnels_in_known_hard_deliveries(db: Db, case: str) -> None:
    definition, batches = HARD_CASES[case]
    sent = [e for batch in batches for e in batch]
    project_id = await new_project(db.pool)
    maintained = await _add_funnel(db, project_id, definition, "complete")
    store = Store(db.pool, "funnels-hard-cases", BREAKDOWN_KEYS)
    for batch in batches:
        await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})
    backfilled = await _add_funnel(db, project_id, definition, "running")
    await _backfill(db, 1, [backfilled])
    expected = oracle.Evaluation(sent, definition, trait_keys=TRAIT_KEYS)
    for funnel_id, how in ((maintained, "maintained"), (backfilled, "backfilled")):
        await _compare(db, funnel_id, expected, f"{case} {how}")
    whole = (START.date() - timedelta(days=1), START.date() + timedelta(days=4))
    reached = expected.steps(*whole)
    assert reached[0]["users"] or case == "late_exclusion"
