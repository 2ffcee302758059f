"""Reads through the gateway against DuckDB answering the same questions ad hoc (issues 5 and 6).

Data: a deterministic product (seed `SEED`): `PULSE_BENCH_READS_PERSONS` persons (default
100,000, about 1M events; the issues' scale is 1,000,000 persons, about 10M events) arriving over
90 days. A person comes back on a few days and churns (each active day is their last with
probability `CHURN`); a day holds one to three visits of a few events minutes apart, starting at
"Home" (a page view) and wandering through "Search", "Product Viewed", "Added To Cart" and "Order
Completed". Some persons sign up ("Signed Up", carrying `plan`, then identify: their anonymous
device merges into their user id); some of those later log in from a second device (another
identify). "Order Completed" carries `plan` too.

Pulse side: the events go through the real `Store.apply` (services/metrics/store.py) in batches of
`PULSE_BATCH_MAX_EVENTS` (as the service applies a backlog), in time order, into the bench
PostgreSQL, with one funnel (Home -> Added To Cart -> Order Completed, ordered, 7-day window)
defined BEFORE the load, so it is maintained as events stream in. Then the database is vacuumed and
analyzed (what autovacuum does to a settled database; untimed), the same funnel is defined again and
backfilled with `backfill_pending` (timed), and its `funnel_attempts` rows and step counts must
equal the streamed funnel's. A real `pulse-gateway` process then answers ~20 requests per endpoint,
one after the other, each for a different range (`to` moves a day each time, `from` = `to` - 29: 30
cohorts / entry days / days), timed at the client (httpx, one keep-alive connection, so ~1 ms of
client time is included): the gateway caches whole responses per URL while the project's counters
are unchanged (services/gateway/caching.py), so no answer comes from its cache. Two requests per
endpoint with other ranges warm it up first.

DuckDB side (duckdb from PyPI, same machine, its default threads: both cores): the same active
events, each with its person's FINAL id already resolved (Pulse's label, the smallest distinct id
of the person) — identity resolution, which Pulse does incrementally as identify calls arrive,
DuckDB gets for free — in an in-memory table loaded from a temporary CSV file beforehand
(loading is untimed, which also favours DuckDB). Each question is an ad-hoc SQL over that table
for the first measured range, timed as the best of 3 runs (result fetched into Python):
retention (cohort = first active day, `on` mode, 30 cohorts x days 0..30), the funnel (per
person the deepest step any step-1 event in the range leads to, steps in time order within the
window, then the earliest such entry; medians of seconds to convert), sessions per day (30
minutes without an event ends a session; the 24 h cap is left out: no chain in this data lasts
that long, and the cross-check would fail if one did; events are read from a day before the
range on, which also favours DuckDB), the same sessions split by plan (`?breakdown=plan`: under
each plan the person's events carried on the session's day), paths (depth 3 after the first
"Home", consecutive repeats collapsed, persons per edge, 20 edges per step: the read-time SQL
Pulse itself ran before it kept edge counts, migration 0013), the lifecycle per day (new,
returning, resurrecting, dormant: each person's first day over all their events, their active
days of the range and the day before it), the same split by plan (each person's own status under
every plan they carried that day, dormant under the plans of the day before) and the stickiness
histogram of the ISO weeks the range overlaps (persons by their number of active days in each),
and the same split by plan (per plan, persons by the number of days of each week they were
active carrying it: the rollup `stickiness_value_periods`, migration 0025).
Every DuckDB answer must equal the gateway's for that range (asserted), so both compute the
same thing.

Figures (ratio = value / baseline):
- `<read>_gateway_p95_vs_duckdb`: value 1 / gateway p95, baseline 1 / DuckDB's time, both in
  answers per second, so the ratio is "the gateway is N times faster". Goals: retention >= 30,
  funnel >= 10 (issue 5), sessions and paths >= 10 (issue 6); none for the splits and lifecycle.
  The lifecycle split stores the periods a read computed (migration 0028); its ranges move a day
  at a time, so each read computes its new last day and reuses the others, as a dashboard's
  daily reads do. `lifecycle_by_plan_cold_...` empties that cache before each request (untimed):
  every read computes its 30 days, as the first read of a range does.
- `funnel_backfill_seconds_vs_duckdb_all_days`: the backfill's seconds against DuckDB's
  seconds for the same funnel over every entry day of the data: the backfill writes each person's
  best attempt of each entry day, which is the whole history's answer, so the ratio says how many
  ad-hoc answers a backfill costs (lower is better; no goal set).
- `metrics_load_events_per_s_vs_copy`: events/s through `Store.apply` (dedup, merges, activity,
  archive, sessions, paths, the funnel) against a bare asyncpg COPY of the same rows into a temp
  table.
The units name the scale. Everything runs on 127.0.0.1 and is bounded by the data's size.

Full scale (issue 5): `PULSE_BENCH_READS_PERSONS=1000000 .venv/bin/python -m bench
reads_vs_duckdb`. Budget an hour to 75 minutes on a 2-core machine, mostly the load (~5,500
events/s at the default scale, 1M events in ~3 minutes; the rate falls as the tables grow, to
about 4,000 events/s over the 10M, 43 minutes) and the funnel backfill (7 to 12 minutes), and a
few GB of memory: every generated event is kept until the load and DuckDB's table are done. At
the default scale the whole module runs in about 5 minutes.
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import duckdb
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.dashboard import BIN, process
from bench.harness import Figure
from deploy.local.stack import free_port
from services.common.db import create_pool
from services.common.events import EventRecord
from services.common.funnels import FunnelDefinition, Step
from services.common.settings import MetricsSettings
from services.metrics.funnels.backfill import backfill_pending
from services.metrics.gc_tuning import gc_tuned
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store

PERSONS = int(os.environ.get("PULSE_BENCH_READS_PERSONS", "100000"))
SEED = 5
DAYS = 90
START = datetime(2026, 6, 1, tzinfo=UTC)
CHURN = 0.4
BATCH = MetricsSettings().batch_max_events
SPAN_DAYS = 30  # cohorts, funnel entry days, session days and path days per request
LENGTH = 30  # retention days after the cohort's
FIRST_TO = 40  # the first measured range ends on day 40: its cohorts have 30 days after them
REQUESTS = 20
WARMUP = 2
ROUNDS = 3
PATHS_START = "Home"
PATHS_DEPTH = 3
PATHS_LIMIT = 20
FUNNEL = FunnelDefinition(
    name="Home to order",
    steps=[Step(event="Home"), Step(event="Added To Cart"), Step(event="Order Completed")],
    window_seconds=7 * 86400,
)
# Where a visit goes next: the event names and their weights.
NEXT: dict[str, tuple[list[str], list[float]]] = {
    "Home": (["Search", "Product Viewed", "Home"], [0.4, 0.45, 0.15]),
    "Search": (["Product Viewed", "Search", "Home"], [0.7, 0.2, 0.1]),
    "Product Viewed": (
        ["Added To Cart", "Product Viewed", "Search", "Home"],
        [0.3, 0.4, 0.2, 0.1],
    ),
    "Added To Cart": (["Order Completed", "Product Viewed", "Home"], [0.45, 0.4, 0.15]),
    "Order Completed": (["Home"], [1.0]),
    "Signed Up": (["Home", "Product Viewed"], [0.5, 0.5]),
}
ADMIN = "bench-reads-admin-token"


class Raw(NamedTuple):
    """One generated event, before it becomes an EventRecord (cheap to keep 10M of)."""

    ts: int  # epoch seconds: whole seconds, so Pulse's rounding to the second changes nothing
    kind: str  # page, track or identify
    name: str | None
    person: int
    user: str | None
    device: str
    plan: str | None


def _label(person: int) -> str:
    """Pulse's person label: the smallest distinct id of the person (`d-…-1` < `d-…-2` < `u-…`)."""
    return f"d-{person:07d}-1"


def _person(n: int, rng: random.Random, out: list[Raw]) -> None:
    """Append person n's events: anonymous visits, maybe a sign-up, maybe a second device."""
    origin = int(START.timestamp())
    device, user = _label(n), f"u-{n:07d}"
    signs_up = rng.random() < 0.45
    plan = "pro" if rng.random() < 0.2 else "free"
    known: str | None = None  # the user id, once identified on the device in use
    signed_up = False
    day = rng.randrange(DAYS)
    active_days = 0
    while day < DAYS:
        active_days += 1
        if known and rng.random() < 0.2:
            device = f"d-{n:07d}-2"  # a second device: anonymous until the login below
            known = None
        at = origin + day * 86400 + rng.randrange(6 * 3600, 20 * 3600)
        for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.1)):
            name = "Home" if rng.random() < 0.9 else "Search"
            events = 1
            while events < 12 and rng.random() < 0.65:
                events += 1
            for i in range(events):
                if signs_up and not signed_up and active_days <= 2 and i == 1:
                    known, signed_up = user, True
                    out.append(Raw(at, "identify", None, n, user, device, None))
                    out.append(Raw(at, "track", "Signed Up", n, user, device, plan))
                    at += rng.randint(20, 300)
                    name = rng.choices(*NEXT["Signed Up"])[0]
                kind = "page" if name == "Home" else "track"
                carried = plan if name == "Order Completed" and known else None
                out.append(Raw(at, kind, name, n, known, device, carried))
                at += rng.randint(20, 600)
                name = rng.choices(*NEXT[name])[0]
            if device.endswith("-2") and known is None:
                known = user  # logged in on the second device
                out.append(Raw(at, "identify", None, n, user, device, None))
            # Most visits are more than 30 minutes apart; some are not and make one session.
            at += rng.randint(31 * 60, 4 * 3600) if rng.random() < 0.85 else rng.randint(300, 1500)
        if rng.random() < CHURN:
            return
        day += 1 + int(rng.expovariate(1 / 4))


def generate() -> list[Raw]:
    rng = random.Random(SEED)
    out: list[Raw] = []
    for n in range(PERSONS):
        _person(n, rng, out)
    out.sort(key=lambda r: r.ts)  # stable: a person's identify stays before their Signed Up
    return out


def _record(project_id: int, i: int, raw: Raw, received: datetime) -> EventRecord:
    return EventRecord(
        project_id=project_id,
        message_id=f"reads-{i}",
        type=raw.kind,  # type: ignore[arg-type]
        event=raw.name,
        user_id=raw.user,
        anonymous_id=raw.device,
        timestamp=datetime.fromtimestamp(raw.ts, UTC),
        received_at=received,
        properties={"plan": raw.plan} if raw.plan else {},
    )


def _day(offset: int) -> date:
    return (START + timedelta(days=offset)).date()


def ranges(first: int, count: int) -> list[tuple[date, date]]:
    """(from, to) of `count` 30-day ranges whose `to` moves a day at a time from day `first`."""
    return [(_day(first + i - SPAN_DAYS + 1), _day(first + i)) for i in range(count)]


# ---------------------------------------------------------------- Pulse: load, backfill


async def _new_project(pool: asyncpg.Pool) -> tuple[int, str]:
    tag = uuid.uuid4().hex
    row = await pool.fetchrow(
        "INSERT INTO projects (name, timezone, write_key, read_key) "
        "VALUES ($1, 'UTC', $2, $3) RETURNING id, read_key",
        f"bench-reads-{tag}",
        f"pw_{tag}",
        f"pr_{tag}",
    )
    assert row is not None
    return int(row["id"]), str(row["read_key"])


async def _define_funnel(pool: asyncpg.Pool, project_id: int, backfill: str) -> int:
    return int(
        await pool.fetchval(
            "INSERT INTO funnels (project_id, name, definition, backfill) "
            "VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
            project_id,
            FUNNEL.name,
            FUNNEL.model_dump_json(),
            backfill,
        )
    )


async def _load(pool: asyncpg.Pool, project_id: int, raws: list[Raw]) -> float:
    """Seconds spent in Store.apply (building the EventRecords is not counted)."""
    store = Store(pool, f"bench-reads-{uuid.uuid4().hex}", MetricsSettings().breakdown_key_list)
    received = datetime.now(UTC)
    spent = 0.0
    step = max(1, len(raws) // BATCH // 10) * BATCH
    for i in range(0, len(raws), BATCH):
        batch = [_record(project_id, i + j, r, received) for j, r in enumerate(raws[i : i + BATCH])]
        started = time.perf_counter()
        await store.apply(ParsedBatch(events=batch), {})
        spent += time.perf_counter() - started
        if (i + BATCH) % step == 0:
            print(
                f"  loaded {i + len(batch):,} events, {(i + len(batch)) / spent:,.0f}/s", flush=True
            )
    return spent


async def _copy_seconds(pool: asyncpg.Pool, project_id: int, raws: list[Raw]) -> float:
    """The baseline: a bare COPY of the same events (as archive rows) into a temp table."""
    rows = [
        (
            project_id,
            r.user or r.device,
            datetime.fromtimestamp(r.ts, UTC),
            r.name,
            f'{{"plan": "{r.plan}"}}' if r.plan else None,
        )
        for r in raws
    ]
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TEMP TABLE bench_reads_copy (project_id int, distinct_id text, "
            "ts timestamptz, event text, props text)"
        )
        try:
            started = time.perf_counter()
            await conn.copy_records_to_table("bench_reads_copy", records=rows)
            return time.perf_counter() - started
        finally:
            await conn.execute("DROP TABLE bench_reads_copy")


async def _vacuum(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def _rows_differ(*tables: tuple[str, str]) -> str:
    """Rows that funnels $1 and $2 do not share, counted with multiplicity, over each
    (columns, table): both halves of a symmetric difference per table, summed."""

    def rows(columns: str, table: str, funnel: str) -> str:
        return f"SELECT {columns} FROM {table} WHERE funnel_id = {funnel}"

    halves = [
        f"(SELECT count(*) FROM ({rows(columns, table, mine)}"
        f" EXCEPT ALL {rows(columns, table, theirs)}) AS d)"
        for columns, table in tables
        for mine, theirs in (("$1", "$2"), ("$2", "$1"))
    ]
    return "SELECT " + " + ".join(halves)


ATTEMPTS_DIFFER = _rows_differ(
    ("person_id, day, entry_ts, depth, seconds, props::text", "funnel_attempts")
)

# The same for the step counts the reads use (kept batch by batch for the streamed funnel,
# written person by person by the backfill).
COUNTS_DIFFER = _rows_differ(
    ("step, day, prior_day, deeper_day, bucket, persons", "funnel_step_buckets"),
    ("step, bucket, day, prior_day, deeper_day, seconds, persons", "funnel_step_seconds"),
)


@dataclass
class Loaded:
    project_id: int
    read_key: str
    streamed_funnel: int
    backfilled_funnel: int
    events: int
    load_seconds: float
    copy_seconds: float
    backfill_seconds: float


async def load_pulse(url: str, raws: list[Raw]) -> Loaded:
    pool = await create_pool(url)
    try:
        project_id, read_key = await _new_project(pool)
        streamed = await _define_funnel(pool, project_id, "complete")
        load_seconds = await _load(pool, project_id, raws)
        copy_seconds = await _copy_seconds(pool, project_id, raws)
        await _vacuum(url)
        # Another benchmark's unfinished funnel must not be walked inside our timing.
        await backfill_pending(pool)
        backfilled = await _define_funnel(pool, project_id, "running")
        started = time.perf_counter()
        await backfill_pending(pool)
        backfill_seconds = time.perf_counter() - started
        differ = await pool.fetchval(ATTEMPTS_DIFFER, streamed, backfilled)
        assert differ == 0, f"the backfilled funnel differs from the streamed one in {differ} rows"
        differ = await pool.fetchval(COUNTS_DIFFER, streamed, backfilled)
        assert differ == 0, f"the backfilled step counts differ from the streamed in {differ} rows"
        await _vacuum(url)
        return Loaded(
            project_id,
            read_key,
            streamed,
            backfilled,
            len(raws),
            load_seconds,
            copy_seconds,
            backfill_seconds,
        )
    finally:
        await pool.close()


# ---------------------------------------------------------------- DuckDB: the same questions

RETENTION = """
WITH pd AS (SELECT DISTINCT person, CAST(ts AS DATE) AS day FROM events),
firsts AS (
    SELECT person, min(day) AS cohort FROM pd GROUP BY person
    HAVING min(day) BETWEEN $lo AND $hi
)
SELECT f.cohort, date_diff('day', f.cohort, pd.day) AS k, count(*) AS persons
FROM firsts f JOIN pd USING (person)
WHERE pd.day <= f.cohort + CAST($length AS INTEGER)
GROUP BY ALL
"""

# Ordered, three steps: an attempt's step 2 is the earliest step-2 event in [t1, t1 + W] (any
# later step 3 also follows it), step 3 the earliest step-3 event in [T2, t1 + W]. Per person
# the deepest attempt, then the earliest entry (docs/funnels.md "Counting").
FUNNEL_SQL = """
WITH s1 AS (
    SELECT person, ts AS t1 FROM events
    WHERE event = $e1 AND ts >= CAST($lo AS TIMESTAMP) AND ts < CAST($hi AS TIMESTAMP)
),
s2 AS (SELECT person, ts FROM events WHERE event = $e2),
s3 AS (SELECT person, ts FROM events WHERE event = $e3),
a2 AS (
    SELECT s1.person, s1.t1, min(s2.ts) AS t2
    FROM s1 LEFT JOIN s2
      ON s2.person = s1.person AND s2.ts >= s1.t1 AND s2.ts <= s1.t1 + to_seconds($w)
    GROUP BY ALL
),
a3 AS (
    SELECT a2.person, a2.t1, a2.t2, min(s3.ts) AS t3
    FROM a2 LEFT JOIN s3
      ON s3.person = a2.person AND s3.ts >= a2.t2 AND s3.ts <= a2.t1 + to_seconds($w)
    GROUP BY ALL
),
best AS (
    SELECT *, CASE WHEN t3 IS NOT NULL THEN 3 WHEN t2 IS NOT NULL THEN 2 ELSE 1 END AS depth
    FROM a3
    QUALIFY row_number() OVER (PARTITION BY person ORDER BY depth DESC, t1) = 1
)
SELECT count(*) AS users_1,
       count(*) FILTER (WHERE depth >= 2) AS users_2,
       count(*) FILTER (WHERE depth >= 3) AS users_3,
       quantile_cont(date_diff('second', t1, t2), 0.5) FILTER (WHERE depth >= 2) AS median_2,
       quantile_cont(date_diff('second', t2, t3), 0.5) FILTER (WHERE depth >= 3) AS median_3
FROM best
"""

# The range's sessions (from a day before it on, so that a session starting in it is whole):
# 30 minutes without an event ends one.
SESSIONS_CTE = """
WITH e AS (
    SELECT person, ts,
           coalesce(date_diff('second', lag(ts) OVER (PARTITION BY person ORDER BY ts), ts)
                    > 1800, true) AS opens
    FROM events
    WHERE ts >= CAST($lo AS TIMESTAMP) - INTERVAL 1 DAY
      AND ts < CAST($hi AS TIMESTAMP) + INTERVAL 1 DAY
),
numbered AS (
    SELECT person, ts,
           sum(CAST(opens AS INTEGER)) OVER (PARTITION BY person ORDER BY ts
                                             ROWS UNBOUNDED PRECEDING) AS sid
    FROM e
),
s AS (
    SELECT person, sid, min(ts) AS start_ts, count(*) AS n,
           date_diff('second', min(ts), max(ts)) AS seconds
    FROM numbered GROUP BY person, sid
)"""

SESSIONS_SQL = (
    SESSIONS_CTE
    + """
SELECT CAST(start_ts AS DATE) AS day, count(*) AS sessions, sum(seconds) AS seconds,
       sum(n) AS events, count(*) FILTER (WHERE n = 1) AS bounces,
       quantile_cont(seconds, 0.5) AS median
FROM s
WHERE start_ts >= CAST($lo AS TIMESTAMP) AND start_ts < CAST($hi AS TIMESTAMP)
GROUP BY 1 ORDER BY 1
"""
)

# The same sessions under each plan their person's events carried on the session's day (the
# events' own `plan`: this data sets it on no identify), as /v1/sessions?breakdown=plan counts.
SESSIONS_BY_PLAN_SQL = (
    SESSIONS_CTE
    + """,
carried AS (
    SELECT DISTINCT person, CAST(ts AS DATE) AS day, plan FROM events
    WHERE ts >= CAST($lo AS TIMESTAMP) AND ts < CAST($hi AS TIMESTAMP)
)
SELECT c.plan, CAST(s.start_ts AS DATE) AS day, count(*) AS sessions, sum(s.seconds) AS seconds,
       sum(s.n) AS events, count(*) FILTER (WHERE s.n = 1) AS bounces,
       quantile_cont(s.seconds, 0.5) AS median
FROM s JOIN carried c ON c.person = s.person AND c.day = CAST(s.start_ts AS DATE)
WHERE s.start_ts >= CAST($lo AS TIMESTAMP) AND s.start_ts < CAST($hi AS TIMESTAMP)
GROUP BY 1, 2 ORDER BY 1, 2
"""
)

# DAU, WAU and MAU per plan (persons who carried it on the day / within the 7 / 30 days ending
# there) and the events that carried it, as /v1/activity?breakdown=plan counts them; a NULL plan
# is the null group, as in every split by plan below.
ACTIVITY_BY_PLAN_SQL = """
WITH carried AS (
    SELECT person, CAST(ts AS DATE) AS day, plan, count(*) AS n FROM events
    WHERE ts >= CAST($lo AS TIMESTAMP) - INTERVAL 29 DAY
      AND ts < CAST($hi AS TIMESTAMP)
    GROUP BY 1, 2, 3
),
days AS (
    SELECT CAST(x AS DATE) AS x
    FROM range(CAST($lo AS TIMESTAMP), CAST($hi AS TIMESTAMP), INTERVAL 1 DAY) AS t(x)
)
SELECT c.plan, d.x, count(*) FILTER (WHERE c.day = d.x) AS dau,
       count(DISTINCT c.person) FILTER (WHERE c.day > d.x - 7) AS wau,
       count(DISTINCT c.person) AS mau, coalesce(sum(c.n) FILTER (WHERE c.day = d.x), 0) AS events
FROM days d JOIN carried c ON c.day BETWEEN d.x - 29 AND d.x
GROUP BY 1, 2 ORDER BY 1, 2
"""

# Lifecycle per day (SPEC §4): a person's first day over all their events, their active days
# of the range and the day before it; the classes counted per day of the range.
LIFECYCLE_SQL = """
WITH firsts AS (SELECT person, min(CAST(ts AS DATE)) AS first_day FROM events GROUP BY 1),
active AS (
    SELECT DISTINCT person, CAST(ts AS DATE) AS day FROM events
    WHERE ts >= CAST($lo AS TIMESTAMP) - INTERVAL 1 DAY AND ts < CAST($hi AS TIMESTAMP)
),
days AS (
    SELECT CAST(x AS DATE) AS x
    FROM range(CAST($lo AS TIMESTAMP), CAST($hi AS TIMESTAMP), INTERVAL 1 DAY) AS t(x)
),
now_active AS (
    SELECT d.x, a.person, f.first_day,
           EXISTS (SELECT 1 FROM active b WHERE b.person = a.person AND b.day = d.x - 1) AS was
    FROM days d JOIN active a ON a.day = d.x JOIN firsts f USING (person)
),
counted AS (
    SELECT x, count(*) FILTER (WHERE first_day = x) AS new,
           count(*) FILTER (WHERE was) AS returning,
           count(*) FILTER (WHERE NOT was AND first_day < x) AS resurrecting
    FROM now_active GROUP BY x
),
gone AS (
    SELECT d.x, count(*) AS dormant FROM days d JOIN active b ON b.day = d.x - 1
    WHERE NOT EXISTS (SELECT 1 FROM active a WHERE a.person = b.person AND a.day = d.x)
    GROUP BY d.x
)
SELECT d.x, coalesce(c.new, 0), coalesce(c.returning, 0), coalesce(c.resurrecting, 0),
       -coalesce(g.dormant, 0)
FROM days d LEFT JOIN counted c USING (x) LEFT JOIN gone g USING (x)
ORDER BY d.x
"""

# The same split by plan (`/v1/lifecycle?breakdown=plan`): each person's own status, counted under
# every plan their events carried that day; dormant under the plans they carried the day before.
LIFECYCLE_BY_PLAN_SQL = """
WITH firsts AS (SELECT person, min(CAST(ts AS DATE)) AS first_day FROM events GROUP BY 1),
carried AS (
    SELECT DISTINCT plan, person, CAST(ts AS DATE) AS day FROM events
    WHERE ts >= CAST($lo AS TIMESTAMP) - INTERVAL 1 DAY AND ts < CAST($hi AS TIMESTAMP)
),
active AS (SELECT DISTINCT person, day FROM carried),
present AS (
    SELECT c.plan, c.day AS x, f.first_day = c.day AS new,
           EXISTS (SELECT 1 FROM active b WHERE b.person = c.person AND b.day = c.day - 1) AS was
    FROM carried c JOIN firsts f USING (person)
    WHERE c.day >= CAST($lo AS DATE)
),
gone AS (
    SELECT c.plan, c.day + 1 AS x FROM carried c
    WHERE c.day + 1 < CAST($hi AS DATE)
      AND NOT EXISTS (SELECT 1 FROM active a WHERE a.person = c.person AND a.day = c.day + 1)
)
SELECT plan, x, count(*) FILTER (WHERE new), count(*) FILTER (WHERE was),
       count(*) FILTER (WHERE NOT new AND NOT was), 0
FROM present GROUP BY 1, 2
UNION ALL
SELECT plan, x, 0, 0, 0, count(*) FROM gone GROUP BY 1, 2
"""

# The stickiness histogram per ISO week (SPEC §4): persons by their number of active days in each
# week overlapping the range (whole weeks, as the read reports them).
STICKINESS_SQL = """
WITH per_person AS (
    SELECT date_trunc('week', CAST(ts AS DATE)) AS period, person,
           count(DISTINCT CAST(ts AS DATE)) AS days
    FROM events
    WHERE ts >= date_trunc('week', CAST($lo AS TIMESTAMP))
      AND ts < date_trunc('week', CAST($hi AS TIMESTAMP) - INTERVAL 1 DAY) + INTERVAL 7 DAY
    GROUP BY 1, 2
)
SELECT CAST(period AS DATE), days, count(*) FROM per_person GROUP BY 1, 2 ORDER BY 1, 2
"""

# The same split by plan: per value, persons by the number of days of each week they were active
# carrying it (the read's rule, services/gateway/queries/stickiness.py).
STICKINESS_BY_PLAN_SQL = """
WITH per_person AS (
    SELECT plan, date_trunc('week', CAST(ts AS DATE)) AS period, person,
           count(DISTINCT CAST(ts AS DATE)) AS days
    FROM events
    WHERE ts >= date_trunc('week', CAST($lo AS TIMESTAMP))
      AND ts < date_trunc('week', CAST($hi AS TIMESTAMP) - INTERVAL 1 DAY) + INTERVAL 7 DAY
    GROUP BY 1, 2, 3
)
SELECT plan, CAST(period AS DATE), days, count(*) FROM per_person GROUP BY 1, 2, 3
"""

PATHS_SQL = """
WITH ev AS (
    SELECT person, ts, event, lag(event) OVER (PARTITION BY person ORDER BY ts, event) AS prev
    FROM events WHERE ts >= CAST($lo AS TIMESTAMP) AND ts < CAST($hi AS TIMESTAMP)
),
steps AS (
    SELECT person, event, row_number() OVER (PARTITION BY person ORDER BY ts, event) AS n
    FROM ev WHERE prev IS DISTINCT FROM event
),
anchor AS (SELECT person, min(n) AS n0 FROM steps WHERE event = $anchor GROUP BY person),
near AS (
    SELECT s.person, s.event, s.n - a.n0 AS k
    FROM steps s JOIN anchor a USING (person)
    WHERE s.n BETWEEN a.n0 AND a.n0 + $depth
),
edges AS (
    SELECT far.k AS step, close.event AS source, far.event AS target, count(*) AS persons
    FROM near far JOIN near close ON close.person = far.person AND close.k = far.k - 1
    GROUP BY ALL
)
SELECT step, source, target, persons FROM edges
QUALIFY row_number() OVER (PARTITION BY step ORDER BY persons DESC, source, target) <= $limit
ORDER BY step, persons DESC, source, target
"""


def load_duckdb(raws: list[Raw]) -> duckdb.DuckDBPyConnection:
    """An in-memory table of the active events with resolved persons, from a temporary CSV."""
    db = duckdb.connect()
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as folder:
        path = Path(folder) / "events.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerows(
                (_label(r.person), r.ts, r.name, r.plan or "") for r in raws if r.kind != "identify"
            )
        db.execute(
            "CREATE TABLE events AS "
            "SELECT person, make_timestamp(epoch * 1000000) AS ts, event, plan "
            "FROM read_csv($path, header = false, columns = "
            "{'person': 'VARCHAR', 'epoch': 'BIGINT', 'event': 'VARCHAR', 'plan': 'VARCHAR'})",
            {"path": str(path)},
        )
    return db


def best_of(rounds: int, query: Callable[[], Any]) -> tuple[float, Any]:
    """The shortest of `rounds` runs, and the answer of the first."""
    times, answer = [], None
    for i in range(rounds):
        started = time.perf_counter()
        result = query()
        times.append(time.perf_counter() - started)
        if i == 0:
            answer = result
    return min(times), answer


def _bounds(span: tuple[date, date]) -> dict[str, datetime]:
    """[midnight of the first day, midnight after the last) as naive UTC, as DuckDB holds it."""
    lo = datetime.combine(span[0], datetime.min.time())
    return {"lo": lo, "hi": lo + timedelta(days=(span[1] - span[0]).days + 1)}


def duck_retention(db: duckdb.DuckDBPyConnection, span: tuple[date, date]) -> list[dict[str, Any]]:
    rows = db.execute(RETENTION, {"lo": span[0], "hi": span[1], "length": LENGTH}).fetchall()
    retained: dict[date, list[int]] = {}
    for cohort, k, persons in rows:
        retained.setdefault(cohort, [0] * (LENGTH + 1))[k] = persons
    out = []
    for offset in range((span[1] - span[0]).days + 1):
        day = span[0] + timedelta(days=offset)
        counts = retained.get(day, [0] * (LENGTH + 1))
        out.append({"date": str(day), "size": counts[0], "retained": counts})
    return out


def duck_funnel(db: duckdb.DuckDBPyConnection, span: tuple[date, date]) -> list[dict[str, Any]]:
    params = {
        **_bounds(span),
        "e1": FUNNEL.steps[0].event,
        "e2": FUNNEL.steps[1].event,
        "e3": FUNNEL.steps[2].event,
        "w": FUNNEL.window_seconds,
    }
    row = db.execute(FUNNEL_SQL, params).fetchone()
    assert row is not None
    users, medians = row[:3], (None, *row[3:])
    return [
        {
            "users": users[i],
            "median_seconds_to_convert": round(float(medians[i]), 3)
            if i and users[i] and medians[i] is not None
            else None,
        }
        for i in range(3)
    ]


def _sessions_days(
    span: tuple[date, date], rows: dict[date, tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """/v1/sessions' days from (day, sessions, seconds, events, bounces, median) rows."""
    out = []
    for offset in range((span[1] - span[0]).days + 1):
        day = span[0] + timedelta(days=offset)
        _, n, seconds, events, bounces, median = rows.get(day, (day, 0, 0, 0, 0, None))
        out.append(
            {
                "date": str(day),
                "sessions": n,
                "median_seconds": round(median, 3) if n else None,
                "mean_seconds": round(int(seconds) / n, 3) if n else None,
                "events_per_session": round(int(events) / n, 3) if n else None,
                "bounce_rate": round(bounces / n, 4) if n else None,
            }
        )
    return out


def duck_sessions(db: duckdb.DuckDBPyConnection, span: tuple[date, date]) -> list[dict[str, Any]]:
    rows = {r[0]: r for r in db.execute(SESSIONS_SQL, _bounds(span)).fetchall()}
    return _sessions_days(span, rows)


def _null_last(plans: Collection[str | None]) -> list[str | None]:
    """The plans in order, then None (the null group), as the gateway lists a split."""
    return [*sorted(p for p in plans if p is not None), *([None] if None in plans else [])]


def duck_sessions_by_plan(
    db: duckdb.DuckDBPyConnection, span: tuple[date, date]
) -> list[dict[str, Any]]:
    by_plan: dict[str | None, dict[date, tuple[Any, ...]]] = defaultdict(dict)
    for plan, *row in db.execute(SESSIONS_BY_PLAN_SQL, _bounds(span)).fetchall():
        by_plan[plan][row[0]] = tuple(row)
    return [
        {"value": plan, "days": _sessions_days(span, by_plan[plan])} for plan in _null_last(by_plan)
    ]


def duck_activity_by_plan(
    db: duckdb.DuckDBPyConnection, span: tuple[date, date]
) -> list[dict[str, Any]]:
    by_plan: dict[str | None, dict[date, tuple[int, ...]]] = defaultdict(dict)
    for plan, day, *counts in db.execute(ACTIVITY_BY_PLAN_SQL, _bounds(span)).fetchall():
        by_plan[plan][day] = tuple(counts)
    days = [span[0] + timedelta(days=i) for i in range((span[1] - span[0]).days + 1)]
    fields = ("dau", "wau", "mau", "events")
    return [
        {
            "value": plan,
            "days": [
                {
                    "date": str(d),
                    **dict(zip(fields, by_plan[plan].get(d, (0, 0, 0, 0)), strict=True)),
                }
                for d in days
            ],
        }
        for plan in _null_last(by_plan)
    ]


def duck_lifecycle(db: duckdb.DuckDBPyConnection, span: tuple[date, date]) -> list[dict[str, Any]]:
    fields = ("start", "new", "returning", "resurrecting", "dormant")
    return [
        dict(zip(fields, (str(row[0]), *row[1:]), strict=True))
        for row in db.execute(LIFECYCLE_SQL, _bounds(span)).fetchall()
    ]


def duck_lifecycle_by_plan(
    db: duckdb.DuckDBPyConnection, span: tuple[date, date]
) -> list[dict[str, Any]]:
    days = [span[0] + timedelta(days=n) for n in range((span[1] - span[0]).days + 1)]
    by_plan: dict[str | None, dict[date, list[int]]] = {}
    for plan, day, *counts in db.execute(LIFECYCLE_BY_PLAN_SQL, _bounds(span)).fetchall():
        row = by_plan.setdefault(plan, {d: [0, 0, 0, 0] for d in days})[day]
        for i, n in enumerate((*counts[:3], -counts[3])):
            row[i] += n
    fields = ("new", "returning", "resurrecting", "dormant")
    return [
        {
            "value": plan,
            "periods": [
                {"start": str(d), **dict(zip(fields, row, strict=True))}
                for d, row in by_plan[plan].items()
            ],
        }
        for plan in _null_last(by_plan)
    ]


def _weeks(span: tuple[date, date]) -> dict[date, list[int]]:
    """An empty histogram per ISO week the range overlaps."""
    histograms: dict[date, list[int]] = {}
    monday = span[0] - timedelta(days=span[0].weekday())
    while monday <= span[1]:
        histograms[monday] = [0] * 7
        monday += timedelta(days=7)
    return histograms


def duck_stickiness(db: duckdb.DuckDBPyConnection, span: tuple[date, date]) -> list[dict[str, Any]]:
    histograms = _weeks(span)
    for period, days, persons in db.execute(STICKINESS_SQL, _bounds(span)).fetchall():
        histograms[period][days - 1] = persons
    return [{"start": str(p), "histogram": h} for p, h in histograms.items()]


def duck_stickiness_by_plan(
    db: duckdb.DuckDBPyConnection, span: tuple[date, date]
) -> list[dict[str, Any]]:
    by_plan: dict[str | None, dict[date, list[int]]] = {}
    for plan, period, days, persons in db.execute(STICKINESS_BY_PLAN_SQL, _bounds(span)).fetchall():
        by_plan.setdefault(plan, _weeks(span))[period][days - 1] = persons
    return [
        {
            "value": plan,
            "periods": [{"start": str(p), "histogram": h} for p, h in by_plan[plan].items()],
        }
        for plan in _null_last(by_plan)
    ]


def duck_paths(db: duckdb.DuckDBPyConnection, span: tuple[date, date]) -> list[dict[str, Any]]:
    params = {
        **_bounds(span),
        "anchor": PATHS_START,
        "depth": PATHS_DEPTH,
        "limit": PATHS_LIMIT,
    }
    return [
        {"from": source, "to": target, "step": step, "persons": persons}
        for step, source, target, persons in db.execute(PATHS_SQL, params).fetchall()
    ]


# ---------------------------------------------------------------- the gateway


async def _create_topic(bootstrap: str, topic: str) -> None:
    """The gateway's freshness asks Kafka for the events topic's end offsets: with the topic
    present it learns the partitions once, as in a running deployment."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
    finally:
        await admin.close()


@dataclass
class Endpoint:
    name: str
    path: Callable[[tuple[date, date]], str]
    timings: list[float]
    before: Callable[[], None] | None = None  # run before each request, untimed


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


async def _forget_lifecycle_periods(url: str) -> None:
    """Empty the lifecycle split's cache (migration 0028), so the next read computes every
    period of its range, as the first read of a range does."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM lifecycle_value_cache")
    finally:
        await conn.close()


def measure_gateway(
    env: dict[str, str], loaded: Loaded, endpoints: list[Endpoint]
) -> dict[str, Any]:
    """Time every endpoint over its ranges; return each one's answer for the first range, and
    the backfilled funnel's report for it."""
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    service_env = {
        **os.environ,
        **env,
        "PULSE_DRAIN_SECONDS": "0",
        "PULSE_ADMIN_TOKEN": ADMIN,
        "PULSE_EVENTS_TOPIC": f"bench-reads-{tag}.events",
        "PULSE_CONSUMER_GROUP": f"bench-reads-{tag}.metrics",
        "PULSE_GATEWAY_PORT": str(port),
        "PULSE_LOG_LEVEL": "warning",
    }
    asyncio.run(_create_topic(env["KAFKA_BOOTSTRAP_SERVERS"], service_env["PULSE_EVENTS_TOPIC"]))
    logs = Path(__file__).parent / "results" / "reads_vs_duckdb"
    logs.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    answers: dict[str, Any] = {}
    warmups = ranges(FIRST_TO - WARMUP, WARMUP)
    measured = ranges(FIRST_TO, REQUESTS)
    with (
        process([str(BIN / "pulse-gateway")], service_env, url, logs / "gateway.log"),
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {loaded.read_key}"}, timeout=300
        ) as client,
    ):

        def get(path: str) -> tuple[float, Any]:
            started = time.perf_counter()
            response = client.get(path)
            took = time.perf_counter() - started
            assert response.status_code == 200, (path, response.status_code, response.text)
            return took, response.json()

        for endpoint in endpoints:
            for span in warmups:
                get(endpoint.path(span))
            for i, span in enumerate(measured):
                if endpoint.before is not None:
                    endpoint.before()
                took, body = get(endpoint.path(span))
                endpoint.timings.append(took)
                if i == 0:
                    answers[endpoint.name] = body
        _, answers["backfilled"] = get(
            f"/v1/funnels/{loaded.backfilled_funnel}?from={measured[0][0]}&to={measured[0][1]}"
        )
    return answers


# ---------------------------------------------------------------- the cross-checks


def check(name: str, gateway: Any, duck: Any) -> None:
    if gateway != duck:
        for i, (g, d) in enumerate(zip(gateway, duck, strict=False)):
            if g != d:
                raise AssertionError(f"{name}: gateway and DuckDB differ at {i}: {g} != {d}")
        raise AssertionError(f"{name}: gateway has {len(gateway)} rows, DuckDB {len(duck)}")


def cross_check(answers: dict[str, Any], duck: dict[str, Any]) -> None:
    retention = [
        {k: c[k] for k in ("date", "size", "retained")} for c in answers["retention"]["cohorts"]
    ]
    check("retention", retention, duck["retention"])
    keys = ("users", "median_seconds_to_convert")
    streamed = [{k: s[k] for k in keys} for s in answers["funnel"]["steps"]]
    check("funnel", streamed, duck["funnel"])
    check("funnel backfilled", answers["backfilled"]["steps"], answers["funnel"]["steps"])
    sessions = [{k: d[k] for k in duck["sessions"][0]} for d in answers["sessions"]["days"]]
    check("sessions", sessions, duck["sessions"])
    check("sessions by plan", answers["sessions_by_plan"]["breakdown"], duck["sessions_by_plan"])
    check("activity by plan", answers["activity_by_plan"]["breakdown"], duck["activity_by_plan"])
    check("paths", answers["paths"]["edges"], duck["paths"])
    check("lifecycle", answers["lifecycle"]["periods"], duck["lifecycle"])
    check("lifecycle by plan", answers["lifecycle_by_plan"]["breakdown"], duck["lifecycle_by_plan"])
    check(
        "lifecycle by plan, cold",
        answers["lifecycle_by_plan_cold"]["breakdown"],
        duck["lifecycle_by_plan"],
    )
    check("stickiness", answers["stickiness"]["periods"], duck["stickiness"])
    check(
        "stickiness by plan", answers["stickiness_by_plan"]["breakdown"], duck["stickiness_by_plan"]
    )


# ---------------------------------------------------------------- run


def _scale(events: int) -> str:
    return f"{PERSONS / 1000:,.0f}k persons, {events / 1e6:.1f}M events"


def run(env: dict[str, str]) -> list[Figure]:
    started = time.perf_counter()
    raws = generate()
    active = sum(r.kind != "identify" for r in raws)
    print(
        f"  generated {len(raws):,} events ({active:,} active) for {PERSONS:,} persons over "
        f"{DAYS} days in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    with gc_tuned():
        loaded = asyncio.run(load_pulse(env["DATABASE_URL"], raws))
    print(
        f"  Store.apply {loaded.events / loaded.load_seconds:,.0f} events/s "
        f"({loaded.load_seconds:.0f}s), COPY {loaded.events / loaded.copy_seconds:,.0f}/s; "
        f"funnel backfill {loaded.backfill_seconds:.1f}s, equal to the streamed funnel",
        flush=True,
    )

    db = load_duckdb(raws)
    del raws
    reference = ranges(FIRST_TO, 1)[0]
    everything = (_day(0), _day(DAYS))  # the last visits run past midnight of day 89
    questions: dict[str, Callable[[], Any]] = {
        "retention": lambda: duck_retention(db, reference),
        "funnel": lambda: duck_funnel(db, reference),
        "sessions": lambda: duck_sessions(db, reference),
        "sessions_by_plan": lambda: duck_sessions_by_plan(db, reference),
        "activity_by_plan": lambda: duck_activity_by_plan(db, reference),
        "paths": lambda: duck_paths(db, reference),
        "lifecycle": lambda: duck_lifecycle(db, reference),
        "lifecycle_by_plan": lambda: duck_lifecycle_by_plan(db, reference),
        "stickiness": lambda: duck_stickiness(db, reference),
        "stickiness_by_plan": lambda: duck_stickiness_by_plan(db, reference),
        "funnel_all_days": lambda: duck_funnel(db, everything),
    }
    duck_seconds, duck_answers = {}, {}
    for name, query in questions.items():
        duck_seconds[name], duck_answers[name] = best_of(ROUNDS, query)
        print(f"  DuckDB {name}: {duck_seconds[name] * 1000:.1f} ms (best of {ROUNDS})", flush=True)
    db.close()

    endpoints = [
        Endpoint(
            "retention",
            lambda s: f"/v1/retention?from={s[0]}&to={s[1]}&length={LENGTH}&period=day&mode=on",
            [],
        ),
        Endpoint(
            "funnel",
            lambda s: f"/v1/funnels/{loaded.streamed_funnel}?from={s[0]}&to={s[1]}",
            [],
        ),
        Endpoint("sessions", lambda s: f"/v1/sessions?from={s[0]}&to={s[1]}", []),
        Endpoint(
            "sessions_by_plan",
            lambda s: f"/v1/sessions?from={s[0]}&to={s[1]}&breakdown=plan",
            [],
        ),
        Endpoint(
            "activity_by_plan",
            lambda s: f"/v1/activity?from={s[0]}&to={s[1]}&breakdown=plan",
            [],
        ),
        Endpoint(
            "paths",
            lambda s: (
                f"/v1/paths?from={s[0]}&to={s[1]}&start_event={PATHS_START}"
                f"&depth={PATHS_DEPTH}&limit={PATHS_LIMIT}"
            ),
            [],
        ),
        Endpoint("lifecycle", lambda s: f"/v1/lifecycle?from={s[0]}&to={s[1]}&period=day", []),
        Endpoint(
            "lifecycle_by_plan",
            lambda s: f"/v1/lifecycle?from={s[0]}&to={s[1]}&period=day&breakdown=plan",
            [],
        ),
        Endpoint(  # a first read: nothing cached (a query string of its own: no response cache)
            "lifecycle_by_plan_cold",
            lambda s: f"/v1/lifecycle?breakdown=plan&from={s[0]}&to={s[1]}&period=day",
            [],
            lambda: asyncio.run(_forget_lifecycle_periods(env["DATABASE_URL"])),
        ),
        Endpoint("stickiness", lambda s: f"/v1/stickiness?from={s[0]}&to={s[1]}&period=week", []),
        Endpoint(
            "stickiness_by_plan",
            lambda s: f"/v1/stickiness?from={s[0]}&to={s[1]}&period=week&breakdown=plan",
            [],
        ),
    ]
    answers = measure_gateway(env, loaded, endpoints)
    cross_check(answers, duck_answers)
    print("  the gateway's answers equal DuckDB's for the first range", flush=True)
    for e in endpoints:
        print(
            f"  gateway {e.name}: p50 {sorted(e.timings)[len(e.timings) // 2] * 1000:.1f} ms, "
            f"p95 {_p95(e.timings) * 1000:.1f} ms over {len(e.timings)} ranges",
            flush=True,
        )

    scale = _scale(loaded.events)
    speed = f"1/s: 1 / gateway p95 vs 1 / DuckDB best of {ROUNDS}; {scale}"
    p95 = {e.name: _p95(e.timings) for e in endpoints}
    return [
        Figure(
            "retention_30x30_gateway_p95_vs_duckdb",
            1 / p95["retention"],
            1 / duck_seconds["retention"],
            speed,
            ">= 30",
        ),
        Figure(
            "funnel_3_steps_gateway_p95_vs_duckdb",
            1 / p95["funnel"],
            1 / duck_seconds["funnel"],
            speed,
            ">= 10",
        ),
        Figure(
            "sessions_30_days_gateway_p95_vs_duckdb",
            1 / p95["sessions"],
            1 / duck_seconds["sessions"],
            speed,
            ">= 10",
        ),
        Figure(
            "sessions_by_plan_30_days_gateway_p95_vs_duckdb",
            1 / p95["sessions_by_plan"],
            1 / duck_seconds["sessions_by_plan"],
            speed,
        ),
        Figure(
            "activity_by_plan_30_days_gateway_p95_vs_duckdb",
            1 / p95["activity_by_plan"],
            1 / duck_seconds["activity_by_plan"],
            speed,
        ),
        Figure(
            "paths_depth_3_gateway_p95_vs_duckdb",
            1 / p95["paths"],
            1 / duck_seconds["paths"],
            speed,
            ">= 10",
        ),
        Figure(
            "lifecycle_30_days_gateway_p95_vs_duckdb",
            1 / p95["lifecycle"],
            1 / duck_seconds["lifecycle"],
            speed,
        ),
        Figure(
            "lifecycle_by_plan_30_days_gateway_p95_vs_duckdb",
            1 / p95["lifecycle_by_plan"],
            1 / duck_seconds["lifecycle_by_plan"],
            speed,
        ),
        Figure(
            "lifecycle_by_plan_cold_30_days_gateway_p95_vs_duckdb",
            1 / p95["lifecycle_by_plan_cold"],
            1 / duck_seconds["lifecycle_by_plan"],
            speed,
        ),
        Figure(
            "stickiness_weeks_of_30_days_gateway_p95_vs_duckdb",
            1 / p95["stickiness"],
            1 / duck_seconds["stickiness"],
            speed,
        ),
        Figure(
            "stickiness_by_plan_weeks_of_30_days_gateway_p95_vs_duckdb",
            1 / p95["stickiness_by_plan"],
            1 / duck_seconds["stickiness_by_plan"],
            speed,
        ),
        Figure(
            "funnel_backfill_seconds_vs_duckdb_all_days",
            loaded.backfill_seconds,
            duck_seconds["funnel_all_days"],
            f"s: backfill vs DuckDB's funnel over all entry days; {scale}",
        ),
        Figure(
            "metrics_load_events_per_s_vs_copy",
            loaded.events / loaded.load_seconds,
            loaded.events / loaded.copy_seconds,
            f"events/s: Store.apply (funnel maintained) vs bare COPY; {scale}",
        ),
    ]
