"""Property: the bounded read of a late batch's prefix (paths._load_prefixes) gives the tail of
the whole prefix, whatever the window.

Archives of one person over up to three distinct ids, with several rows at one second (on one
id or across ids, of one event or several) and events hours apart across days, are written
straight into the real PostgreSQL; the prefix before any second, read back through windows of
1 to 10 rows per id (with the tail kept of the whole archive), must equal the tail of every
archived event before that second: the same last six runs (names, first and last days, prev
days) and the same last day of every event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

from hypothesis import event, example, given
from hypothesis import strategies as st

from services.metrics.aggregates import paths
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

START = datetime(2026, 3, 2, tzinfo=UTC)
STEP = timedelta(hours=5)  # a few rows a day: runs span days, prev days differ

IDS = ["d0", "d1", "d2"]
rows = st.lists(
    st.tuples(st.sampled_from(IDS), st.integers(0, 40), st.sampled_from("abcdef")),
    min_size=10,
    max_size=120,
)


@database_examples(150)
# Six runs after the window's floor, the first of them begun long before it: not a whole tail.
@example(
    archived=[("d0", n, "a") for n in range(11)]
    + [("d0", 11 + i, e) for i, e in enumerate("bcdef")],
    cut=16,
    window=7,
    timezone="UTC",
)
# Two rows at the floor's second, the day before the rest: the window holds neither, though
# the LIMIT returned one of them (the later inserted: an index read backwards).
@example(
    archived=[("d0", 4, "c"), ("d0", 4, "a")] + [("d0", 5 + n, e) for n, e in enumerate("cdefab")],
    cut=11,
    window=7,
    timezone="UTC",
)
@given(
    archived=rows,
    cut=st.integers(0, 41),
    window=st.integers(1, 10),
    # New York's clocks go forward on 2026-03-08, inside the 200 hours from START.
    timezone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
)
async def test_a_prefix_read_through_a_window_is_the_whole_prefix_tail(
    db: Db, archived: list[tuple[str, int, str]], cut: int, window: int, timezone: str
) -> None:
    project_id = await new_project(db.pool, timezone)
    person = (project_id, "p")
    await db.pool.executemany(
        "INSERT INTO identities (project_id, distinct_id, person_id) VALUES ($1, $2, 'p')",
        [(project_id, d) for d in IDS],
    )
    await db.pool.executemany(
        "INSERT INTO active_events (project_id, distinct_id, ts, event) VALUES ($1, $2, $3, $4)",
        [(project_id, d, START + n * STEP, name) for d, n, name in archived],
    )
    cut_second = int((START + cut * STEP).timestamp())
    zone = ZoneInfo(timezone)
    pairs = {(int((START + n * STEP).timestamp()), name) for _, n, name in archived}
    kept = paths.Tail()  # the tail kept before the batch: the whole archive's
    kept.extend(paths.in_order(pairs, zone))
    async with db.pool.acquire() as conn:
        with patch.object(paths, "PREFIX_WINDOW", window):
            prefixes = await paths._load_prefixes(
                conn, {person: (cut_second, "a")}, {person: kept}, {project_id: zone}
            )

    whole = paths.Tail()
    whole.extend(paths.in_order([pair for pair in pairs if pair[0] < cut_second], zone))
    filled = any(sum(1 for d, n, _ in archived if d == i and n < cut) >= window for i in IDS)
    if not filled:  # every id's whole prefix fits its window
        assert person in prefixes
        event("the whole prefix read")
    else:
        event("a window cut short" if person in prefixes else "left to a whole read")
    if person in prefixes:
        bounded = prefixes[person]
        assert bounded.last_runs().runs == whole.last_runs().runs
        assert bounded.days == whole.days
