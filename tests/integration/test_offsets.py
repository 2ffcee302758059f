"""Consumer offsets in the batch transaction (services/metrics/offsets.py): a batch commits only
while its consumer owns the partition (fencing) and PostgreSQL still holds the offset that
consumer last stored (a database that lost commits is not carried on from)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.common.events import EventRecord
from services.metrics.offsets import Claim, Fenced, Rewound, claim_partitions
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import Db, new_project

TOPIC = "offsets-test.events"


def _batch(project_id: int, next_offset: int) -> ParsedBatch:
    event = EventRecord(
        project_id=project_id,
        message_id=str(uuid.uuid4()),
        type="track",
        event="Home",
        user_id="u1",
        timestamp=datetime(2026, 3, 2, 12, tzinfo=UTC),
        received_at=datetime.now(UTC),
    )
    return ParsedBatch(events=[event], next_offsets={(TOPIC, 0): next_offset})


async def _state(db: Db, group: str, project_id: int) -> tuple[int | None, int]:
    """(stored next offset, events processed)."""
    stored = await db.pool.fetchval(
        "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1", group
    )
    processed = await db.pool.fetchval(
        "SELECT coalesce(sum(events_processed), 0) FROM project_stats WHERE project_id = $1",
        project_id,
    )
    return stored, int(processed)


async def test_a_batch_commits_over_the_offset_its_consumer_stored(db: Db) -> None:
    group, project_id = f"g-{uuid.uuid4()}", await new_project(db.pool)
    store = Store(db.pool, group)
    (stored, epoch) = (await claim_partitions(db.pool, group, [(TOPIC, 0)]))[(TOPIC, 0)]
    claim = Claim(epoch, stored)
    assert stored is None

    await store.apply(_batch(project_id, 10), {(TOPIC, 0): claim})
    claim.stored = 10
    await store.apply(_batch(project_id, 20), {(TOPIC, 0): claim})

    assert await _state(db, group, project_id) == (20, 2)


async def test_offsets_the_database_lost_roll_the_batch_back(db: Db) -> None:
    group, project_id = f"g-{uuid.uuid4()}", await new_project(db.pool)
    store = Store(db.pool, group)
    (_, epoch) = (await claim_partitions(db.pool, group, [(TOPIC, 0)]))[(TOPIC, 0)]
    await store.apply(_batch(project_id, 10), {(TOPIC, 0): Claim(epoch, None)})
    # As after a crash that lost the commit storing 20: the consumer goes on from 20.
    with pytest.raises(Rewound, match="20"):
        await store.apply(_batch(project_id, 30), {(TOPIC, 0): Claim(epoch, 20)})
    # Nor from nothing, over a partition that holds an offset.
    with pytest.raises(Rewound):
        await store.apply(_batch(project_id, 30), {(TOPIC, 0): Claim(epoch, None)})

    assert await _state(db, group, project_id) == (10, 1)


async def test_a_consumer_that_lost_its_partition_is_fenced(db: Db) -> None:
    group, project_id = f"g-{uuid.uuid4()}", await new_project(db.pool)
    store = Store(db.pool, group)
    (_, old_epoch) = (await claim_partitions(db.pool, group, [(TOPIC, 0)]))[(TOPIC, 0)]
    await store.apply(_batch(project_id, 10), {(TOPIC, 0): Claim(old_epoch, None)})
    (stored, new_epoch) = (await claim_partitions(db.pool, group, [(TOPIC, 0)]))[(TOPIC, 0)]
    assert (stored, new_epoch) == (10, old_epoch + 1)

    with pytest.raises(Fenced):
        await store.apply(_batch(project_id, 20), {(TOPIC, 0): Claim(old_epoch, 10)})
    await store.apply(_batch(project_id, 20), {(TOPIC, 0): Claim(new_epoch, 10)})

    assert await _state(db, group, project_id) == (20, 2)
