"""Step 3 of the consumer chain: apply one batch to PostgreSQL in ONE transaction.

Dedup, identity merges, aggregates, counters, rejected events and the consumer offsets commit
together, so a crash at any point leaves either all of a batch or none of it, and a restart
resumes exactly after the last applied record.

The offsets are written first (see offsets.py for fencing), so a fenced batch does no work.

The transaction commits asynchronously (`synchronous_commit = off`): it does not wait for its
WAL to reach the disk (the COMMIT took 2.1-2.3 ms of a 60-event batch here, now 0.7 ms). A
database crash can then lose the last batches' commits, offsets with their aggregates, so what
remains is the state after an earlier batch; Kafka still holds every record after it, and the
consumer resumes there (offsets.py detects the loss instead of carrying on). That is
PostgreSQL's documented use of asynchronous commit: the loss of the latest transactions is
acceptable, their corruption never.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg

from services.common.db import PROJECT_LOCK_CLASS
from services.common.events import ACTIVE_TYPES, EventRecord, RejectedRecord
from services.common.text import storable_json
from services.metrics import metric_defs as m
from services.metrics.aggregates import traits
from services.metrics.aggregates.activity import apply_activity
from services.metrics.aggregates.archive import apply_archive
from services.metrics.aggregates.identity import apply_merges, links, resolve_people
from services.metrics.aggregates.sessions import lock_persons
from services.metrics.funnels.maintain import apply_funnels
from services.metrics.offsets import Claim, PartitionKey, store_offsets
from services.metrics.parse import ParsedBatch

# In key order, as every batch statement writes shared rows: two consumers claiming the same ids
# (a resend keyed by another id, or sent after the topic gained partitions) wait for each other
# in one order, never in a cycle.
# Sorted, 200k claims in 50k batches also took 2.9-3.5 s against 3.3-4.3 s unsorted.
CLAIM_MESSAGE_IDS = """
INSERT INTO seen_messages (project_id, message_id, received_at)
SELECT * FROM unnest($1::int[], $2::text[], $3::timestamptz[])
ORDER BY 1, 2
ON CONFLICT DO NOTHING
RETURNING project_id, message_id
"""

UPSERT_STATS = """
INSERT INTO project_stats (project_id, events_processed, duplicates_dropped, rejected,
                           processed_through)
SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[])
ORDER BY 1
ON CONFLICT (project_id) DO UPDATE SET
    events_processed = project_stats.events_processed + excluded.events_processed,
    duplicates_dropped = project_stats.duplicates_dropped + excluded.duplicates_dropped,
    rejected = project_stats.rejected + excluded.rejected,
    processed_through = GREATEST(project_stats.processed_through, excluded.processed_through)
"""

INSERT_REJECTED = """
INSERT INTO rejected_events (project_id, reason, detail, message_id, received_at, payload)
SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])
"""

# Adds this service's breakdown keys to projects that lack them (here, to a batch's projects
# this process has not seen yet; breakdown_backfill.py adds them to all at the start): 'running'
# when events of the project were processed before (the walk fills in their values), else
# 'complete'. DO NOTHING takes no row lock: a walk's first chunk holds its key's row while it
# waits for this batch's project lock, so waiting for that row here would close a cycle. A key
# whose old values are still being deleted is left out (key_drops.py adds it back after).
REGISTER_KEYS = """
INSERT INTO breakdown_keys (project_id, key, backfill, configured)
SELECT p, k, CASE WHEN EXISTS (SELECT 1 FROM project_stats s
                               WHERE s.project_id = p AND s.events_processed > 0)
                  THEN 'running' ELSE 'complete' END, true
FROM unnest($1::int[]) AS p CROSS JOIN unnest($2::text[]) AS k
WHERE NOT EXISTS (SELECT 1 FROM breakdown_key_drops d WHERE d.project_id = p AND d.key = k)
ORDER BY 1, 2
ON CONFLICT (project_id, key) DO NOTHING
"""

# The keys the batch's projects track, read under their project locks: a key added after this
# read (POST /v1/breakdowns, a replica starting with more PULSE_BREAKDOWN_KEYS) is filled in by
# breakdown_backfill.py's walk, whose first chunk waits for this batch; one added before it is
# kept by this batch. So every replica keeps the same keys, whatever its own settings.
TRACKED_KEYS = """
SELECT project_id, key FROM breakdown_keys WHERE project_id = ANY($1::int[])
ORDER BY project_id, id
"""

ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"

# Merging batches take their projects' lock exclusively, others share it: labels cannot change
# under a batch that is writing rows keyed by them. Project ids come sorted: no deadlock.
LOCK_PROJECTS = f"""
SELECT CASE WHEN t.merging THEN pg_advisory_xact_lock({PROJECT_LOCK_CLASS}, t.project_id)
            ELSE pg_advisory_xact_lock_shared({PROJECT_LOCK_CLASS}, t.project_id) END
FROM unnest($1::int[], $2::bool[]) AS t(project_id, merging)
"""


def _first_of_each(events: Iterable[EventRecord]) -> list[EventRecord]:
    """Drop repeats of a (project, messageId) inside one batch, keeping the first delivery."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for event in events:
        key = (event.project_id, event.message_id)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


class Store:
    def __init__(
        self, pool: asyncpg.Pool, consumer_group: str, breakdown_keys: Sequence[str] = ()
    ) -> None:
        # This service's PULSE_BREAKDOWN_KEYS, added to the projects it sees; what a batch keeps
        # is what its projects' `breakdown_keys` rows say (TRACKED_KEYS).
        self._breakdown_keys = list(breakdown_keys)
        self._pool = pool
        self._group = consumer_group
        self._zone_cache: dict[int, ZoneInfo] = {}
        self._registered: set[int] = set()  # projects known to have this service's keys

    async def apply(self, batch: ParsedBatch, claims: dict[PartitionKey, Claim]) -> None:
        started = time.perf_counter()
        candidates = _first_of_each(batch.events)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(ASYNC_COMMIT)
            await store_offsets(conn, self._group, batch.next_offsets, claims)
            fresh = await self._claim(conn, candidates)
            await self._lock_projects(conn, fresh)
            registering = await self._register_keys(conn, fresh)
            keys = await _tracked_keys(conn, fresh)
            zones = await self._zones(conn, fresh)
            survivors = await apply_merges(conn, fresh, zones)
            people = await resolve_people(conn, [e for e in fresh if e.type in ACTIVE_TYPES])
            retraited = await _record_traits(conn, fresh, keys)
            # Every person this batch writes, locked at once in key order (sessions.py).
            await lock_persons(conn, {(p, who) for (p, _), who in people.items()} | set(retraited))
            await apply_activity(conn, fresh, people, zones, keys)
            await apply_archive(conn, fresh, people, zones)
            await apply_funnels(conn, fresh, people)
            # Values from a new trait on, and a merged person's whole history, are redone. A
            # merge changes values only through identify traits (now all the person's ids'):
            # what the events carried moved with their rows (identity.py), so a merged person
            # none of whose ids has a trait of a tracked key keeps their rows as they are.
            tracked = {key for project_keys in keys.values() for key in project_keys}
            retraited_merges = await traits.with_changes(conn, survivors, tracked)
            since = {**retraited, **dict.fromkeys(sorted(retraited_merges))}
            for project_id, project_keys in keys.items():
                mine = {person: at for person, at in since.items() if person[0] == project_id}
                await traits.recompute(conn, mine, zones, project_keys)
            await self._insert_rejected(conn, batch.rejected)
            await self._update_stats(conn, batch.events, fresh, batch.rejected)
        self._registered |= registering  # committed
        applied_at = datetime.now(UTC)
        for event in fresh:
            m.END_TO_END_SECONDS.observe((applied_at - event.received_at).total_seconds())
        m.EVENTS_APPLIED.inc(len(fresh))
        m.EVENTS_DEDUPLICATED.inc(len(batch.events) - len(fresh))
        m.REJECTED_STORED.inc(len(batch.rejected))
        m.BATCH_APPLY_SECONDS.observe(time.perf_counter() - started)

    async def missing_projects(self, project_ids: Iterable[int]) -> frozenset[int]:
        """The ids no project has (checked before a batch: their events are dead letters);
        the others' timezones are cached on the way."""
        unknown = sorted(set(project_ids) - self._zone_cache.keys())
        if not unknown:
            return frozenset()
        async with self._pool.acquire() as conn:
            await self._load_zones(conn, unknown)
        return frozenset(unknown) - self._zone_cache.keys()

    async def _zones(
        self, conn: asyncpg.Connection, events: list[EventRecord]
    ) -> dict[int, ZoneInfo]:
        """Project timezones, cached: a project's timezone is fixed when it is created."""
        missing = sorted({e.project_id for e in events} - self._zone_cache.keys())
        if missing:
            await self._load_zones(conn, missing)
        return self._zone_cache

    async def _load_zones(self, conn: asyncpg.Connection, project_ids: list[int]) -> None:
        rows = await conn.fetch(
            "SELECT id, timezone FROM projects WHERE id = ANY($1::int[])", project_ids
        )
        self._zone_cache.update({r["id"]: ZoneInfo(r["timezone"]) for r in rows})

    async def _register_keys(self, conn: asyncpg.Connection, events: list[EventRecord]) -> set[int]:
        """Add this service's breakdown keys to the batch's projects that may lack them; those
        projects (known to have them once the batch commits)."""
        new = sorted({e.project_id for e in events} - self._registered)
        if new and self._breakdown_keys:
            await conn.execute(REGISTER_KEYS, new, self._breakdown_keys)
        return set(new)

    async def _lock_projects(self, conn: asyncpg.Connection, events: list[EventRecord]) -> None:
        merging = {p for p, _, _ in links(events)}
        projects = sorted({e.project_id for e in events})
        if projects:
            await conn.execute(LOCK_PROJECTS, projects, [p in merging for p in projects])

    async def _claim(
        self, conn: asyncpg.Connection, events: list[EventRecord]
    ) -> list[EventRecord]:
        """Record message ids as seen; only events whose id was not seen before come back."""
        if not events:
            return []
        rows = await conn.fetch(
            CLAIM_MESSAGE_IDS,
            [e.project_id for e in events],
            [e.message_id for e in events],
            [e.received_at for e in events],
        )
        claimed = {(r["project_id"], r["message_id"]) for r in rows}
        return [e for e in events if (e.project_id, e.message_id) in claimed]

    async def _insert_rejected(
        self, conn: asyncpg.Connection, rejected: list[RejectedRecord]
    ) -> None:
        if not rejected:
            return
        await conn.execute(
            INSERT_REJECTED,
            [r.project_id for r in rejected],
            [r.reason for r in rejected],
            [r.detail for r in rejected],
            [r.message_id for r in rejected],
            [r.received_at for r in rejected],
            [storable_json(r.payload) for r in rejected],
        )

    async def _update_stats(
        self,
        conn: asyncpg.Connection,
        delivered: list[EventRecord],
        fresh: list[EventRecord],
        rejected: list[RejectedRecord],
    ) -> None:
        processed = Counter(e.project_id for e in fresh)
        duplicates = Counter(e.project_id for e in delivered)
        duplicates.subtract(processed)
        rejected_counts = Counter(r.project_id for r in rejected if r.project_id is not None)
        newest: dict[int, datetime] = {}
        for event in delivered:
            current = newest.get(event.project_id)
            if current is None or event.received_at > current:
                newest[event.project_id] = event.received_at
        project_ids = sorted(set(newest) | set(rejected_counts))
        if not project_ids:
            return
        await conn.execute(
            UPSERT_STATS,
            project_ids,
            [processed[p] for p in project_ids],
            [duplicates[p] for p in project_ids],
            [rejected_counts[p] for p in project_ids],
            [newest.get(p) for p in project_ids],
        )


async def _tracked_keys(
    conn: asyncpg.Connection, events: list[EventRecord]
) -> dict[int, list[str]]:
    """The breakdown keys each project of the batch tracks (TRACKED_KEYS)."""
    keys: dict[int, list[str]] = {}
    projects = sorted({e.project_id for e in events})
    if projects:
        for r in await conn.fetch(TRACKED_KEYS, projects):
            keys.setdefault(r["project_id"], []).append(r["key"])
    return keys


async def _record_traits(
    conn: asyncpg.Connection, events: list[EventRecord], keys: dict[int, list[str]]
) -> dict[tuple[int, str], datetime]:
    """Store the identify traits, every key (breakdown_backfill.py fills in a key tracked later
    from them); the persons whose tracked keys they change, with the time of their earliest
    change."""
    changes = [c for c in await traits.record_changes(conn, events) if c[2] in keys.get(c[0], ())]
    if not changes:
        return {}
    senders = {(e.project_id, e.distinct_id): e for e in events if e.type == "identify"}
    labels = await resolve_people(conn, [senders[(p, d)] for p, d, _, _ in changes])
    earliest: dict[tuple[int, str], datetime] = {}
    for project_id, distinct_id, _, at in changes:
        person = (project_id, labels[(project_id, distinct_id)])
        earliest[person] = min(at, earliest.get(person, at))
    return earliest
