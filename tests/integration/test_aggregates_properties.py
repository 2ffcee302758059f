"""Property: any order, duplication and batching of a history gives the oracle's numbers.

Applies generated histories straight through the metrics Store (the same code the consumer
runs) into the real PostgreSQL, then reads them with the gateway's queries. Identity links
(identify, alias) are shuffled among the events they merge, so they arrive before, between and
after them; some events are weeks older than others (late deliveries).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.common.events import EventRecord
from services.gateway.queries.activity import read_activity
from services.gateway.queries.breakdown import read_breakdown
from services.gateway.queries.events import read_events
from services.gateway.queries.lifecycle import read_lifecycle
from services.gateway.queries.retention import read_retention
from services.gateway.queries.stickiness import read_stickiness
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support import oracle
from tests.support.examples import database_examples
from tests.support.store_db import Db, new_project

START = date(2026, 3, 2)  # a Monday
SPAN_DAYS = 40
# New York's clocks go forward on 2026-03-08 (a 23-hour day) and Santiago's back on 04-05 (25
# hours), both inside the span; Kolkata is 5:30 ahead all year, so UTC hours fall on other days.
TIMEZONES = ["UTC", "America/New_York", "America/Santiago", "Asia/Kolkata"]


ids = st.sampled_from([f"{kind}{n}" for kind in ("anon", "user", "device") for n in range(4)])

active_event = st.builds(
    lambda actor, day, hour, kind, name: ("active", actor, day, hour, kind, name),
    ids,
    st.integers(0, SPAN_DAYS - 1),
    st.integers(0, 23),
    st.sampled_from(["track", "page", "screen"]),
    st.sampled_from(["signup", "purchase"]),
)
link_event = st.builds(
    lambda kind, a, b, day: (kind, a, b, day),
    st.sampled_from(["identify", "alias"]),
    ids,
    ids,
    st.integers(0, SPAN_DAYS - 1),
)
histories = st.lists(st.one_of(active_event, active_event, link_event), min_size=1, max_size=40)


def _sent(history: list[tuple]) -> list[oracle.SentEvent]:  # type: ignore[type-arg]
    out = []
    for item in history:
        message_id = str(uuid.uuid4())
        if item[0] == "active":
            _, actor, day, hour, kind, name = item
            at = datetime(START.year, START.month, START.day, hour, tzinfo=UTC) + timedelta(day)
            out.append(oracle.SentEvent(message_id, kind, actor, at, event=name))
        else:
            kind, a, b, day = item
            at = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(day)
            out.append(oracle.SentEvent(message_id, kind, a, at, linked=b))
    return out


def _plan(e: oracle.SentEvent) -> str | None:
    """A breakdown value per event, fixed by its messageId (duplicates carry the same)."""
    return ["free", "vip", None][int(e.message_id.replace("-", ""), 16) % 3]


def _record(project_id: int, e: oracle.SentEvent) -> EventRecord:
    fields: dict[str, object] = {"user_id": e.person}
    if e.type == "identify":
        fields["anonymous_id"] = e.linked
    elif e.type == "alias":
        fields["previous_id"] = e.linked
    elif e.person.startswith("anon"):
        fields = {"anonymous_id": e.person}
    plan = _plan(e)
    if plan is not None and e.type in oracle.ACTIVE:
        # Half as an event property, half as the trait the SDK attached.
        if int(e.message_id[0], 16) % 2:
            fields["properties"] = {"plan": plan}
        else:
            fields["context"] = {"traits": {"plan": plan}}
    return EventRecord(
        project_id=project_id,
        message_id=e.message_id,
        type=e.type,  # type: ignore[arg-type]
        event=e.event if e.type == "track" else None,
        timestamp=e.timestamp,
        received_at=datetime.now(UTC),
        **fields,  # type: ignore[arg-type]
    )


@database_examples(40)
@given(history=histories, data=st.data())
async def test_any_delivery_gives_the_oracles_numbers(
    db: Db, history: list[tuple], data: st.DataObject
) -> None:  # type: ignore[type-arg]
    sent = _sent(history)
    # Delivery: duplicates of some events, any order, any split into batches.
    repeats = data.draw(st.lists(st.sampled_from(sent), max_size=10), label="duplicates")
    delivery = data.draw(st.permutations(sent + repeats), label="order")
    cuts = sorted(
        data.draw(st.sets(st.integers(1, max(1, len(delivery) - 1)), max_size=5), label="cuts")
    )
    batches = [delivery[i:j] for i, j in zip([0, *cuts], [*cuts, len(delivery)], strict=True)]

    tz = data.draw(st.sampled_from(TIMEZONES), label="timezone")
    project_id = await new_project(db.pool, tz)
    store = Store(db.pool, "property-tests", ["plan"])
    for batch in batches:
        await store.apply(ParsedBatch(events=[_record(project_id, e) for e in batch]), {})
    stop = START + timedelta(days=SPAN_DAYS + 35)
    async with db.engine.connect() as conn:
        days = await read_activity(conn, project_id, START, stop)
        assert [d.model_dump(mode="json") for d in days] == oracle.activity(sent, START, stop, tz)
        for period in ("day", "week", "month"):
            got = await read_lifecycle(conn, project_id, START, stop, period)  # type: ignore[arg-type]
            assert [r.model_dump(mode="json") for r in got] == oracle.lifecycle(
                sent, START, stop, period, tz
            ), period
        for period in ("week", "month"):
            got_s = await read_stickiness(conn, project_id, START, stop, period)  # type: ignore[arg-type]
            assert [r.model_dump(mode="json") for r in got_s] == oracle.stickiness(
                sent, START, stop, period, tz
            ), period
        series = await read_breakdown(conn, project_id, "plan", START, stop)
        values = {e.message_id: v for e in sent if (v := _plan(e)) is not None}
        assert [s.model_dump(mode="json") for s in series] == oracle.breakdown(
            sent, values, START, stop, tz
        )
        top = await read_events(conn, project_id, START, stop, 100)
        assert [r.model_dump() for r in top] == oracle.top_events(sent, START, stop, tz)
        for period, mode, start_event, return_event in [
            ("day", "on", None, None),
            ("day", "on_or_after", None, None),
            ("week", "on", "signup", "purchase"),
            ("week", "on_or_after", "signup", None),
            ("day", "on", None, "$page"),
        ]:
            cohorts = await read_retention(
                conn,
                project_id,
                START,
                START + timedelta(days=20),
                14,
                period,
                mode,  # type: ignore[arg-type]
                start_event,
                return_event,
            )
            assert [c.model_dump(mode="json") for c in cohorts] == oracle.retention(
                sent,
                START,
                START + timedelta(days=20),
                14,
                period,
                mode,
                start_event,
                return_event,
                tz,
            ), (period, mode, start_event, return_event)


async def test_breakdown_rows_follow_an_identity_merge(db: Db) -> None:
    """Anonymous days with plan=free, then identify: the person counts once per value and day."""
    at = datetime(START.year, START.month, START.day, 10, tzinfo=UTC)
    sent = [
        oracle.SentEvent(str(uuid.uuid4()), "track", "anon9", at, event="signup"),
        oracle.SentEvent(str(uuid.uuid4()), "track", "user9", at, event="signup"),
        oracle.SentEvent(str(uuid.uuid4()), "identify", "user9", at, linked="anon9"),
    ]
    project_id = await new_project(db.pool)
    store = Store(db.pool, "property-tests", ["plan"])
    for e in sent:  # one batch each: the merge comes after both rows exist
        record = _record(project_id, e)
        if e.type == "track":
            record.properties = {"plan": "free"}
        await store.apply(ParsedBatch(events=[record]), {})
    async with db.engine.connect() as conn:
        series = await read_breakdown(conn, project_id, "plan", START, START)
    assert [(s.value, s.days[0].dau, s.days[0].events) for s in series] == [("free", 1, 2)]
