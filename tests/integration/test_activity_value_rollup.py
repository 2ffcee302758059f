"""Property: the activity split read from `activity_value_daily` (migration 0021) equals DAU, WAU,
MAU and events per value counted from `person_day_values` itself, whatever sequence of
statements wrote it.

Statements come in a drawn order: inserts of new person-day values, upserts adding events to
existing ones (the batches' path), deletes (trait recomputations, dropped keys) and a merge's
move of one person's rows to another (identity.py's DELETE ... RETURNING + upsert, one
statement). Days spread over two months, so that new days land before, between and after a
person's days, within and beyond the 7 and 30 days WAU and MAU look at.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from typing import Literal, get_args

from hypothesis import given
from hypothesis import strategies as st

from services.gateway.queries.breakdown import read_breakdown
from tests.integration.test_session_value_histogram import (
    DELETE_VALUES,
    MERGE_VALUES,
    UPSERT_VALUES,
    Value,
    value_args,
)
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

FIRST_DAY = date(2026, 1, 5)
DAYS = 60
PERSONS = ["p0", "p1", "p2", "p3"]
READ_FROM = FIRST_DAY + timedelta(days=25)  # the read's range: its WAU/MAU reach back before it
READ_TO = FIRST_DAY + timedelta(days=DAYS + 5)

cells = st.builds(
    Value,
    key=st.sampled_from(["plan", "country"]),
    value=st.sampled_from(["free", "vip"]),
    day=st.integers(0, DAYS - 1).map(lambda i: FIRST_DAY + timedelta(days=i)),
    person=st.sampled_from(PERSONS),
)
Step = Literal["upsert", "delete", "merge"]


def _persons_within(rows: dict[tuple[str, date], int], x: date, width: int) -> int:
    """Persons with a row on one of the `width` days ending on `x`."""
    return len({p for p, d in rows if x - timedelta(days=width - 1) <= d <= x})


def expected(held: dict[Value, int], key: str) -> dict[str, list[dict[str, object]]]:
    """Per value, every day of the read's range, counted from the rows themselves."""
    window_lo = READ_FROM - timedelta(days=29)
    events_in_window: dict[str, int] = defaultdict(int)
    for c, n in held.items():
        if c.key == key and window_lo <= c.day <= READ_TO:
            events_in_window[c.value] += n
    out: dict[str, list[dict[str, object]]] = {}
    for value in sorted(events_in_window):
        rows = {(c.person, c.day): n for c, n in held.items() if c.key == key and c.value == value}
        days = []
        for i in range((READ_TO - READ_FROM).days + 1):
            x = READ_FROM + timedelta(days=i)
            days.append(
                {
                    "date": x.isoformat(),
                    "dau": _persons_within(rows, x, 1),
                    "wau": _persons_within(rows, x, 7),
                    "mau": _persons_within(rows, x, 30),
                    "events": sum(n for (_, d), n in rows.items() if d == x),
                }
            )
        out[value] = days
    return out


async def _read(db: Db, project_id: int, key: str) -> dict[str, list[dict[str, object]]]:
    async with db.engine.connect() as conn:
        series = await read_breakdown(conn, project_id, key, READ_FROM, READ_TO)
    return {s.value: [d.model_dump(mode="json") for d in s.days] for s in series}


@database_examples(60)
@given(steps=st.lists(st.sampled_from(get_args(Step)), max_size=8), data=st.data())
async def test_the_rollup_equals_the_person_day_values_whatever_wrote_them(
    db: Db, steps: list[Step], data: st.DataObject
) -> None:
    project_id = await new_project(db.pool)
    held: dict[Value, int] = {}  # person_day_values as they stand: row -> events
    for step in ["upsert", *steps]:
        if step == "upsert":
            written = data.draw(st.lists(cells, min_size=1, max_size=12, unique=True), label=step)
            counts = [data.draw(st.integers(1, 3), label="events") for _ in written]
            await db.pool.execute(UPSERT_VALUES, project_id, *value_args(written), counts)
            for c, n in zip(written, counts, strict=True):
                held[c] = held.get(c, 0) + n
        elif step == "delete" and held:
            gone = data.draw(
                st.lists(st.sampled_from(sorted(held, key=repr)), unique=True), label=step
            )
            await db.pool.execute(DELETE_VALUES, project_id, *value_args(gone))
            for c in gone:
                del held[c]
        elif step == "merge":
            old, new = data.draw(
                st.lists(st.sampled_from(PERSONS), min_size=2, max_size=2, unique=True),
                label="merged into",
            )
            await db.pool.execute(MERGE_VALUES, project_id, old, new)
            moved: dict[Value, int] = {}
            for c, n in held.items():
                target = replace(c, person=new) if c.person == old else c
                moved[target] = moved.get(target, 0) + n
            held = moved

    for key in ("plan", "country"):
        assert await _read(db, project_id, key) == expected(held, key), key
    # Nothing left at zero everywhere: a row stands for a person counted somewhere.
    assert not await db.pool.fetchval(
        "SELECT count(*) FROM activity_value_daily WHERE project_id = $1"
        " AND dau = 0 AND wau = 0 AND mau = 0 AND events = 0",
        project_id,
    )
