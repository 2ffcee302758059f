"""The PostgreSQL schema as SQLAlchemy Core tables; alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A tenant. Its session settings (README "Sessions"): a session ends after
# `session_timeout_seconds` without an active event and lasts at most `session_cap_seconds`.
# Changing them rebuilds every session of the project from the archive (sessions_rebuild.py):
# `sessions_rebuild` is 'running' until then, `sessions_rebuild_cursor` the last person done;
# `sessions_generation` counts the changes (a version of the sessions for the gateway's cache).
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False, server_default="UTC"),
    Column("write_key", Text, nullable=False),
    Column("read_key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("session_timeout_seconds", Integer, nullable=False, server_default="1800"),
    Column("session_cap_seconds", Integer, nullable=False, server_default="86400"),
    Column("sessions_rebuild", Text, nullable=False, server_default="complete"),
    Column("sessions_rebuild_cursor", Text),
    Column("sessions_rebuild_done_at", DateTime(timezone=True)),
    Column("sessions_generation", Integer, nullable=False, server_default="0"),
    UniqueConstraint("write_key"),
    UniqueConstraint("read_key"),
    CheckConstraint("session_timeout_seconds BETWEEN 60 AND 86400", name="session_timeout"),
    CheckConstraint(
        "session_cap_seconds >= session_timeout_seconds AND session_cap_seconds <= 604800",
        name="session_cap",
    ),
    CheckConstraint("sessions_rebuild IN ('running', 'complete')", name="sessions_rebuild"),
)

# Dedup memory: a (project, messageId) seen here is never applied again (SPEC §3, PULSE_DEDUP_DAYS).
seen_messages = Table(
    "seen_messages",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("project_id", "message_id"),
    Index(None, "received_at"),
)

# Every distinct id seen (userId, anonymousId, previousId) -> the person it belongs to now.
# A person is a connected component of ids linked by identify/alias; its label is the smallest id
# in the component, so the labelling does not depend on the order links arrive in.
identities = Table(
    "identities",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("distinct_id", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    PrimaryKeyConstraint("project_id", "distinct_id"),
    Index(None, "project_id", "person_id"),
)

# One row per person per active day in the project's timezone: DAU/WAU/MAU and events.
person_days = Table(
    "person_days",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("events", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "day", "person_id"),
    Index(None, "project_id", "person_id", "day"),
)

# Active events per person, day and event name: top events with counts and distinct persons.
person_event_days = Table(
    "person_event_days",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("event", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("events", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "day", "event", "person_id"),
    Index(None, "project_id", "person_id"),
)

# Daily rollup of the activity numbers, kept exact by deltas in each batch's transaction.
activity_daily = Table(
    "activity_daily",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("dau", BigInteger, nullable=False, server_default="0"),
    Column("wau", BigInteger, nullable=False, server_default="0"),
    Column("mau", BigInteger, nullable=False, server_default="0"),
    Column("new_users", BigInteger, nullable=False, server_default="0"),
    Column("events", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("project_id", "day"),
)

# A person's first and last active days: new users, cohorts, unbounded retention.
persons = Table(
    "persons",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    PrimaryKeyConstraint("project_id", "person_id"),
    Index(None, "project_id", "first_day"),
)

# Per-project pipeline counters for /v1/status and freshness.
project_stats = Table(
    "project_stats",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("events_processed", BigInteger, nullable=False, server_default="0"),
    Column("duplicates_dropped", BigInteger, nullable=False, server_default="0"),
    Column("rejected", BigInteger, nullable=False, server_default="0"),
    Column("processed_through", DateTime(timezone=True)),
)

# Events refused by ingest validation (or unreadable by the consumer), with their reason.
rejected_events = Table(
    "rejected_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", Integer),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("message_id", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False),
    Index(None, "project_id", "id"),
)

# Consumer positions, written in the same transaction as the aggregates they produced. `epoch`
# is bumped by each new owner of the partition; a write carrying an older epoch is fenced off.
consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("consumer_group", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger),  # NULL: owned, nothing applied yet
    Column("epoch", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("consumer_group", "topic", "partition"),
)

# Every deduplicated active event (track/page/screen) under the distinct id that did it (userId,
# else anonymousId), its time rounded to the second. Append-only: a merge changes `identities`,
# never these rows. Sessions, paths and the live view are computed from it.
active_events = Table(
    "active_events",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("distinct_id", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("event", Text, nullable=False),
    # properties over context.traits (docs/funnels.md); NULL when both are empty
    Column("props", JSONB),
    Index(None, "project_id", "distinct_id", "ts"),
    Index(None, "project_id", "ts"),
)

# A person's sessions (SPEC §4): `day` is the start's date in the project's timezone. A chain is
# a run of sessions with no gap over the project's session timeout between them (only the cap
# split it); its bounds tell the metrics service how far a late event's effect can reach.
sessions = Table(
    "sessions",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("start_ts", DateTime(timezone=True), nullable=False),
    Column("end_ts", DateTime(timezone=True), nullable=False),
    Column("events", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("chain_start", DateTime(timezone=True), nullable=False),
    Column("chain_end", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("project_id", "person_id", "start_ts"),
)

# Activity by a breakdown value (PULSE_BREAKDOWN_KEYS): the value an active event carried in its
# properties, else in context.traits (the person's traits as the SDK knew them at the event), else
# its person's identify traits as of it; the events that carried none under '' (the splits' null
# group, services/common/values.py; migration 0027).
person_day_values = Table(
    "person_day_values",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("events", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "key", "value", "day", "person_id"),
    # a person's rows (merges, trait recomputations), a person-day's (the sessions split's
    # trigger, migration 0020) and a person's days near new ones (the activity split's, 0021)
    Index(None, "project_id", "person_id", "day"),
)

# Funnels defined through the gateway (docs/funnels.md). `definition` is the FunnelDefinition
# (services/common/funnels.py) as JSON. The metrics service walks the archive to fill a new one:
# `backfill` is 'running' until then, `backfill_cursor` the last person done, for a restart.
funnels = Table(
    "funnels",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("backfill", Text, nullable=False, server_default="running"),
    Column("backfill_cursor", Text),
    Column("backfill_done_at", DateTime(timezone=True)),
    CheckConstraint("backfill IN ('running', 'complete')", name="backfill"),
)

# Per funnel, person and entry day: the best attempt opened that day (docs/funnels.md) — its
# depth, the seconds from each step to the next (seconds[1] is 0), and the step-1 event's props
# for breakdowns. A person's voided attempts leave no row.
funnel_attempts = Table(
    "funnel_attempts",
    metadata,
    Column("funnel_id", Integer, ForeignKey("funnels.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("entry_ts", DateTime(timezone=True), nullable=False),
    Column("depth", SmallInteger, nullable=False),
    Column("seconds", ARRAY(Integer), nullable=False),
    Column("props", JSONB),
    PrimaryKeyConstraint("funnel_id", "person_id", "day"),
    Index(None, "funnel_id", "day", "person_id"),
)

# Retention rollups (services/metrics/aggregates/retention.py), kept exact by deltas in each batch:
# persons of cohort `cohort` (their first active day) active on `day`...
retention_days = Table(
    "retention_days",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("cohort", Date, nullable=False),
    Column("day", Date, nullable=False),
    Column("persons", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "cohort", "day"),
)

# ...and persons of cohort `cohort` whose last active day is `last_day` (unbounded retention).
retention_spans = Table(
    "retention_spans",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("cohort", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("persons", Integer, nullable=False),
    PrimaryKeyConstraint("project_id", "cohort", "last_day"),
)

# Traits set by identify calls, every key (not only PULSE_BREAKDOWN_KEYS: a key tracked later is
# backfilled from them, see breakdown_keys), under the distinct id that sent them (merges never
# rewrite it), at the event time rounded to the second like the archive. An active event without
# the key in its own properties or SDK traits takes its person's latest value at or before it
# (services/metrics/aggregates/traits.py).
trait_changes = Table(
    "trait_changes",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("distinct_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("project_id", "distinct_id", "key", "ts"),
)

# The breakdown keys a project's person_day_values are kept for; every batch reads them. The
# metrics service adds its PULSE_BREAKDOWN_KEYS to every project when it starts (`configured`;
# it drops the configured keys no longer listed, with their person_day_values), and to a project
# created later on its first batch. A project adds keys of its own by POST /v1/breakdowns and
# removes them by DELETE (`configured` false). A key starts 'running' when events of the project
# were processed before (a walk then fills in their values, services/metrics/
# breakdown_backfill.py, `backfill_cursor` the last person done), else 'complete'.
breakdown_keys = Table(
    "breakdown_keys",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("backfill", Text, nullable=False, server_default="running"),
    Column("backfill_cursor", Text),
    Column("backfill_done_at", DateTime(timezone=True)),
    Column("configured", Boolean, nullable=False, server_default=true()),
    UniqueConstraint("project_id", "key"),
    CheckConstraint("backfill IN ('running', 'complete')", name="backfill"),
)
