"""Product KPIs as Prometheus gauges (SPEC §6), recomputed by a background task of the gateway.

`pulse_active_users{project, window="1d|7d|30d"}`: persons active in the trailing 1, 7 and 30
days ending today in the project's timezone: today's DAU, WAU and MAU from the daily rollup
(`activity_daily`), one row per project. `pulse_retention_ratio{project, day="1|7|30"}`: of the
persons whose first active day was N days before yesterday, the share active yesterday (the most
recent complete day, so the gauge does not climb through the day); absent while that cohort is
empty. Both are computed for every project in one set-based query each. A scrape only reads the
last snapshot, so it costs nothing however many projects there are, and every gateway replica
exports the same values (aggregate with `max by (project, window)`).

`pulse_project_info{project, name}` (always 1) lets dashboards show names: the `project` label
is the id, which never changes when a project is renamed.

`pulse_funnel_conversion_ratio{project, funnel}`: for each funnel, among the persons with an
attempt opened during the 7 complete days ending yesterday (project timezone), the share whose
best attempt in that range reached the last step. That is the counting of
`GET /v1/funnels/{id}?from=<yesterday - 6>&to=<yesterday>` (docs/funnels.md "Counting": a person
counts once, with their deepest attempt, ties by earliest entry), last step's users / first
step's users, unrounded. Complete days only, so the value does not swing through the day; absent
while nobody entered, and while the funnel's backfill is running (its rows then cover only the
persons walked so far). Attempts younger than the funnel's window can still convert, so with a
long window the value is below its final one: it is meant to be compared with itself. `funnel`
is the funnel id (names can repeat, ids do not); `pulse_funnel_info{project, funnel, name}`
(always 1) gives names. One statement for all funnels of all projects, from the step counts
the funnel reads use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.logging import get_logger
from services.common.tables import projects

log = get_logger(__name__)

WINDOWS = (1, 7, 30)

REFRESH_SECONDS = Histogram(
    "pulse_gateway_kpi_refresh_duration_seconds",
    "One recomputation of the product KPI gauges for all projects",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REFRESH_FAILURES = Counter(
    "pulse_gateway_kpi_refresh_failures_total", "KPI recomputations that failed (kept last values)"
)

ACTIVE_USERS_SQL = text(
    """
SELECT a.project_id, a.dau AS d1, a.wau AS d7, a.mau AS d30
FROM unnest(CAST(:ids AS integer[]), CAST(:todays AS date[])) AS t(project_id, today)
JOIN activity_daily a ON a.project_id = t.project_id AND a.day = t.today
"""
)

RETENTION_DAYS = (1, 7, 30)

RETENTION_SQL = text(
    """
SELECT t.project_id, n.days, count(*) AS cohort, count(pd.person_id) AS retained
FROM unnest(CAST(:ids AS integer[]), CAST(:yesterdays AS date[])) AS t(project_id, yesterday)
CROSS JOIN unnest(CAST(:days AS integer[])) AS n(days)
JOIN persons p ON p.project_id = t.project_id AND p.first_day = t.yesterday - n.days
LEFT JOIN person_days pd
  ON pd.project_id = p.project_id AND pd.day = t.yesterday AND pd.person_id = p.person_id
GROUP BY t.project_id, n.days
"""
)


# Per funnel: persons whose best attempt over the 7 days ending yesterday reached the last step
# (n) among all who entered, from the step counts (docs/funnels.md "Keeping the numbers exact").
FUNNEL_SQL = text(
    """
WITH f AS (
    SELECT f.id, f.project_id, f.name, f.backfill, t.yesterday - 6 AS first, t.yesterday,
           jsonb_array_length(f.definition -> 'steps') AS n
    FROM unnest(CAST(:ids AS integer[]), CAST(:yesterdays AS date[])) AS t(project_id, yesterday)
    JOIN funnels f ON f.project_id = t.project_id
),
counted AS (
    SELECT c.funnel_id, c.step, sum(c.persons) AS persons
    FROM f
    JOIN funnel_step_buckets c
      ON c.funnel_id = f.id AND c.step IN (1, f.n) AND c.day BETWEEN f.first AND f.yesterday
     AND c.prior_day < f.first AND c.deeper_day > f.yesterday
    WHERE f.backfill = 'complete'
    GROUP BY c.funnel_id, c.step
)
SELECT f.project_id, f.id, f.name,
       coalesce(sum(c.persons) FILTER (WHERE c.step = 1), 0) AS entered,
       coalesce(sum(c.persons) FILTER (WHERE c.step = f.n), 0) AS converted
FROM f LEFT JOIN counted c ON c.funnel_id = f.id
GROUP BY f.project_id, f.id, f.name
"""
)


@dataclass(frozen=True)
class FunnelKpi:
    funnel_id: int
    name: str
    conversion: float | None  # None: nobody entered in the 7 days, or still backfilling


@dataclass(frozen=True)
class ProjectKpis:
    project_id: int
    name: str
    active_users: dict[int, int]  # window in days -> persons
    retention: dict[int, float]  # N -> share of the cohort of N days before yesterday
    funnels: list[FunnelKpi] = field(default_factory=list)  # by id


def today_in(timezone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


async def read_kpis(conn: AsyncConnection, now: datetime) -> list[ProjectKpis]:
    listed = (await conn.execute(select(projects.c.id, projects.c.name, projects.c.timezone))).all()
    if not listed:
        return []
    ids = [p.id for p in listed]
    todays = [today_in(p.timezone, now) for p in listed]
    counts = {
        r.project_id: {1: r.d1, 7: r.d7, 30: r.d30}
        for r in await conn.execute(ACTIVE_USERS_SQL, {"ids": ids, "todays": todays})
    }
    yesterdays = [d - timedelta(days=1) for d in todays]
    retention: dict[int, dict[int, float]] = {}
    rows = await conn.execute(
        RETENTION_SQL, {"ids": ids, "yesterdays": yesterdays, "days": list(RETENTION_DAYS)}
    )
    for r in rows:
        retention.setdefault(r.project_id, {})[r.days] = r.retained / r.cohort
    funnel_kpis: dict[int, list[FunnelKpi]] = {}
    for r in await conn.execute(FUNNEL_SQL, {"ids": ids, "yesterdays": yesterdays}):
        ratio = r.converted / r.entered if r.entered else None
        funnel_kpis.setdefault(r.project_id, []).append(FunnelKpi(r.id, r.name, ratio))
    return [
        ProjectKpis(
            p.id,
            p.name,
            counts.get(p.id, dict.fromkeys(WINDOWS, 0)),
            retention.get(p.id, {}),
            sorted(funnel_kpis.get(p.id, []), key=lambda f: f.funnel_id),
        )
        for p in sorted(listed, key=lambda p: p.id)
    ]


class KpiCollector(Collector):
    """Serves the latest snapshot to scrapes; projects that were deleted disappear with it."""

    def __init__(self) -> None:
        self.snapshot: list[ProjectKpis] | None = None
        self.refreshed_at: float | None = None

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is None:
            return
        active = GaugeMetricFamily(
            "pulse_active_users",
            "Persons active in the trailing window ending today (project timezone)",
            labels=["project", "window"],
        )
        info = GaugeMetricFamily(
            "pulse_project_info", "Project names by id (value always 1)", labels=["project", "name"]
        )
        retention = GaugeMetricFamily(
            "pulse_retention_ratio",
            "Share of the persons first active N days before yesterday who were active yesterday",
            labels=["project", "day"],
        )
        conversion = GaugeMetricFamily(
            "pulse_funnel_conversion_ratio",
            "Share of the persons entering the funnel in the 7 days ending yesterday whose best "
            "attempt reached its last step",
            labels=["project", "funnel"],
        )
        funnel_info = GaugeMetricFamily(
            "pulse_funnel_info",
            "Funnel names by id (value always 1)",
            labels=["project", "funnel", "name"],
        )
        for kpis in self.snapshot:
            project = str(kpis.project_id)
            info.add_metric([project, kpis.name], 1)
            for window in WINDOWS:
                active.add_metric([project, f"{window}d"], kpis.active_users[window])
            for days, ratio in sorted(kpis.retention.items()):
                retention.add_metric([project, str(days)], ratio)
            for funnel in kpis.funnels:
                funnel_info.add_metric([project, str(funnel.funnel_id), funnel.name], 1)
                if funnel.conversion is not None:
                    conversion.add_metric([project, str(funnel.funnel_id)], funnel.conversion)
        yield active
        yield retention
        yield conversion
        yield info
        yield funnel_info
        if self.refreshed_at is not None:
            yield GaugeMetricFamily(
                "pulse_gateway_kpi_refreshed_timestamp_seconds",
                "Unix time of the last successful KPI recomputation",
                value=self.refreshed_at,
            )


class KpiRefresher:
    """Recomputes the KPIs every `interval` seconds while the gateway runs."""

    def __init__(
        self, engine: AsyncEngine, interval: float, registry: CollectorRegistry = REGISTRY
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._registry = registry
        self.collector = KpiCollector()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        started = time.perf_counter()
        async with self._engine.connect() as conn:
            self.collector.snapshot = await read_kpis(conn, datetime.now(UTC))
        self.collector.refreshed_at = time.time()
        REFRESH_SECONDS.observe(time.perf_counter() - started)

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                # Keep serving the last values; the timestamp gauge shows how old they are.
                REFRESH_FAILURES.inc()
                log.warning("kpi_refresh_failed", error=type(exc).__name__, detail=str(exc))
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._registry.register(self.collector)
        self._task = asyncio.create_task(self._loop(), name="kpi-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._registry.unregister(self.collector)
