"""Funnel maintenance against the real database: a funnel backfilled after the events arrived
holds exactly the rows of the same funnel maintained while they streamed in, whatever the
chunking of the walk, and a walk interrupted between chunks resumes where it stopped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.common.events import EventRecord
from services.common.funnels import FunnelDefinition
from services.metrics.funnels.backfill import backfill_chunk, backfill_pending
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import Db, new_project

# These tests walk the backfills themselves (conftest.py: `db`).
pytestmark = pytest.mark.private_db


T0 = datetime(2026, 3, 2, 19, tzinfo=UTC)  # the persons cross midnight (Berlin) mid-funnel

DEFINITIONS = [
    {"steps": [{"event": "signup"}, {"event": "cart"}, {"event": "buy"}], "window_seconds": 86400},
    {
        "steps": [
            {"event": "signup"},
            {"event": "buy", "where": [{"property": "plan", "op": "eq", "value": "vip"}]},
        ],
        "window_seconds": 3 * 86400,
        "order": "strict",
    },
    {
        "steps": [{"event": "signup"}, {"event": "buy"}, {"event": "cart"}],
        "window_seconds": 7200,
        "order": "any",
        "exclusions": [{"event": "support"}],
    },
]


def _history(project_id: int) -> list[EventRecord]:
    """Twelve persons, some anonymous then identified, doing the funnel partly or fully."""
    out = []
    names = ["signup", "cart", "support", "buy", "cart", "buy"]
    for n in range(12):
        anon, user = f"anon-{n}", f"user-{n}"
        for i, name in enumerate(names[: 1 + n % 6]):
            actor = {"anonymous_id": anon} if i < 2 else {"user_id": user}
            out.append(
                EventRecord(
                    project_id=project_id,
                    message_id=str(uuid.uuid4()),
                    type="track",
                    event=name,
                    timestamp=T0 + timedelta(hours=n, minutes=37 * i),
                    received_at=datetime.now(UTC),
                    properties={"plan": "vip"} if n % 3 else {},
                    context={"traits": {"plan": "free"}},
                    **actor,  # type: ignore[arg-type]
                )
            )
        if n % 2:
            out.append(
                EventRecord(
                    project_id=project_id,
                    message_id=str(uuid.uuid4()),
                    type="identify",
                    user_id=user,
                    anonymous_id=anon,
                    timestamp=T0,
                    received_at=datetime.now(UTC),
                )
            )
    return out


async def _create(pool: asyncpg.Pool, project_id: int, spec: dict, backfill: str) -> int:  # type: ignore[type-arg]
    definition = FunnelDefinition.model_validate({"name": "f", **spec})
    return int(
        await pool.fetchval(
            "INSERT INTO funnels (project_id, name, definition, backfill) "
            "VALUES ($1, 'f', $2::jsonb, $3) RETURNING id",
            project_id,
            definition.model_dump_json(),
            backfill,
        )
    )


async def _rows(pool: asyncpg.Pool, funnel_id: int) -> list[tuple]:  # type: ignore[type-arg]
    rows = await pool.fetch(
        "SELECT person_id, day, entry_ts, depth, seconds, props::text FROM funnel_attempts "
        "WHERE funnel_id = $1 ORDER BY 1, 2",
        funnel_id,
    )
    return [tuple(r) for r in rows]


async def test_a_backfilled_funnel_equals_the_one_maintained_while_events_streamed(db: Db) -> None:
    project_id = await new_project(db.pool, "Europe/Berlin")
    streamed = [await _create(db.pool, project_id, d, "complete") for d in DEFINITIONS]
    store = Store(db.pool, "funnel-backfill-tests")
    events = _history(project_id)
    events.sort(key=lambda e: e.timestamp)  # steps arrive after the entries they complete
    for i in range(0, len(events), 2):
        await store.apply(ParsedBatch(events=events[i : i + 2]), {})

    for chunk in (1, 5, 1000):
        later = [await _create(db.pool, project_id, d, "running") for d in DEFINITIONS]
        assert await backfill_pending(db.pool, chunk_persons=chunk) >= len(DEFINITIONS)
        for old, new in zip(streamed, later, strict=True):
            assert await _rows(db.pool, new) == await _rows(db.pool, old), chunk
            assert await db.pool.fetchval("SELECT backfill FROM funnels WHERE id = $1", new) == (
                "complete"
            )
    # The streamed funnels really hold attempts, complete ones among them.
    depths = [r[3] for r in await _rows(db.pool, streamed[0])]
    assert len(depths) >= 10 and max(depths) == 3 and min(depths) == 1


async def test_an_interrupted_backfill_resumes_after_its_cursor(db: Db) -> None:
    project_id = await new_project(db.pool)
    store = Store(db.pool, "funnel-backfill-tests")
    await store.apply(ParsedBatch(events=_history(project_id)), {})
    reference = await _create(db.pool, project_id, DEFINITIONS[0], "running")
    await backfill_pending(db.pool)
    walked = await _create(db.pool, project_id, DEFINITIONS[0], "running")

    assert await backfill_chunk(db.pool, chunk_persons=4)  # then the process "dies"
    cursor = await db.pool.fetchval("SELECT backfill_cursor FROM funnels WHERE id = $1", walked)
    assert cursor is not None
    done_before = {r[0] for r in await _rows(db.pool, walked)}
    assert done_before and all(p <= cursor for p in done_before)

    await backfill_pending(db.pool, chunk_persons=4)
    assert await _rows(db.pool, walked) == await _rows(db.pool, reference)


async def test_deleting_a_funnel_removes_its_attempts(db: Db) -> None:
    project_id = await new_project(db.pool)
    funnel_id = await _create(db.pool, project_id, DEFINITIONS[0], "complete")
    await Store(db.pool, "funnel-backfill-tests").apply(
        ParsedBatch(events=_history(project_id)), {}
    )
    assert await _rows(db.pool, funnel_id)
    await db.pool.execute("DELETE FROM funnels WHERE id = $1", funnel_id)
    assert await _rows(db.pool, funnel_id) == []
