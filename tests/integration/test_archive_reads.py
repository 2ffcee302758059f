"""A late event reads the archive around it, not the person's whole history.

Sessions' window, the funnel event fetch, the trait recomputation and the paths suffix each read
a person's archived events from some time on (or within a window). Those reads must be bounded
by the archive index, so that a late event on a long history costs about what it costs on a
short one. Here 20 persons with long histories (two devices each, an hour between events) get
late events through the real `Store.apply`, with `auto_explain` sending every statement's
executed plan to the test's connection: no scan of `active_events` may examine more than a small
part of those histories (before this test, three of the reads examined all of them). The
numbers these reads produce are checked against oracles elsewhere (test_sessions_properties.py,
test_funnels_properties.py, test_retention_breakdown.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.common.events import EventRecord
from services.metrics.aggregates import paths, sessions, traits
from services.metrics.funnels import maintain
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.explained import plan_nodes
from tests.support.store_db import Db, apply_explained, new_project

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PERSONS = 20
HISTORY = 1500  # events per person, an hour apart: two months
BATCH = 5000
NAMES = ["Home", "Search", "View Item", "Purchase"]
# At most this many archive rows examined per person by any one scan: a day or two of events,
# with room for the rows paths read before a late event (64 per device). Their whole history is
# seven times as many.
BOUND_PER_PERSON = 200

FUNNEL = {
    "name": "visit to purchase",
    "steps": [{"event": "Home"}, {"event": "Purchase"}],
    "window_seconds": 86400,
    "order": "ordered",
}


def _event(project_id: int, at: datetime, **fields: Any) -> EventRecord:
    return EventRecord(
        project_id=project_id,
        message_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC),
        timestamp=at,
        **fields,
    )


def _history(project_id: int, person: int) -> list[EventRecord]:
    """An anonymous device, linked to its user after a week; the rest under the user id."""
    device, user = f"a{person}", f"u{person}"
    first = START + timedelta(minutes=person)
    out = [_event(project_id, first, type="identify", user_id=user, anonymous_id=device)]
    for n in range(HISTORY):
        who = {"anonymous_id": device} if n < 168 else {"user_id": user}
        out.append(
            _event(
                project_id,
                first + timedelta(hours=n, minutes=1),
                type="track",
                event=NAMES[(n + person) % len(NAMES)],
                **who,
            )
        )
    return out


def _late(project_id: int, person: int) -> list[EventRecord]:
    """Two events between archived ones a day before the last, and a trait from two days before:
    sessions, paths and the funnel take their late paths, breakdown values are redone."""
    user = f"u{person}"
    last = START + timedelta(minutes=person, hours=HISTORY - 1)
    return [
        _event(project_id, last - timedelta(hours=24, minutes=30), type="track", event="Home",
               user_id=user),
        _event(project_id, last - timedelta(hours=23, minutes=30), type="track",
               event="Purchase", user_id=user),
        _event(project_id, last - timedelta(hours=48), type="identify", user_id=user,
               traits={"plan": "vip"}),
    ]  # fmt: skip


def _archive_scans(plan: dict[str, Any]) -> Iterator[float]:
    """Rows each scan of `active_events` in an executed plan examined (returned + filtered)."""
    for node in plan_nodes(plan):
        if node.get("Relation Name") == "active_events":
            per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            yield per_loop * node["Actual Loops"]


async def test_late_events_read_a_bounded_part_of_a_long_history(db: Db) -> None:
    project_id = await new_project(db.pool)
    await db.pool.execute(
        "INSERT INTO funnels (project_id, name, definition, backfill) "
        "VALUES ($1, $2, $3::jsonb, 'complete')",
        project_id,
        FUNNEL["name"],
        orjson.dumps(FUNNEL).decode(),
    )
    store = Store(db.pool, "archive-reads", ["plan"])
    history = sorted(
        (e for person in range(PERSONS) for e in _history(project_id, person)),
        key=lambda e: e.timestamp,
    )
    for at in range(0, len(history), BATCH):
        await store.apply(ParsedBatch(events=history[at : at + BATCH]), {})
    # Statistics as autovacuum keeps them on a live database.
    await db.pool.execute("ANALYZE active_events")

    late = [e for person in range(PERSONS) for e in _late(project_id, person)]
    plans = await apply_explained(db, late, "archive-reads", ["plan"], analyze=True)
    examined: dict[str, float] = {}  # statement -> most archive rows one of its scans examined
    for query, explained in plans:
        scans = list(_archive_scans(explained["Plan"]))
        if scans:
            examined[query] = max(examined.get(query, 0), *scans)

    # Each late path ran, and none read the histories.
    for statement in [
        sessions.TAKE_WINDOWS,
        maintain.FETCH_EVENTS,
        traits.FETCH_EVENTS,
        paths.LOAD_WINDOWS,
        paths.LOAD_HISTORIES,
    ]:
        assert statement in examined, statement
    assert max(examined.values()) <= PERSONS * BOUND_PER_PERSON, examined
