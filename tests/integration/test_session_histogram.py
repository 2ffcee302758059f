"""Property: the per-day session figures read from the duration histograms equal those computed
from the sessions themselves, whatever statements wrote, moved and deleted the sessions.

Writes `sessions` rows directly (the trigger of migrations 0010/0011 keeps the histograms), with
durations drawn around minute boundaries, across a day and at the 24 h cap, so the median's
minute lookup and its search inside the minute meet every shape: both middle positions in one
minute, in two minutes, at a minute's first or last second, odd and even counts.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.gateway.queries.sessions import read_sessions
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

FIRST_DAY = date(2026, 3, 2)
DAYS = 3


@dataclass(frozen=True)
class Row:
    person: str
    day: date
    start: int  # seconds after the day's midnight (UTC)
    seconds: int
    events: int

    @property
    def start_ts(self) -> datetime:
        return datetime.combine(self.day, datetime.min.time(), UTC) + timedelta(seconds=self.start)


durations = st.one_of(
    st.integers(0, 150),
    st.sampled_from([59, 60, 61, 119, 120, 121, 3599, 3600, 3601, 86_399, 86_400]),
    st.integers(0, 86_400),
)
rows = st.builds(
    Row,
    person=st.sampled_from(["p0", "p1", "p2", "p3"]),
    day=st.sampled_from([FIRST_DAY + timedelta(days=i) for i in range(DAYS)]),
    start=st.integers(0, 86_399),
    seconds=durations,
    events=st.integers(1, 4),
)


def day_figures(day: date, of_day: list[Row]) -> dict[str, object]:
    """A day's /v1/sessions figures, computed from its sessions."""
    n = len(of_day)
    return {
        "date": day.isoformat(),
        "sessions": n,
        "median_seconds": round(statistics.median(r.seconds for r in of_day), 3) if n else None,
        "mean_seconds": round(sum(r.seconds for r in of_day) / n, 3) if n else None,
        "events_per_session": round(sum(r.events for r in of_day) / n, 3) if n else None,
        "bounce_rate": round(sum(r.events == 1 for r in of_day) / n, 4) if n else None,
    }


def expected(final: list[Row]) -> list[dict[str, object]]:
    days = [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]
    return [day_figures(day, [r for r in final if r.day == day]) for day in days]


INSERT = """
INSERT INTO sessions (project_id, person_id, start_ts, end_ts, events, day, chain_start, chain_end)
SELECT $1, person, start_ts, start_ts + make_interval(secs => seconds), events, day,
       start_ts, start_ts + make_interval(secs => seconds)
FROM unnest($2::text[], $3::timestamptz[], $4::int[], $5::int[], $6::date[])
    AS t(person, start_ts, seconds, events, day)
"""
UPDATE = """
UPDATE sessions s SET end_ts = s.start_ts + make_interval(secs => t.seconds), events = t.events
FROM unnest($2::text[], $3::timestamptz[], $4::int[], $5::int[])
    AS t(person, start_ts, seconds, events)
WHERE s.project_id = $1 AND s.person_id = t.person AND s.start_ts = t.start_ts
"""
DELETE = """
DELETE FROM sessions s USING unnest($2::text[], $3::timestamptz[]) AS t(person, start_ts)
WHERE s.project_id = $1 AND s.person_id = t.person AND s.start_ts = t.start_ts
"""


async def insert_sessions(db: Db, project_id: int, rows: list[Row]) -> None:
    await db.pool.execute(
        INSERT,
        project_id,
        [r.person for r in rows],
        [r.start_ts for r in rows],
        [r.seconds for r in rows],
        [r.events for r in rows],
        [r.day for r in rows],
    )


@database_examples(80)
@given(
    written=st.lists(rows, min_size=1, max_size=40, unique_by=lambda r: (r.person, r.start_ts)),
    data=st.data(),
)
async def test_session_figures_equal_the_sessions_whatever_wrote_them(
    db: Db, written: list[Row], data: st.DataObject
) -> None:
    project_id = await new_project(db.pool)
    cut = data.draw(st.integers(0, len(written)), label="rows in the first insert")
    for part in (written[:cut], written[cut:]):
        if part:
            await insert_sessions(db, project_id, part)

    keys = list(range(len(written)))
    moved = data.draw(st.lists(st.sampled_from(keys), unique=True), label="moved")
    final = list(written)
    for i in moved:
        final[i] = replace(
            final[i],
            seconds=data.draw(durations, label="new duration"),
            events=data.draw(st.integers(1, 4), label="new events"),
        )
    if moved:
        await db.pool.execute(
            UPDATE,
            project_id,
            [final[i].person for i in moved],
            [final[i].start_ts for i in moved],
            [final[i].seconds for i in moved],
            [final[i].events for i in moved],
        )
    deleted = set(data.draw(st.lists(st.sampled_from(keys), unique=True), label="deleted"))
    if deleted:
        await db.pool.execute(
            DELETE,
            project_id,
            [final[i].person for i in deleted],
            [final[i].start_ts for i in deleted],
        )
    final = [r for i, r in enumerate(final) if i not in deleted]

    async with db.engine.connect() as conn:
        days = await read_sessions(
            conn, project_id, FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1)
        )
    assert [d.model_dump(mode="json") for d in days] == expected(final)
    # Rows that fell to no session are gone, at both grains.
    for table in ("session_durations", "session_minutes"):
        assert not await db.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE project_id = $1 AND sessions = 0", project_id
        )


async def test_figures_round_as_a_recomputation_in_python_does(db: Db) -> None:
    """93 events (and seconds) over 80 sessions: 1.1625, which Python's float rounds to 1.163.
    The sums come back from SQL as Decimals, and a Decimal quotient rounds half to even (1.162):
    the gateway divides them as integers, like the oracles."""
    project_id = await new_project(db.pool)
    written = [
        Row(f"p{i}", FIRST_DAY, 3600, 2 if i < 13 else 1, 2 if i < 13 else 1) for i in range(80)
    ]
    await insert_sessions(db, project_id, written)
    async with db.engine.connect() as conn:
        days = await read_sessions(
            conn, project_id, FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1)
        )
    assert [d.model_dump(mode="json") for d in days] == expected(written)
    assert days[0].events_per_session == days[0].mean_seconds == 1.163
