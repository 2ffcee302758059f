"""Property: sessions and paths equal the oracle's whatever the delivery.

Generated histories at 10-minute resolution, so 30-minute gaps (exactly 30 too) and late events
that bridge two sessions occur often, with bursts of events long enough to hit the 24 h cap,
identity links shuffled among the events they merge, duplicates, any order, any split into
batches — applied through the real metrics Store into the real PostgreSQL, read with the
gateway's queries, in UTC and in a half-hour-offset timezone.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import EventRecord
from services.gateway.queries.paths import read_paths
from services.gateway.queries.sessions import read_sessions
from services.metrics.aggregates import paths
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support import oracle
from tests.support.delivery import drawn_batches
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

# Three days around New York's clocks going forward (2026-03-08 07:00 UTC: a 23-hour day).
START = datetime(2026, 3, 7, tzinfo=UTC)
TIMEZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
SLOTS = 3 * 24 * 6  # 10-minute slots over three days


ids = st.sampled_from(["anon0", "anon1", "anon2", "user0", "user1", "user2"])
kinds = st.sampled_from(["track", "track", "track", "page", "screen"])
names = st.sampled_from(["a", "b", "c"])

single = st.builds(
    lambda actor, slot, kind, name: ("burst", actor, slot, 1, [(kind, name)]),
    ids,
    st.integers(0, SLOTS - 1),
    kinds,
    names,
)
# A run of events every 10, 20 or 30 minutes: up to ~40 h, so the 24 h cap cuts some.
burst = st.builds(
    lambda actor, slot, step, steps: ("burst", actor, slot, step, steps),
    ids,
    st.integers(0, SLOTS - 1),
    st.sampled_from([1, 2, 3]),
    st.lists(st.tuples(kinds, names), min_size=2, max_size=80),
)
# Every 30 minutes for 24.5-30 h: the cap always cuts, and (delivered in any order) its early
# events arrive after later ones, exactly 30 minutes before the chain they join.
marathon = st.builds(
    lambda actor, slot, steps: ("burst", actor, slot, 3, steps),
    ids,
    st.integers(0, SLOTS - 1),
    st.lists(st.tuples(kinds, names), min_size=50, max_size=61),
)
link = st.builds(lambda kind, a, b: (kind, a, b), st.sampled_from(["identify", "alias"]), ids, ids)
histories = st.lists(
    st.one_of(single, single, single, burst, marathon, link, link), min_size=1, max_size=25
)


def _sent(history: list[tuple]) -> list[oracle.SentEvent]:  # type: ignore[type-arg]
    out = []
    for item in history:
        if item[0] == "burst":
            _, actor, slot, step, steps = item
            for i, (kind, name) in enumerate(steps):
                at = START + timedelta(minutes=10 * (slot + i * step))
                out.append(oracle.SentEvent(str(uuid.uuid4()), kind, actor, at, event=name))
        else:
            kind, a, b = item
            out.append(oracle.SentEvent(str(uuid.uuid4()), kind, a, START, linked=b))
    return out


def _record(project_id: int, e: oracle.SentEvent) -> EventRecord:
    fields: dict[str, object] = {"user_id": e.person}
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
        event=e.event if e.type == "track" else None,
        # Sub-second noise, as the clock-skew correction adds: archived to the second.
        timestamp=e.timestamp + timedelta(milliseconds=uuid.UUID(e.message_id).int % 800 - 400),
        received_at=datetime.now(UTC),
        **fields,  # type: ignore[arg-type]
    )


PATH_QUERIES = [
    # (anchor, after, depth, limit, first day offset, last day offset)
    ("a", True, 3, 20, -1, 4),
    ("b", False, 2, 20, -1, 4),
    ("$page", True, 6, 2, -1, 4),
    ("c", True, 4, 20, 1, 1),
    ("a", False, 6, 3, 0, 1),
]


@database_examples(60)
@given(history=histories, data=st.data())
async def test_sessions_and_paths_equal_the_oracle_whatever_the_delivery(
    db: Db, history: list[tuple], data: st.DataObject
) -> None:  # type: ignore[type-arg]
    sent = _sent(history)
    batches = drawn_batches(data, sent)
    timezone = data.draw(st.sampled_from(TIMEZONES), label="timezone")

    # How many rows per id a late batch reads back for its prefix (paths.py): small windows
    # are often cut short, so both the bounded read and its fallback to the whole history run.
    window = data.draw(st.sampled_from([1, 2, 5, 12, paths.PREFIX_WINDOW]), label="window")

    project_id = await new_project(db.pool, timezone)
    store = Store(db.pool, "sessions-property-tests")
    with patch.object(paths, "PREFIX_WINDOW", window):
        for batch in batches:
            await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})

    first, last = START.date() - timedelta(days=1), START.date() + timedelta(days=5)
    async with db.engine.connect() as conn:
        days = await read_sessions(conn, project_id, first, last)
        assert [d.model_dump(mode="json") for d in days] == oracle.sessions(
            sent, first, last, timezone
        )
        for anchor, after, depth, limit, lo, hi in PATH_QUERIES:
            span: tuple[date, date] = (
                START.date() + timedelta(days=lo),
                START.date() + timedelta(days=hi),
            )
            edges = await read_paths(
                conn,
                project_id,
                *span,
                anchor,
                "after" if after else "before",
                depth,
                limit,
            )
            assert [e.model_dump() for e in edges] == oracle.paths(
                sent, *span, anchor, after, depth, limit, timezone
            ), (anchor, after, depth, limit, span)
        # Every range of the days around the events, every edge to the deepest step: the kept
        # counts decide which ranges an edge counts for (paths.py), so each bound is exercised.
        days_around = [START.date() + timedelta(days=n) for n in range(-1, 4)]
        for lo_day in days_around:
            for hi_day in [d for d in days_around if d >= lo_day]:
                for anchor, after in [("a", True), ("b", False), ("c", True), ("c", False)]:
                    direction = "after" if after else "before"
                    edges = await read_paths(conn, project_id, lo_day, hi_day, anchor, direction,
                                             6, 100)  # fmt: skip
                    assert [e.model_dump() for e in edges] == oracle.paths(
                        sent, lo_day, hi_day, anchor, after, 6, 100, timezone
                    ), (anchor, after, lo_day, hi_day)
    # The counts and tails kept batch by batch are those of the whole history at once, row for
    # row, with no row left at 0 persons (the reads above check what the counts mean; this checks
    # that appends, late events and merges kept them whole).
    kept_edges, kept_tails = await _kept_paths(db, project_id)
    edges_whole, tails_whole = await _recomputed_paths(db, project_id, timezone)
    assert kept_edges.items() ^ edges_whole.items() == set()
    assert kept_tails == tails_whole


async def _kept_paths(db: Db, project_id: int) -> tuple[dict, dict]:  # type: ignore[type-arg]
    edges = await db.pool.fetch(
        """
        SELECT e.*, a.name AS anchor, s.name AS source, t.name AS target
        FROM path_edges e
        JOIN event_names a ON a.id = e.anchor_id
        JOIN event_names s ON s.id = e.source_id
        JOIN event_names t ON t.id = e.target_id
        WHERE e.project_id = $1
        """,
        project_id,
    )
    tails = await db.pool.fetch(
        "SELECT person_id, tail::text FROM path_tails WHERE project_id = $1", project_id
    )
    return (
        {
            (
                r["project_id"],
                r["anchor"],
                r["after"],
                r["last_start"].toordinal(),
                r["prev_day"].toordinal(),
                r["step_day"].toordinal(),
                r["step"],
                r["source"],
                r["target"],
            ): r["persons"]
            for r in edges
        },
        {r["person_id"]: paths.Tail.decode(r["tail"]) for r in tails},
    )


async def _recomputed_paths(db: Db, project_id: int, timezone: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    rows = await db.pool.fetch(
        """
        SELECT DISTINCT i.person_id, extract(epoch FROM a.ts)::bigint AS second, a.event
        FROM active_events a
        JOIN identities i ON i.project_id = a.project_id AND i.distinct_id = a.distinct_id
        WHERE a.project_id = $1
        """,
        project_id,
    )
    histories: dict[str, list[tuple[int, str]]] = {}
    for r in rows:
        histories.setdefault(r["person_id"], []).append((r["second"], r["event"]))
    counts: Counter[paths.EdgeKey] = Counter()
    zone = ZoneInfo(timezone)
    tails = {}
    for person, events in histories.items():
        tail = paths.history_edges(counts, project_id, paths.in_order(events, zone), 1)
        tails[person] = paths.Tail.decode(tail.encode())  # as kept: its last runs
    return {key: n for key, n in counts.items() if n}, tails


def _marathon(actor: str, slot: int, n: int) -> tuple:  # type: ignore[type-arg]
    return ("burst", actor, slot, 3, [("track", "a")] * n)


# Deliveries the generator reaches only rarely, each the case one part of the window logic is for.
# (history, how to order it, batch sizes)
HARD_CASES = {
    # A late event 30 min before a chain cut by the cap moves every later cut of the chain: the
    # recomputation must reach the chain's end, past the session the event touched.
    "cap_cut_shifted_by_an_earlier_event": ([_marathon("user0", 0, 60)], "newest_first", [57, 3]),
    # Events extending a chain touch only its last session; the chain's earlier sessions must
    # learn the new chain end, or a later early event recomputes too little.
    "chain_extended_then_an_earlier_event": (
        [_marathon("user0", 3, 55), ("burst", "user0", 0, 1, [("page", "a")])],
        "earliest_last",
        [50, 5, 1],
    ),
    # A late event between two sessions 60 minutes apart bridges them into one.
    "bridge": (
        [("burst", "anon0", 10, 6, [("track", "a"), ("track", "b"), ("track", "c")])],
        "middle_last",
        [2, 1],
    ),
    # Two devices' sessions interleave; the identify that merges them comes last.
    "merge_after_the_events": (
        [
            ("burst", "anon0", 0, 6, [("track", "a")] * 3),
            ("burst", "user0", 3, 6, [("track", "b")] * 3),
            ("identify", "user0", "anon0"),
        ],
        "as_generated",
        [6, 1],
    ),
}


@pytest.mark.parametrize("case", sorted(HARD_CASES))
async def test_sessions_in_known_hard_deliveries(db: Db, case: str) -> None:
    history, order, sizes = HARD_CASES[case]
    sent = _sent(history)
    if order == "newest_first":
        delivery = sorted(sent, key=lambda e: e.timestamp, reverse=True)
    elif order == "earliest_last":
        oldest, *rest = sorted(sent, key=lambda e: e.timestamp)
        delivery = [*rest, oldest]
    elif order == "middle_last":
        delivery = [sent[0], sent[2], sent[1]]
    else:
        delivery = sent
    project_id = await new_project(db.pool)
    store = Store(db.pool, "sessions-hard-cases")
    done = 0
    for size in sizes:
        batch = delivery[done : done + size]
        done += size
        await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})
    assert done == len(delivery)
    first, last = START.date(), START.date() + timedelta(days=3)
    async with db.engine.connect() as conn:
        days = await read_sessions(conn, project_id, first, last)
    expected = oracle.sessions(sent, first, last)
    assert [d.model_dump(mode="json") for d in days] == expected
    assert sum(d["sessions"] for d in expected) > 0


# A run of one event across midnight is a step of a range that holds any of it: after the
# anchor it counts from its first event (inside a range ending that day), before the anchor
# from its last (inside a range starting the next day). Slot 144 is midnight after START's day.
RUNS_ACROSS_MIDNIGHT = [
    ("burst", "user0", 141, 1, [("track", n) for n in ["a", "b", "b", "b", "c"]]),
    ("burst", "user1", 142, 1, [("track", n) for n in ["x", "x", "x", "y"]]),
]


@pytest.mark.parametrize(
    ("anchor", "after", "days"), [("a", True, (0, 0)), ("y", False, (1, 1)), ("y", False, (0, 1))]
)
@pytest.mark.parametrize("order", ["oldest_first", "newest_first"])
async def test_paths_count_runs_across_the_ends_of_the_range(
    db: Db, anchor: str, after: bool, days: tuple[int, int], order: str
) -> None:
    sent = _sent(RUNS_ACROSS_MIDNIGHT)
    project_id = await new_project(db.pool)
    store = Store(db.pool, "paths-midnight")
    # One batch per event: in order every event appends to the kept tail; newest first, every
    # one lands before the last event kept, so each batch reads the archive (paths.py).
    for e in sent if order == "oldest_first" else reversed(sent):
        await store.apply(ParsedBatch(events=[_record(project_id, e)]), {})
    span = (START.date() + timedelta(days=days[0]), START.date() + timedelta(days=days[1]))
    async with db.engine.connect() as conn:
        direction = "after" if after else "before"
        edges = await read_paths(conn, project_id, *span, anchor, direction, 3, 20)
    expected = oracle.paths(sent, *span, anchor, after, 3, 20)
    assert [e.model_dump() for e in edges] == expected
    assert expected  # the run is a step of this range
    assert await _kept_paths(db, project_id) == await _recomputed_paths(db, project_id, "UTC")


# Two devices of one person, merged first, then alternating events (a new run each) or one
# long run, hourly over a day and a half: a late batch reads back through a short window.
ALTERNATING = [("track", n) for n in "abcbacabcabbcaacbabc"] * 2
LONG_HISTORIES = {
    "alternating": [
        ("identify", "user0", "anon0"),
        ("burst", "user0", 0, 6, ALTERNATING),
        ("burst", "anon0", 3, 6, ALTERNATING[5:]),
    ],
    "one_long_run": [
        ("identify", "user0", "anon0"),
        ("burst", "user0", 0, 6, [("track", "a")] * 30 + ALTERNATING[:8]),
        ("burst", "anon0", 3, 6, [("track", "a")] * 30),
    ],
}


@pytest.mark.parametrize("window", [3, 8, 20])
@pytest.mark.parametrize("case", sorted(LONG_HISTORIES))
async def test_paths_of_late_events_read_through_a_window(db: Db, case: str, window: int) -> None:
    sent = _sent(LONG_HISTORIES[case])
    by_time = sorted(sent, key=lambda e: e.timestamp)
    # In order but for every seventh event, which comes last, in two batches.
    late = by_time[20::7]
    on_time = [e for e in by_time if e not in late]
    project_id = await new_project(db.pool)
    store = Store(db.pool, "paths-windows")
    with patch.object(paths, "PREFIX_WINDOW", window):
        for batch in [on_time, late[1::2], late[::2]]:
            await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})
    async with db.engine.connect() as conn:
        for lo, hi in [(0, 0), (0, 1), (1, 1), (0, 2)]:
            span = (START.date() + timedelta(days=lo), START.date() + timedelta(days=hi))
            for anchor, after in [("a", True), ("b", False), ("c", True)]:
                direction = "after" if after else "before"
                edges = await read_paths(conn, project_id, *span, anchor, direction, 6, 100)
                assert [e.model_dump() for e in edges] == oracle.paths(
                    sent, *span, anchor, after, 6, 100
                ), (anchor, after, span)
    assert await _kept_paths(db, project_id) == await _recomputed_paths(db, project_id, "UTC")
