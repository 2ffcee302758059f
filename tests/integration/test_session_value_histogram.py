"""Property: the sessions split read from the per-value histograms (migration 0020) equals the
join of the sessions with the person-day values, whatever sequence of statements wrote either.

Statements on `sessions` and `person_day_values` come interleaved in a drawn order: inserts,
updates of a session's duration and events (as the append path's upsert) and of nothing that
counts (as the chain-end updates), deletes, and a merge's move of one person's values to another
(the DELETE ... RETURNING + upsert of identity.py, one statement). The triggers must keep the
image exact after each, and leave no row at zero sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal, get_args

from hypothesis import given
from hypothesis import strategies as st

from services.gateway.queries.sessions import read_sessions_breakdown
from tests.integration.test_session_histogram import (
    DAYS,
    DELETE,
    FIRST_DAY,
    UPDATE,
    Row,
    day_figures,
    insert_sessions,
)
from tests.integration.test_session_histogram import durations as drawn_durations
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

PERSONS = ["p0", "p1", "p2", "p3"]
DAY_LIST = [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]


@dataclass(frozen=True)
class Value:
    key: str
    value: str
    day: date
    person: str


sessions = st.builds(
    Row,
    person=st.sampled_from(PERSONS),
    day=st.sampled_from(DAY_LIST),
    start=st.integers(0, 86_399),
    seconds=drawn_durations,
    events=st.integers(1, 4),
)
values = st.builds(
    Value,
    key=st.sampled_from(["plan", "country"]),
    value=st.sampled_from(["free", "vip", "pro"]),
    day=st.sampled_from(DAY_LIST),
    person=st.sampled_from(PERSONS),
)
Step = Literal["sessions", "values", "update", "touch", "delete", "unvalue", "merge"]

# the batches' upsert of person-day values (activity.py): new rows, or events added
UPSERT_VALUES = """
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT $1, k, v, d, p, n
FROM unnest($2::text[], $3::text[], $4::date[], $5::text[], $6::int[]) AS t(k, v, d, p, n)
ORDER BY 2, 3, 4, 5
ON CONFLICT (project_id, key, value, day, person_id)
DO UPDATE SET events = person_day_values.events + excluded.events
"""
DELETE_VALUES = """
DELETE FROM person_day_values v
USING unnest($2::text[], $3::text[], $4::date[], $5::text[]) AS t(k, v, d, p)
WHERE v.project_id = $1 AND v.key = t.k AND v.value = t.v AND v.day = t.d AND v.person_id = t.p
"""
# identity.py's move of a merged person's values to the survivor
MERGE_VALUES = """
WITH moved AS (
    DELETE FROM person_day_values d WHERE d.project_id = $1 AND d.person_id = $2
    RETURNING d.project_id, d.key, d.value, d.day, d.events
)
INSERT INTO person_day_values (project_id, key, value, day, person_id, events)
SELECT project_id, key, value, day, $3, sum(events) FROM moved
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, key, value, day, person_id)
DO UPDATE SET events = person_day_values.events + excluded.events
"""
TOUCH = """
UPDATE sessions SET chain_end = chain_end + interval '1 second'
WHERE project_id = $1 AND person_id = ANY($2::text[])
"""


def expected(rows: list[Row], held: set[Value], key: str) -> dict[str, list[dict[str, object]]]:
    """Per value of `key`, the figures of the sessions whose person carried it on their day."""
    out: dict[str, list[dict[str, object]]] = {}
    for value in sorted({v.value for v in held if v.key == key}):
        carried = {(v.person, v.day) for v in held if v.key == key and v.value == value}
        mine = [r for r in rows if (r.person, r.day) in carried]
        if not mine:
            continue
        days = [day_figures(day, [r for r in mine if r.day == day]) for day in DAY_LIST]
        out[value] = days
    return out


async def _read(db: Db, project_id: int, key: str) -> dict[str, list[dict[str, object]]]:
    async with db.engine.connect() as conn:
        series = await read_sessions_breakdown(conn, project_id, key, DAY_LIST[0], DAY_LIST[-1])
    return {s.value: [d.model_dump(mode="json") for d in s.days] for s in series}


def value_args(changed: list[Value]) -> list[list[object]]:
    return [
        [v.key for v in changed],
        [v.value for v in changed],
        [v.day for v in changed],
        [v.person for v in changed],
    ]


@database_examples(60)
@given(steps=st.lists(st.sampled_from(get_args(Step)), max_size=10), data=st.data())
async def test_the_split_equals_the_join_whatever_wrote_sessions_and_values(
    db: Db, steps: list[Step], data: st.DataObject
) -> None:
    project_id = await new_project(db.pool)
    rows: list[Row] = []  # the sessions as they stand
    held: set[Value] = set()
    for step in ["sessions", "values", *steps]:
        if step == "sessions":
            taken = {(r.person, r.start_ts) for r in rows}
            drawn = data.draw(
                st.lists(sessions, max_size=8, unique_by=lambda r: (r.person, r.start_ts)),
                label="new sessions",
            )
            new = [r for r in drawn if (r.person, r.start_ts) not in taken]
            if new:
                await insert_sessions(db, project_id, new)
                rows += new
        elif step == "values":
            new_values = data.draw(st.lists(values, max_size=8, unique=True), label="new values")
            if new_values:
                await db.pool.execute(
                    UPSERT_VALUES, project_id, *value_args(new_values), [1] * len(new_values)
                )
                held |= set(new_values)
        elif step in ("update", "delete") and rows:
            chosen = data.draw(st.lists(st.sampled_from(range(len(rows))), unique=True), label=step)
            if step == "update":
                for i in chosen:
                    rows[i] = replace(
                        rows[i],
                        seconds=data.draw(drawn_durations, label="new duration"),
                        events=data.draw(st.integers(1, 4), label="new events"),
                    )
                await db.pool.execute(
                    UPDATE,
                    project_id,
                    [rows[i].person for i in chosen],
                    [rows[i].start_ts for i in chosen],
                    [rows[i].seconds for i in chosen],
                    [rows[i].events for i in chosen],
                )
            else:
                await db.pool.execute(
                    DELETE,
                    project_id,
                    [rows[i].person for i in chosen],
                    [rows[i].start_ts for i in chosen],
                )
                rows = [r for i, r in enumerate(rows) if i not in chosen]
        elif step == "touch":
            await db.pool.execute(TOUCH, project_id, PERSONS)
        elif step == "unvalue" and held:
            gone = data.draw(
                st.lists(st.sampled_from(sorted(held, key=repr)), unique=True), label="unvalue"
            )
            await db.pool.execute(DELETE_VALUES, project_id, *value_args(gone))
            held -= set(gone)
        elif step == "merge":
            old, new_person = data.draw(
                st.lists(st.sampled_from(PERSONS), min_size=2, max_size=2, unique=True),
                label="merged into",
            )
            await db.pool.execute(MERGE_VALUES, project_id, old, new_person)
            held = {replace(v, person=new_person) if v.person == old else v for v in held}

    for key in ("plan", "country"):
        assert await _read(db, project_id, key) == expected(rows, held, key), key
    for table in ("session_value_durations", "session_value_minutes"):
        assert not await db.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE project_id = $1 AND sessions = 0", project_id
        )
