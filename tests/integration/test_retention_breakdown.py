"""Property: retention split by a breakdown value equals the oracle's whatever the delivery.

Generated histories carry `plan` as an event property, as an SDK-attached `context.traits` trait,
both (the property wins) or not at all, so persons switch plans across days, carry two plans on
one day or none; identity links are shuffled among the events they merge, and any order,
duplication and split into batches is applied through the real metrics Store into the real
PostgreSQL, then read with the gateway's query — also after every batch, so late events that
move a cohort day (and with it the value) are checked on the way. Scenarios below pin the
semantics with numbers worked out by hand.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.events import EventRecord
from services.gateway.queries.breakdown import (
    add_key,
    drop_key,
    dropping,
    read_breakdown,
    read_tracked_keys,
)
from services.gateway.queries.lifecycle import read_lifecycle_breakdown
from services.gateway.queries.retention import (
    RetentionMode,
    RetentionPeriod,
    read_retention,
    read_retention_breakdown,
)
from services.gateway.queries.sessions import read_sessions_breakdown
from services.gateway.queries.stickiness import read_stickiness_breakdown
from services.metrics.breakdown_backfill import BACKFILL, track_keys
from services.metrics.key_drops import drop_chunk, drop_pending
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from services.metrics.walk import walk_chunk, walk_pending
from tests.support import oracle
from tests.support.breakdown_oracle import (
    ValuedEvent,
    lifecycle_breakdown,
    retention_breakdown,
    sessions_breakdown,
    stickiness_breakdown,
    values_as_of,
)
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

START = date(2026, 3, 2)  # a Monday; New York's clocks go forward on 03-08 (a 23-hour day)
TIMEZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
SPAN_DAYS = 21
PLANS = [None, None, "free", "vip"]
# The backfill test walks breakdown backfills itself (conftest.py: `db`).
pytestmark = pytest.mark.private_db

# (period, mode, start_event, return_event, length)
Query = tuple[RetentionPeriod, RetentionMode, str | None, str | None, int]
QUERIES: list[Query] = [
    ("day", "on", None, None, 14),
    ("day", "on_or_after", None, None, 14),
    ("day", "on", "signup", "purchase", 10),
    ("day", "on_or_after", "signup", None, 10),
    ("day", "on", None, "$page", 7),
    ("week", "on", None, None, 3),
    ("week", "on_or_after", None, None, 3),
    ("week", "on", "signup", "purchase", 2),
    ("week", "on_or_after", "signup", "$page", 2),
]

ids = st.sampled_from(["anon0", "anon1", "anon2", "user0", "user1", "user2"])
active_event = st.builds(
    lambda *fields: ("active", *fields),  # actor, day, hour, kind, name, prop, trait
    ids,
    # Half the events on the first three days: first days shared by several events (and plans).
    st.one_of(st.integers(0, 2), st.integers(0, SPAN_DAYS - 1)),
    st.integers(0, 23),
    st.sampled_from(["track", "track", "page", "screen"]),
    st.sampled_from(["signup", "purchase", "view"]),
    st.sampled_from(PLANS),
    st.sampled_from(PLANS),
)
link_event = st.builds(
    lambda kind, a, b, day, hour, plan: (kind, a, b, day, hour, plan),
    st.sampled_from(["identify", "identify", "alias"]),
    ids,
    ids,
    st.integers(0, SPAN_DAYS - 1),
    st.integers(0, 23),
    st.sampled_from(PLANS),  # the plan an identify sets, from then on
)
# An identify that only sets a trait (a server-side SDK: userId and traits, nothing to merge).
trait_event = st.builds(
    lambda a, day, hour, plan: ("identify", a, None, day, hour, plan),
    ids,
    st.integers(0, SPAN_DAYS - 1),
    st.integers(0, 23),
    st.sampled_from(["free", "vip"]),
)
# Two events of one actor on one day, each with its own plan (often two plans on a first day).
same_day = st.builds(
    lambda first, second: [first, (*first[:3], *second[3:])], active_event, active_event
)
histories = st.lists(
    st.one_of(
        active_event.map(lambda e: [e]),
        same_day,
        link_event.map(lambda e: [e]),
        trait_event.map(lambda e: [e]),
    ),
    min_size=1,
    max_size=25,
).map(lambda items: [e for item in items for e in item])


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(START.year, START.month, START.day, hour, tzinfo=UTC) + timedelta(day)


def _valued(history: list[tuple[Any, ...]]) -> list[ValuedEvent]:
    out = []
    for item in history:
        message_id = str(uuid.uuid4())
        if item[0] == "active":
            _, actor, day, hour, kind, name, prop, trait = item
            sent = oracle.SentEvent(message_id, kind, actor, _at(day, hour), event=name)
            out.append(ValuedEvent(sent, prop, trait))
        else:
            kind, a, b, day, hour, plan = item
            sent = oracle.SentEvent(message_id, kind, a, _at(day, hour), linked=b)
            out.append(ValuedEvent(sent, sets=plan if kind == "identify" else None))
    return out


def _record(project_id: int, v: ValuedEvent) -> EventRecord:
    e = v.sent
    fields: dict[str, object] = {"user_id": e.person}
    if e.type == "identify":
        fields["anonymous_id"] = e.linked
        if v.sets is not None:
            fields["traits"] = {"plan": v.sets}
    elif e.type == "alias":
        fields["previous_id"] = e.linked
    elif e.person.startswith("anon"):
        fields = {"anonymous_id": e.person}
    if v.prop is not None:
        fields["properties"] = {"plan": v.prop}
    if v.trait is not None:
        fields["context"] = {"traits": {"plan": v.trait}}
    return EventRecord.model_validate(
        {
            "project_id": project_id,
            "message_id": e.message_id,
            "type": e.type,
            "event": e.event if e.type == "track" else None,
            "timestamp": e.timestamp,
            "received_at": datetime.now(UTC),
            **fields,
        }
    )


async def _apply(
    db: Db, project_id: int, batch: list[ValuedEvent], keys: tuple[str, ...] = ("plan",)
) -> None:
    store = Store(db.pool, "retention-breakdown-tests", keys)
    await store.apply(ParsedBatch(events=[_record(project_id, v) for v in batch]), {})


async def _backfill(conn: AsyncConnection, project_id: int, key: str) -> str | None:
    """The key's backfill as the gateway reads it; None when the project does not track it."""
    tracked = {k.key: k.backfill for k in await read_tracked_keys(conn, project_id, [])}
    return tracked.get(key)


async def _assert_oracle(
    db: Db,
    project_id: int,
    events: list[ValuedEvent],
    query: Query,
    tz: str = "UTC",
    start: date = START + timedelta(days=1),
    stop: date = START + timedelta(days=15),
) -> list[dict]:  # type: ignore[type-arg]
    """The breakdown as read, after checking it (and the cohorts) against the oracles."""
    period, mode, start_event, return_event, length = query
    async with db.engine.connect() as conn:
        cohorts, splits = await read_retention_breakdown(
            conn,
            project_id,
            "plan",
            start,
            stop,
            length,
            period,
            mode,
            start_event,
            return_event,
        )
        plain = await read_retention(
            conn,
            project_id,
            start,
            stop,
            length,
            period,
            mode,
            start_event,
            return_event,
        )
        activity = await read_breakdown(conn, project_id, "plan", start, stop)
        sessions = await read_sessions_breakdown(conn, project_id, "plan", start, stop)
        weeks = await read_stickiness_breakdown(conn, project_id, "plan", start, stop, "week")
        lifecycles = {
            period: await read_lifecycle_breakdown(conn, project_id, "plan", start, stop, period)
            for period in ("day", "week")
        }
    want_cohorts, want_splits = retention_breakdown(
        events, start, stop, length, period, mode, start_event, return_event, tz
    )
    got_cohorts = [c.model_dump(mode="json") for c in cohorts]
    assert got_cohorts == want_cohorts, query
    assert [c.model_dump(mode="json") for c in plain] == want_cohorts, query
    sent = [v.sent for v in events]
    assert want_cohorts == oracle.retention(
        sent, start, stop, length, period, mode, start_event, return_event, tz
    ), query
    # The activity breakdown reads the same values (person_day_values).
    assert [s.model_dump(mode="json") for s in activity] == oracle.breakdown(
        sent, values_as_of(events), start, stop, tz
    )
    assert [w.model_dump(mode="json") for w in weeks] == stickiness_breakdown(
        events, start, stop, "week", tz
    )
    for period, series in lifecycles.items():
        assert [s.model_dump(mode="json") for s in series] == lifecycle_breakdown(
            events, start, stop, period, tz
        ), period
    # So does the sessions breakdown, with the sessions the archive cut.
    assert [s.model_dump(mode="json") for s in sessions] == sessions_breakdown(
        events, start, stop, tz
    )
    got = [s.model_dump(mode="json") for s in splits]
    assert got == want_splits, query
    return got


def _delivered(events: list[ValuedEvent], data: st.DataObject) -> list[list[ValuedEvent]]:
    """The events with some repeated, in any order, split into batches anywhere."""
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=8), label="duplicates")
    delivery = data.draw(st.permutations(events + repeats), label="order")
    cuts = sorted(
        data.draw(st.sets(st.integers(1, max(1, len(delivery) - 1)), max_size=4), label="cuts")
    )
    return [delivery[i:j] for i, j in zip([0, *cuts], [*cuts, len(delivery)], strict=True)]


@database_examples(40)
@given(history=histories, data=st.data())
async def test_any_delivery_gives_the_oracles_breakdown(
    db: Db, history: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    events = _valued(history)
    batches = _delivered(events, data)
    tz = data.draw(st.sampled_from(TIMEZONES), label="timezone")

    project_id = await new_project(db.pool, tz)
    delivered: list[ValuedEvent] = []
    for batch in batches:
        await _apply(db, project_id, batch)
        delivered += batch
        # Cohort days (and values) of what has arrived so far; later batches may move them.
        await _assert_oracle(db, project_id, delivered, QUERIES[0], tz)
    for query in QUERIES:
        await _assert_oracle(db, project_id, events, query, tz)


@database_examples(25)
@given(history=histories, data=st.data())
async def test_a_key_tracked_later_is_backfilled_to_the_oracles_breakdown(
    db: Db, history: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    """Batches applied by a metrics Store that did not track `plan` leave its values out. Then
    the project tracks it: added by the first batch of a Store configured with it, or by
    POST /v1/breakdowns (the gateway's `add_key`) while the Stores go on without it in their
    settings. The walk fills in the history, in chunks interleaved with later batches: the
    oracle's breakdown at the end."""
    events = _valued(history)
    batches = _delivered(events, data)
    untracked = data.draw(st.integers(0, len(batches) - 1), label="batches before plan")
    by_api = data.draw(st.booleans(), label="plan added by POST /v1/breakdowns")
    tz = data.draw(st.sampled_from(TIMEZONES), label="timezone")

    project_id = await new_project(db.pool, tz)
    for batch in batches[:untracked]:
        await _apply(db, project_id, batch, keys=())
    if by_api:
        async with db.engine.begin() as conn:
            assert await add_key(conn, project_id, "plan")
    configured = () if by_api else ("plan",)
    for batch in batches[untracked:]:
        await _apply(db, project_id, batch, configured)
        if data.draw(st.booleans(), label="walk a chunk after it"):
            persons = data.draw(st.integers(1, 3), label="persons per chunk")
            await walk_chunk(db.pool, BACKFILL, persons)
    # Only a batch with new events adds the key (the later ones may all be repeats): one more,
    # an identify that links nothing and sets no plan, so the numbers stay the same.
    nothing = _valued([("identify", "user0", None, 0, 0, None)])
    await _apply(db, project_id, nothing, configured)
    await walk_pending(db.pool, BACKFILL, data.draw(st.integers(1, 3), label="last"))

    async with db.engine.connect() as conn:
        assert await _backfill(conn, project_id, "plan") == "complete"
    for query in QUERIES:
        await _assert_oracle(db, project_id, events + nothing, query, tz)


def _track(
    person: str,
    day: int,
    *,
    hour: int = 10,
    name: str = "view",
    prop: str | None = None,
    trait: str | None = None,
    kind: str = "track",
) -> ValuedEvent:
    sent = oracle.SentEvent(str(uuid.uuid4()), kind, person, _at(day, hour), event=name)
    return ValuedEvent(sent, prop, trait)


def _link(kind: str, person: str, linked: str, day: int) -> ValuedEvent:
    return ValuedEvent(oracle.SentEvent(str(uuid.uuid4()), kind, person, _at(day), linked=linked))


def _day0(got: list[dict]) -> list[tuple[str | None, int, list[int]]]:  # type: ignore[type-arg]
    """(value, size, retained) of each group's first cohort."""
    return [(g["value"], g["cohorts"][0]["size"], g["cohorts"][0]["retained"]) for g in got]


DAY_ON: Query = ("day", "on", None, None, 2)


async def test_value_on_the_first_day_decides_the_group(db: Db) -> None:
    events = [
        _track("user-prop", 0, prop="vip"),
        _track("user-trait", 0, trait="free", kind="page"),
        _track("user-both", 0, prop="vip", trait="free"),  # the property wins
        # Upgrades the next day: stays in `free`, its return counted there.
        _track("user-switch", 0, trait="free"),
        _track("user-switch", 1, trait="vip"),
        _track("user-switch", 2, prop="vip"),
        # Two plans on the first day: in both groups.
        _track("user-two", 0, hour=9, prop="free"),
        _track("user-two", 0, hour=15, prop="vip"),
        _track("user-two", 1),
        # No plan on the first day (only later): the null group.
        _track("user-none", 0),
        _track("user-none", 1, prop="vip"),
    ]
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events)
    got = await _assert_oracle(db, project_id, events, DAY_ON, start=START, stop=START)
    assert _day0(got) == [
        ("free", 3, [3, 2, 1]),  # trait, switch, two
        ("vip", 3, [3, 1, 0]),  # prop, both, two
        (None, 1, [1, 1, 0]),  # none
    ]


async def test_a_late_event_moves_the_cohort_day_and_the_value(db: Db) -> None:
    project_id = await new_project(db.pool)
    on_time = [_track("user-late", 2, prop="vip"), _track("user-late", 3)]
    await _apply(db, project_id, on_time)
    got = await _assert_oracle(
        db, project_id, on_time, DAY_ON, start=START, stop=START + timedelta(2)
    )
    assert [(g["value"], [c["size"] for c in g["cohorts"]]) for g in got] == [("vip", [0, 0, 1])]

    late = [_track("user-late", 1, trait="free")]
    await _apply(db, project_id, late)
    got = await _assert_oracle(
        db, project_id, on_time + late, DAY_ON, start=START, stop=START + timedelta(2)
    )
    assert [(g["value"], [c["size"] for c in g["cohorts"]]) for g in got] == [("free", [0, 1, 0])]
    assert got[0]["cohorts"][1]["retained"] == [1, 1, 1]


async def test_a_merge_takes_the_earliest_days_values(db: Db) -> None:
    events = [
        # Anonymous on day 0 as free, identified on day 1 as vip: one person, cohort day 0, free.
        _track("anon-m", 0, trait="free"),
        _track("user-m", 1, prop="vip"),
        # Both ids first active on day 0 under different plans: the person is in both groups.
        _track("anon-n", 0, prop="vip"),
        _track("user-n", 0, prop="free"),
    ]
    links = [_link("identify", "user-m", "anon-m", 1), _link("alias", "user-n", "anon-n", 2)]
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events)
    before = await _assert_oracle(db, project_id, events, DAY_ON, start=START, stop=START)
    assert _day0(before) == [("free", 2, [2, 0, 0]), ("vip", 1, [1, 0, 0])]
    await _apply(db, project_id, links)
    after = await _assert_oracle(db, project_id, events + links, DAY_ON, start=START, stop=START)
    # anon-m+user-m (free, back on day 1) and anon-n+user-n (free and vip).
    assert _day0(after) == [("free", 2, [2, 1, 0]), ("vip", 1, [1, 0, 0])]


async def test_start_event_takes_that_days_value_from_any_event(db: Db) -> None:
    events = [
        _track("user-s", 0, name="browse", prop="free"),
        # The signup carries no plan, the page view the same day does: person_day_values is per
        # day, so the cohort (day 1, by signup) is `vip`.
        _track("user-s", 1, name="signup"),
        _track("user-s", 1, kind="page", trait="vip"),
        _track("user-s", 2, name="purchase", prop="vip"),
    ]
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events)
    query: Query = ("day", "on", "signup", "purchase", 1)
    got = await _assert_oracle(
        db, project_id, events, query, start=START, stop=START + timedelta(1)
    )
    assert [(g["value"], g["cohorts"][1]) for g in got] == [
        ("vip", {"date": (START + timedelta(1)).isoformat(), "size": 1, "retained": [0, 1]})
    ]
    week: Query = ("week", "on_or_after", "signup", None, 1)
    got = await _assert_oracle(db, project_id, events, week, start=START, stop=START)
    assert _day0(got) == [("vip", 1, [1, 0])]


async def test_at_most_fifty_values_largest_first_and_null_last(db: Db) -> None:
    events = [_track(f"user-{n}", 0, prop=f"v{n:02}") for n in range(55)]
    events += [_track(f"user-{n}-b", 0, prop="v54") for n in range(2)]
    events += [_track("user-53-b", 0, prop="v53"), _track("user-plain", 0)]
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events)
    got = await _assert_oracle(db, project_id, events, DAY_ON, start=START, stop=START)
    assert [g["value"] for g in got] == ["v54", "v53", *(f"v{n:02}" for n in range(48)), None]
    assert [g["cohorts"][0]["size"] for g in got[:3]] == [3, 2, 1]


async def test_identify_traits_apply_from_their_time_on_even_when_late(db: Db) -> None:
    """A server-side SDK sends the plan only with identify: tracks carry none of their own."""
    project_id = await new_project(db.pool)
    tracks = [_track("user-t", day, hour=hour) for day, hour in [(1, 10), (2, 9), (2, 11), (3, 10)]]

    def identify(day: int, hour: int, plan: str) -> ValuedEvent:
        sent = oracle.SentEvent(str(uuid.uuid4()), "identify", "user-t", _at(day, hour))
        return ValuedEvent(sent, sets=plan)

    await _apply(db, project_id, [*tracks, identify(2, 10, "vip")])
    query: Query = ("day", "on", None, None, 3)
    first = await _assert_oracle(db, project_id, [*tracks, identify(2, 10, "vip")], query)
    # Cohort day 1 carried no plan yet: the person is in the null group.
    assert [(g["value"], g["cohorts"][0]["size"]) for g in first] == [(None, 1)]
    # A late identify on day 1 sets "free" from 00:00: day 1 and day 2 09:00 are free now.
    late = identify(1, 0, "free")
    await _apply(db, project_id, [late])
    everything = [*tracks, identify(2, 10, "vip"), late]
    split = await _assert_oracle(db, project_id, everything, query)
    assert [(g["value"], g["cohorts"][0]["size"]) for g in split] == [("free", 1)]
    async with db.engine.connect() as conn:
        series = await read_breakdown(conn, project_id, "plan", _at(1).date(), _at(3).date())
    dau = {(s.value, d.date.day - START.day): d.dau for s in series for d in s.days}
    assert dau[("free", 1)] == 1 and dau[("free", 2)] == 1 and dau[("vip", 2)] == 1
    assert dau[("vip", 3)] == 1 and dau[("free", 3)] == 0


async def test_a_merge_applies_the_users_traits_to_the_devices_events(db: Db) -> None:
    """The plan was set on the user id; the device's events learn it when the link arrives."""
    project_id = await new_project(db.pool)
    device = [_track("anon-d", 1, hour=8), _track("anon-d", 2, hour=8)]
    sets = ValuedEvent(
        oracle.SentEvent(str(uuid.uuid4()), "identify", "user-d", _at(1, 12)), sets="vip"
    )
    await _apply(db, project_id, [*device, sets])
    query: Query = ("day", "on", None, None, 3)
    before = await _assert_oracle(db, project_id, [*device, sets], query)
    assert [(g["value"], g["cohorts"][0]["size"]) for g in before] == [(None, 1)]
    link = _link("identify", "user-d", "anon-d", 3)
    await _apply(db, project_id, [link])
    await _assert_oracle(db, project_id, [*device, sets, link], query)
    async with db.engine.connect() as conn:
        series = await read_breakdown(conn, project_id, "plan", _at(1).date(), _at(3).date())
    # Day 1 08:00 was before the trait was set (the null group); day 2's event is after it: vip.
    assert [(s.value, [d.dau for d in s.days]) for s in series] == [
        ("vip", [0, 1, 0]),
        (None, [1, 0, 0]),
    ]


async def test_a_key_tracked_later_takes_identify_traits_sent_before_it(db: Db) -> None:
    """`plan` is tracked from day 3 on; the history before it is filled in, identify traits
    sent while no service tracked it included (every trait is kept)."""
    project_id = await new_project(db.pool)
    sets = ValuedEvent(
        oracle.SentEvent(str(uuid.uuid4()), "identify", "user-s", _at(1, 8)), sets="vip"
    )
    before = [_track("user-s", 1), _track("user-p", 1, prop="free"), _track("user-s", 2), sets]
    await _apply(db, project_id, before, keys=())
    after = [_track("user-s", 3), _track("user-p", 3)]
    await _apply(db, project_id, after)

    async def dau() -> dict[tuple[str, int], int]:
        async with db.engine.connect() as conn:
            series = await read_breakdown(conn, project_id, "plan", _at(1).date(), _at(3).date())
        return {(s.value, d.date.day - START.day): d.dau for s in series for d in s.days if d.dau}

    async with db.engine.connect() as conn:
        assert await _backfill(conn, project_id, "plan") == "running"
    # Only what came after: user-s has vip as of day 1 (kept though untracked), user-p no plan
    # (the null group).
    assert await dau() == {("vip", 3): 1, (None, 3): 1}
    assert await walk_pending(db.pool, BACKFILL, 1) == 3  # one chunk per person, 1 empty
    async with db.engine.connect() as conn:
        assert await _backfill(conn, project_id, "plan") == "complete"
    # user-s: vip from 08:00 on day 1 (the tracks are at 10:00); user-p: free on day 1.
    assert await dau() == {
        ("vip", 1): 1,
        ("vip", 2): 1,
        ("vip", 3): 1,
        ("free", 1): 1,
        (None, 3): 1,
    }
    query: Query = ("day", "on", None, None, 2)
    await _assert_oracle(db, project_id, before + after, query, start=_at(1).date())


async def test_sessions_split_by_the_values_their_persons_carried_that_day(db: Db) -> None:
    """Numbers by hand: a session counts under each value its person carried on its day, and
    in the null group when some of their events that day carried none."""

    def at(person: str, day: int, hour: int, minute: int, prop: str | None = None) -> ValuedEvent:
        when = _at(day, hour) + timedelta(minutes=minute)
        return ValuedEvent(oracle.SentEvent(str(uuid.uuid4()), "track", person, when, "view"), prop)

    events = [
        # a: a 25-minute session of 3 events and a bounce, on a day one of a's events says vip
        # and the others nothing: under vip and the null group
        at("user-a", 1, 10, 0, prop="vip"),
        at("user-a", 1, 10, 10),
        at("user-a", 1, 10, 25),
        at("user-a", 1, 14, 0),
        # b: one 20-minute session of 2 events, free then vip: under both
        at("user-b", 1, 9, 0, prop="free"),
        at("user-b", 1, 9, 20, prop="vip"),
        # c: a 5-minute session with no value: the null group only
        at("user-c", 2, 8, 0),
        at("user-c", 2, 8, 5),
    ]
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events)
    day1, day2 = START + timedelta(days=1), START + timedelta(days=2)
    async with db.engine.connect() as conn:
        got = await read_sessions_breakdown(conn, project_id, "plan", day1, day2)
    none = {"sessions": 0, "median_seconds": None, "mean_seconds": None,
            "events_per_session": None, "bounce_rate": None}  # fmt: skip
    assert [s.model_dump(mode="json") for s in got] == [
        {
            "value": "free",
            "days": [
                {"date": day1.isoformat(), "sessions": 1, "median_seconds": 1200.0,
                 "mean_seconds": 1200.0, "events_per_session": 2.0, "bounce_rate": 0.0},
                {"date": day2.isoformat(), **none},
            ],
        },
        {
            "value": "vip",
            "days": [
                # durations 0, 1200, 1500; 6 events; one bounce
                {"date": day1.isoformat(), "sessions": 3, "median_seconds": 1200.0,
                 "mean_seconds": 900.0, "events_per_session": 2.0, "bounce_rate": 0.3333},
                {"date": day2.isoformat(), **none},
            ],
        },
        {
            "value": None,
            "days": [
                # a's two: durations 1500 and 0, 4 events, one bounce
                {"date": day1.isoformat(), "sessions": 2, "median_seconds": 750.0,
                 "mean_seconds": 750.0, "events_per_session": 2.0, "bounce_rate": 0.5},
                {"date": day2.isoformat(), "sessions": 1, "median_seconds": 300.0,
                 "mean_seconds": 300.0, "events_per_session": 2.0, "bounce_rate": 0.0},
            ],
        },
    ]  # fmt: skip
    assert [s.model_dump(mode="json") for s in got] == sessions_breakdown(events, day1, day2)


async def test_lifecycle_splits_persons_by_values_with_their_own_status(db: Db) -> None:
    """Numbers by hand: a person counts under each value they carried in the period, with the
    status their whole activity gives them; dormant under the values of the period before, only
    when they were not active at all."""

    def at(person: str, day: int, prop: str | None = None) -> ValuedEvent:
        sent = oracle.SentEvent(str(uuid.uuid4()), "track", person, _at(day), "view")
        return ValuedEvent(sent, prop)

    events = [
        at("user-a", 1, "free"),  # day 2: returning under vip; not dormant under free
        at("user-a", 2, "vip"),
        at("user-b", 1, "vip"),  # day 2: dormant under vip; day 3: resurrecting under vip
        at("user-b", 3, "vip"),
        at("user-c", 2),  # day 2: new, no value; day 3: returning under free
        at("user-c", 3, "free"),
        at("user-d", 2, "free"),  # day 2: new under both; day 3: dormant under both
        at("user-d", 2, "vip"),
    ]
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events)
    day2, day3 = START + timedelta(days=2), START + timedelta(days=3)
    async with db.engine.connect() as conn:
        got = await read_lifecycle_breakdown(conn, project_id, "plan", day2, day3, "day")

    def row(day: date, new: int, returning: int, resurrecting: int, dormant: int) -> dict:  # type: ignore[type-arg]
        return {"start": day.isoformat(), "new": new, "returning": returning,
                "resurrecting": resurrecting, "dormant": dormant}  # fmt: skip

    assert [s.model_dump(mode="json") for s in got] == [
        {"value": "free", "periods": [row(day2, 1, 0, 0, 0), row(day3, 0, 1, 0, -1)]},
        {"value": "vip", "periods": [row(day2, 1, 1, 0, -1), row(day3, 0, 0, 1, -2)]},
        {"value": None, "periods": [row(day2, 1, 0, 0, 0), row(day3, 0, 0, 0, 0)]},
    ]
    assert [s.model_dump(mode="json") for s in got] == lifecycle_breakdown(
        events, day2, day3, "day"
    )


async def test_a_walk_beside_concurrent_batches_ends_at_the_oracles_breakdown(db: Db) -> None:
    """The walk and the consumer's batches at the same time, on connections of their own: the
    person and project locks order them, and the end is the oracle's breakdown."""
    rng = random.Random(7)
    actors = [f"{kind}{n}" for kind in ("anon", "user") for n in range(20)]
    history: list[tuple[Any, ...]] = []
    for _ in range(600):
        day, hour = rng.randrange(SPAN_DAYS), rng.randrange(24)
        if rng.random() < 0.08:
            plan = rng.choice(PLANS)
            history.append(("identify", rng.choice(actors), rng.choice(actors), day, hour, plan))
        else:
            kind = rng.choice(["track", "page"])
            name = rng.choice(["signup", "purchase", "view"])
            prop, trait = rng.choice(PLANS), rng.choice(PLANS)
            history.append(("active", rng.choice(actors), day, hour, kind, name, prop, trait))
    events = _valued(history)
    rng.shuffle(events)
    project_id = await new_project(db.pool)
    await _apply(db, project_id, events[:300], keys=())

    async def batches() -> None:
        for i in range(300, len(events), 30):
            await _apply(db, project_id, events[i : i + 30])

    async def walk() -> None:
        async with db.engine.connect() as conn:
            while await _backfill(conn, project_id, "plan") != "complete":
                if await walk_chunk(db.pool, BACKFILL, 3) is None:
                    await asyncio.sleep(0.01)  # the first tracked batch has not committed yet
                await conn.rollback()  # a new snapshot for the next look

    await asyncio.wait_for(asyncio.gather(batches(), walk()), timeout=120)
    for query in QUERIES[:3]:
        await _assert_oracle(db, project_id, events, query)


async def test_a_key_no_longer_tracked_loses_its_record_and_values_at_the_start(db: Db) -> None:
    """A metrics start without `country` drops it from every project, values included; `plan`
    stays as it was. Tracking `country` again fills it in from the archive."""
    project_id = await new_project(db.pool)
    events = [_track("user-k", 1, prop="vip"), _track("user-k", 2, prop="free")]
    records = [_record(project_id, v) for v in events]
    for record in records:
        record.properties["country"] = "FR"
    store = Store(db.pool, "retention-breakdown-tests", ["plan", "country"])
    await store.apply(ParsedBatch(events=records), {})

    async def kept() -> tuple[set[str], dict[str, int]]:
        keys = await db.pool.fetch(
            "SELECT key FROM breakdown_keys WHERE project_id = $1", project_id
        )
        values = await db.pool.fetch(
            "SELECT key, count(*) FROM person_day_values WHERE project_id = $1 GROUP BY key",
            project_id,
        )
        return {r[0] for r in keys}, {r[0]: r[1] for r in values}

    assert await kept() == ({"plan", "country"}, {"plan": 2, "country": 2})
    await track_keys(db.pool, ["plan"])
    # The key is gone at once; its values in the background (services/metrics/key_drops.py).
    assert await kept() == ({"plan"}, {"plan": 2, "country": 2})
    assert await drop_pending(db.pool, ["plan"]) >= 1  # other projects' drops among them
    assert await kept() == ({"plan"}, {"plan": 2})
    await track_keys(db.pool, ["plan", "country"])
    async with db.engine.connect() as conn:
        assert await _backfill(conn, project_id, "country") == "running"
    await walk_pending(db.pool, BACKFILL)
    assert await kept() == ({"plan", "country"}, {"plan": 2, "country": 2})


async def test_a_key_the_project_added_stays_at_a_start_and_goes_when_deleted(db: Db) -> None:
    """A key added by POST /v1/breakdowns is the project's own: a metrics start without it
    keeps it, a start configured with it makes it configured, and only a key of the project's
    own is dropped by DELETE /v1/breakdowns/{key}, its values with it."""
    project_id = await new_project(db.pool)
    events = [_track("user-d", 1, prop="vip"), _track("user-d", 2, prop="free")]
    records = [_record(project_id, v) for v in events]
    for record in records:
        record.properties["country"] = "FR"
    async with db.engine.begin() as conn:
        assert await add_key(conn, project_id, "country")
        assert not await add_key(conn, project_id, "country")  # tracked already
    # A Store configured with `plan` only keeps the project's `country` too.
    await Store(db.pool, "retention-breakdown-tests", ["plan"]).apply(
        ParsedBatch(events=records), {}
    )

    async def kept() -> tuple[dict[str, bool], dict[str, int]]:
        keys = await db.pool.fetch(
            "SELECT key, configured FROM breakdown_keys WHERE project_id = $1", project_id
        )
        values = await db.pool.fetch(
            "SELECT key, count(*) FROM person_day_values WHERE project_id = $1 GROUP BY key",
            project_id,
        )
        return {r[0]: r[1] for r in keys}, {r[0]: r[1] for r in values}

    async def rollup_keys(table: str) -> set[str]:
        rows = await db.pool.fetch(
            f"SELECT DISTINCT key FROM {table} WHERE project_id = $1", project_id
        )
        return {r[0] for r in rows}

    assert await kept() == ({"country": False, "plan": True}, {"plan": 2, "country": 2})
    for rollup in ("activity_value_daily", "session_value_minutes", "session_value_durations"):
        assert await rollup_keys(rollup) == {"plan", "country"}, rollup
    await track_keys(db.pool, ["plan"])
    assert await kept() == ({"country": False, "plan": True}, {"plan": 2, "country": 2})
    await drop_pending(db.pool, ["plan"])  # other projects' configured keys, dropped by the start
    async with db.engine.begin() as conn:
        assert await drop_key(conn, project_id, "plan") is False  # configured: left as it is
        assert await drop_key(conn, project_id, "country") is True
        assert await drop_key(conn, project_id, "country") is None
    assert await kept() == ({"plan": True}, {"plan": 2, "country": 2})
    async with db.engine.connect() as conn:
        assert await dropping(conn, project_id, "country")  # POST answers 409 meanwhile
    # Its values go a chunk at a time (here one row: two chunks, and one that finds none) ...
    assert await drop_pending(db.pool, ["plan"], rows=1) == 3
    assert await kept() == ({"plan": True}, {"plan": 2})
    # ... and its per-value rollups (migrations 0020/0021), dropped wholesale with them
    for rollup in ("activity_value_daily", "session_value_minutes", "session_value_durations"):
        assert await rollup_keys(rollup) == {"plan"}, rollup

    async with db.engine.begin() as conn:
        assert not await dropping(conn, project_id, "country")
        assert await add_key(conn, project_id, "country")
        assert await _backfill(conn, project_id, "country") == "running"  # events processed
    await track_keys(db.pool, ["plan", "country"])
    await walk_pending(db.pool, BACKFILL)
    assert await kept() == ({"country": True, "plan": True}, {"plan": 2, "country": 2})


async def test_a_dropped_keys_values_go_a_chunk_at_a_time_beside_batches(db: Db) -> None:
    """Between the chunks that delete a dropped key's values, batches go on: a merge moves
    the merged device's rows to its user, new sessions join the rows still there into the
    rollups. The chunks find both; when they are done nothing of the key is left, and tracking
    it again gives the oracle's numbers."""
    project_id = await new_project(db.pool)
    first = [
        _track("anon-a", 1, prop="vip"),
        _track("anon-a", 2),
        _track("user-a", 1, prop="free"),
        _track("user-a", 3),
        *(_track("user-b", day, hour=9, prop="free") for day in (1, 2, 3)),
    ]
    async with db.engine.begin() as conn:
        assert await add_key(conn, project_id, "plan")  # the project's own key
    await _apply(db, project_id, first, keys=())

    async def left() -> dict[str, int]:
        counts = {}
        for table in (
            "person_day_values",
            "activity_value_daily",
            "session_value_minutes",
            "session_value_durations",
            "stickiness_value_periods",
            "lifecycle_value_cache",
            "lifecycle_value_changes",
        ):
            counts[table] = await db.pool.fetchval(
                f"SELECT count(*) FROM {table} WHERE project_id = $1 AND key = 'plan'", project_id
            )
        return counts

    async with db.engine.connect() as conn:  # the lifecycle split's periods, cached
        await read_lifecycle_breakdown(conn, project_id, "plan", START, _at(4).date(), "day")
    kept = await left()
    assert kept.pop("lifecycle_value_changes") == 0  # the read pruned them
    assert all(kept.values())
    await drop_pending(db.pool, ["plan"])  # other tests' (the module's database is shared)
    async with db.engine.begin() as conn:
        assert await drop_key(conn, project_id, "plan") is True
    assert await drop_chunk(db.pool, [], rows=1) == 1

    later = [
        _link("identify", "user-a", "anon-a", 2),
        _track("user-a", 2, hour=11),
        _track("user-b", 2, hour=11),
        _track("user-b", 4),
    ]
    await _apply(db, project_id, later, keys=())
    between = await left()  # the merge moved the key's rows, and noted the days for the cache
    assert between["person_day_values"] > 0 and between["lifecycle_value_changes"] > 0
    # A configured `plan` listed again meanwhile waits for the drop ...
    await track_keys(db.pool, ["plan"])
    async with db.engine.connect() as conn:
        assert await _backfill(conn, project_id, "plan") is None
        assert await dropping(conn, project_id, "plan")
    assert await drop_pending(db.pool, ["plan"], rows=1) >= 1
    left_over = await left()
    assert left_over == dict.fromkeys(left_over, 0)
    # ... and is tracked again by the last chunk, its history walked in.
    async with db.engine.connect() as conn:
        assert not await dropping(conn, project_id, "plan")
        assert await _backfill(conn, project_id, "plan") == "running"
    await walk_pending(db.pool, BACKFILL)
    await _assert_oracle(db, project_id, first + later, DAY_ON, start=START, stop=_at(4).date())
