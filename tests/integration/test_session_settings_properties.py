"""Property: sessions equal the oracle's under any per-project timeout and cap, whatever the
delivery, and after the settings change mid-stream once the rebuild has run.

The histories, records and delivery orders of test_sessions_properties.py (10-minute
resolution, so gaps of exactly the timeout and sessions of exactly the cap occur often), plus
histories packed into a few hours so that gaps around every timeout are common, for projects
whose timeout (10, 20, 30 or 60 minutes) and cap (1 to 48 h) are not the defaults. A change of
the settings is made with the admin API's own function while a batch is "in flight" (a
transaction holding the project's lock shared), then interleaved with more batches and rebuild
chunks of 1, 2 or many persons, possibly changed again mid-walk — the numbers after the walk
must be the oracle's for the last settings.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.queries.sessions import read_rebuild, read_sessions
from services.gateway.routes.admin import SessionSettingsIn, change_session_settings
from services.metrics.parse import ParsedBatch
from services.metrics.sessions_rebuild import rebuild_chunk, rebuild_pending
from services.metrics.store import Store
from tests.integration.test_sessions_properties import (
    START,
    TIMEZONES,
    _record,
    _sent,
    histories,
    ids,
    kinds,
    link,
    names,
)
from tests.support import oracle
from tests.support.delivery import drawn_batches
from tests.support.examples import database_examples
from tests.support.oracle import SentEvent
from tests.support.store_db import Db, new_project

M = timedelta(minutes=1)
H = timedelta(hours=1)
# (timeout, cap): caps of exactly the timeout, caps the 10-minute bursts hit often, the defaults
SETTINGS = [
    (10 * M, 1 * H),
    (10 * M, 6 * H),
    (20 * M, 3 * H),
    (20 * M, 100 * M),
    (60 * M, 1 * H),
    (60 * M, 6 * H),
    (30 * M, 2 * H),
    (30 * M, 24 * H),
    # longer than the 24 h default: the marathons (24.5-30 h every 30 minutes) fit in one
    (30 * M, 36 * H),
    (60 * M, 48 * H),
]
CHUNKS = [1, 2, 1000]

# The generators of test_sessions_properties.py spread events over three days around a
# 30-minute rule; these pack them into eight hours, with steps of 10 to 70 minutes, so that gaps
# just under and over every timeout, and late events that bridge them, are common.
dense_slots = st.integers(0, 47)
dense_single = st.builds(
    lambda actor, slot, kind, name: ("burst", actor, slot, 1, [(kind, name)]),
    ids,
    dense_slots,
    kinds,
    names,
)
dense_burst = st.builds(
    lambda actor, slot, step, steps: ("burst", actor, slot, step, steps),
    ids,
    dense_slots,
    st.integers(1, 7),
    st.lists(st.tuples(kinds, names), min_size=2, max_size=30),
)
dense = st.lists(
    st.one_of(dense_single, dense_single, dense_burst, dense_burst, link), min_size=1, max_size=25
)
any_history = st.one_of(histories, dense)

SET_SETTINGS = """
UPDATE projects SET session_timeout_seconds = $2, session_cap_seconds = $3 WHERE id = $1
"""


async def _project(db: Db, timezone: str, gap: timedelta, cap: timedelta) -> int:
    """A project created with these settings (nothing to rebuild yet)."""
    project_id = await new_project(db.pool, timezone)
    await db.pool.execute(
        SET_SETTINGS, project_id, int(gap.total_seconds()), int(cap.total_seconds())
    )
    return project_id


async def _apply(store: Store, project_id: int, batch: list[SentEvent]) -> None:
    await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})


async def _expect_oracle(
    db: Db, project_id: int, sent: list[SentEvent], timezone: str, rules: tuple[timedelta, ...]
) -> None:
    first, last = START.date() - timedelta(days=1), START.date() + timedelta(days=5)
    async with db.engine.connect() as conn:
        days = await read_sessions(conn, project_id, first, last)
    assert [d.model_dump(mode="json") for d in days] == oracle.sessions(
        sent, first, last, timezone, *rules
    )


async def _rebuild_to_completion(db: Db, project_id: int, chunk: int) -> None:
    """Walk until the project's rebuild is complete. Another metrics process (the pipeline the
    HTTP tests start) may be walking it too: a chunk it holds is skipped here, so wait for it."""
    deadline = time.monotonic() + 60
    while True:
        await rebuild_pending(db.pool, chunk_persons=chunk)
        async with db.engine.connect() as conn:
            if await read_rebuild(conn, project_id) == "complete":
                return
        assert time.monotonic() < deadline, "the rebuild did not complete"
        await asyncio.sleep(0.05)


async def _change(db: Db, project_id: int, rules: tuple[timedelta, timedelta]) -> None:
    """Change the settings as PATCH /v1/projects/{id} does and see the rebuild reported.

    When no rebuild runs yet, a batch is "in flight" meanwhile (a transaction holding the
    project's lock shared): no rebuild can start, so it is seen running whoever walks it. (With
    one running, another metrics process may be in its first chunk, holding the project's row
    that the change waits for while that chunk waits for the lock held here: not then.)
    """
    body = SessionSettingsIn(
        session_timeout_seconds=int(rules[0].total_seconds()),
        session_cap_seconds=int(rules[1].total_seconds()),
    )
    async with db.engine.connect() as conn:
        idle = await read_rebuild(conn, project_id) == "complete"
    in_flight: asyncpg.Connection = await db.pool.acquire()
    try:
        async with in_flight.transaction():
            if idle:
                await in_flight.execute("SELECT pg_advisory_xact_lock_shared(1347, $1)", project_id)
            async with db.engine.begin() as conn:
                row = await change_session_settings(conn, project_id, body)
            assert row is not None and row.sessions_rebuild == "running"
            if idle:
                async with db.engine.connect() as conn:
                    assert await read_rebuild(conn, project_id) == "running"
    finally:
        await db.pool.release(in_flight)


@database_examples(50)
@given(history=any_history, data=st.data())
async def test_sessions_equal_the_oracle_under_any_project_settings(
    db: Db, history: list[tuple], data: st.DataObject
) -> None:  # type: ignore[type-arg]
    sent = _sent(history)
    batches = drawn_batches(data, sent)
    timezone = data.draw(st.sampled_from(TIMEZONES), label="timezone")
    rules = data.draw(st.sampled_from(SETTINGS), label="settings")

    project_id = await _project(db, timezone, *rules)
    store = Store(db.pool, "session-settings-property-tests")
    for batch in batches:
        await _apply(store, project_id, batch)
    await _expect_oracle(db, project_id, sent, timezone, rules)


@database_examples(40)
@given(history=any_history, data=st.data())
async def test_changed_settings_rebuild_every_session_to_the_oracle(
    db: Db, history: list[tuple], data: st.DataObject
) -> None:  # type: ignore[type-arg]
    sent = _sent(history)
    batches = drawn_batches(data, sent)
    timezone = data.draw(st.sampled_from(TIMEZONES), label="timezone")
    rules = data.draw(st.sampled_from(SETTINGS), label="settings")
    # One or two changes, each to settings other than the ones in force.
    changes: list[tuple[timedelta, timedelta]] = []
    for _ in range(data.draw(st.integers(1, 2), label="changes")):
        current = changes[-1] if changes else rules
        options = [s for s in SETTINGS if s != current]
        changes.append(data.draw(st.sampled_from(options), label="new settings"))
    # Where in the delivery each change happens, and how large the rebuild's chunks are.
    at = sorted(
        data.draw(
            st.lists(st.integers(0, len(batches)), min_size=len(changes), max_size=len(changes)),
            label="change points",
        )
    )
    chunk = data.draw(st.sampled_from(CHUNKS), label="chunk")

    project_id = await _project(db, timezone, *rules)
    store = Store(db.pool, "session-settings-rebuild-tests")
    pending = list(zip(at, changes, strict=True))
    for i, batch in enumerate([*batches, []]):
        while pending and pending[0][0] == i:
            await _change(db, project_id, pending.pop(0)[1])
        # Batches and rebuild chunks interleave: a batch may reach persons not walked yet.
        await _apply(store, project_id, batch)
        await rebuild_chunk(db.pool, chunk_persons=chunk)
    await _rebuild_to_completion(db, project_id, chunk)
    async with db.engine.connect() as conn:
        assert await read_rebuild(conn, project_id) == "complete"
    await _expect_oracle(db, project_id, sent, timezone, changes[-1])


# Deliveries the generators reach only rarely, each the case one bound of the window statement
# is for when the settings are not the defaults: (history, settings, delivery order, batch sizes).
HARD_CASES = {
    # A chain longer than a day under a 36 h cap, its last event late: the session it joins
    # started more than 24 h 30 min before it (the scan must reach back cap + timeout).
    "late_end_of_a_session_longer_than_a_day": (
        [("burst", "user0", 0, 3, [("track", "a")] * 55)],
        (30 * M, 36 * H),
        "oldest_first_last_late",
        [54, 1],
    ),
    # Under a 60-minute timeout, an event 50 minutes before a session joins it (the scan must
    # reach the timeout ahead), and bridges it with the one 50 minutes before.
    "bridge_under_a_longer_timeout": (
        [("burst", "anon0", 10, 5, [("track", "a"), ("track", "b"), ("track", "c")])],
        (60 * M, 6 * H),
        "middle_last",
        [2, 1],
    ),
    # Under a 1 h cap, an earlier event moves every later cut of a 4 h chain.
    "short_cap_cuts_shifted_by_an_earlier_event": (
        [("burst", "user1", 6, 1, [("page", "a")] * 24)],
        (20 * M, 1 * H),
        "newest_first",
        [20, 3, 1],
    ),
}


@pytest.mark.parametrize("case", sorted(HARD_CASES))
async def test_known_hard_deliveries_under_settings(db: Db, case: str) -> None:
    history, rules, order, sizes = HARD_CASES[case]
    sent = _sent(history)
    in_time = sorted(sent, key=lambda e: e.timestamp)
    if order == "newest_first":
        delivery = in_time[::-1]
    elif order == "middle_last":
        delivery = [in_time[0], in_time[2], in_time[1]]
    else:
        delivery = [*in_time[:-2], in_time[-1], in_time[-2]]
    project_id = await _project(db, "UTC", *rules)
    store = Store(db.pool, "session-settings-hard-cases")
    done = 0
    for size in sizes:
        await _apply(store, project_id, delivery[done : done + size])
        done += size
    assert done == len(delivery)
    await _expect_oracle(db, project_id, sent, "UTC", rules)


async def test_unchanged_settings_rebuild_nothing(db: Db) -> None:
    project_id = await _project(db, "UTC", 20 * M, 3 * H)
    async with db.engine.begin() as conn:
        row = await change_session_settings(
            conn, project_id, SessionSettingsIn(session_timeout_seconds=1200)
        )
    assert row is not None and row.sessions_rebuild == "complete"
    assert (row.session_timeout_seconds, row.session_cap_seconds) == (1200, 3 * 3600)
    assert row.sessions_generation == 0


async def test_a_rebuild_resumes_after_its_cursor(db: Db) -> None:
    """Chunks of one person: the cursor walks the persons in label order and the walk ends
    'complete' with every person's sessions cut with the new settings."""
    at = START + timedelta(hours=1)
    sent = [
        SentEvent(str(uuid.uuid4()), "track", person, at + k * 15 * M)
        for person in ("p0", "p1", "p2")
        for k in range(4)
    ]
    project_id = await _project(db, "UTC", 30 * M, 24 * H)
    await _apply(Store(db.pool, "session-settings-rebuild-tests"), project_id, sent)
    await _expect_oracle(db, project_id, sent, "UTC", (30 * M, 24 * H))
    await _change(db, project_id, (10 * M, 1 * H))

    seen: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        await rebuild_chunk(db.pool, chunk_persons=1)
        state, cursor = await db.pool.fetchrow(
            "SELECT sessions_rebuild, sessions_rebuild_cursor FROM projects WHERE id = $1",
            project_id,
        )
        if cursor is not None and (not seen or seen[-1] != cursor):
            seen.append(cursor)
        if state == "complete":
            break
        assert time.monotonic() < deadline
    assert seen == sorted(seen) and set(seen) <= {"p0", "p1", "p2"} and seen[-1] == "p2"
    await _expect_oracle(db, project_id, sent, "UTC", (10 * M, 1 * H))
    # 15-minute gaps over a 10-minute timeout: every event is a session of its own.
    async with db.engine.connect() as conn:
        days = await read_sessions(conn, project_id, at.date(), at.date())
    assert days[0].sessions == 12 and days[0].bounce_rate == 1.0
