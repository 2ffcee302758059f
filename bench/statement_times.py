"""Where `Store.apply`'s time goes: a diagnostic, not a benchmark (`make bench` does not run it).

`python -m bench.statement_times [metrics_apply|sessions_apply] [--top N]` applies one benchmark's
events through `Store.apply` on one connection, in batches of the service's
`PULSE_BATCH_MAX_EVENTS`, and prints the whole run's time, the part spent waiting on PostgreSQL
statements (asyncpg's query logger: each statement from send to result) and the rest: Python,
and the binary COPYs (`copy_records_to_table`), which the logger does not see. Then the
statements that took longest, summed over the run; docs/performance.md's breakdowns come from it.
`metrics_apply`'s events come in random time order and track `plan`, as the service does by
default; `sessions_apply`'s are visits in order with 5% late, tracking no key. It starts a
temporary PostgreSQL unless `DATABASE_URL` names a database, which it migrates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg

from bench.metrics_apply import random_order_events
from bench.sessions_apply import visit_events
from deploy.local.stack import Postgres, free_port
from services.common.db import SERVER_SETTINGS
from services.common.events import EventRecord
from services.common.settings import MetricsSettings
from services.metrics.gc_tuning import gc_tuned
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import OneConnection, new_project

WORKLOADS = {
    "metrics_apply": (random_order_events, ["plan"]),
    "sessions_apply": (visit_events, []),
}


async def _measure(url: str, workload: str, top: int) -> None:
    make_events, keys = WORKLOADS[workload]
    conn = await asyncpg.connect(url, server_settings=SERVER_SETTINGS)
    try:
        project_id = await new_project(conn)  # type: ignore[arg-type]
        events: list[EventRecord] = make_events(project_id, random.Random(7))
        store = Store(OneConnection(conn), f"statement-times-{uuid.uuid4()}", keys)  # type: ignore[arg-type]
        seconds: Counter[str] = Counter()
        calls: Counter[str] = Counter()

        def logged(record: asyncpg.connection.LoggedQuery) -> None:
            statement = " ".join(record.query.split())[:110]
            seconds[statement] += record.elapsed
            calls[statement] += 1

        conn.add_query_logger(logged)
        size = MetricsSettings().batch_max_events
        started = time.perf_counter()
        with gc_tuned():
            for i in range(0, len(events), size):
                await store.apply(ParsedBatch(events=events[i : i + size]), {})
        total = time.perf_counter() - started
        conn.remove_query_logger(logged)
    finally:
        await conn.close()
    waited = sum(seconds.values())
    print(
        f"{workload}: {len(events):,} events in {total:.2f} s ({len(events) / total:,.0f}/s); "
        f"statements {waited:.2f} s, Python and the rest {total - waited:.2f} s"
    )
    for statement, spent in seconds.most_common(top):
        print(f"  {spent:7.2f} s {calls[statement]:5} x  {statement}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statement_times")
    parser.add_argument("workload", nargs="?", default="metrics_apply", choices=WORKLOADS)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    if os.environ.get("DATABASE_URL"):
        asyncio.run(_measure(os.environ["DATABASE_URL"], args.workload, args.top))
        return 0
    with tempfile.TemporaryDirectory(prefix="pulse-statement-times-") as folder:
        os.chmod(folder, 0o755)  # the server runs as `postgres` when this runs as root
        postgres = Postgres(Path(folder) / "postgres", free_port())
        postgres.start()
        try:
            pulse = str(Path(sys.executable).parent / "pulse")
            env = {**os.environ, "DATABASE_URL": postgres.url}
            subprocess.run([pulse, "migrate"], env=env, check=True, capture_output=True)
            asyncio.run(_measure(postgres.url, args.workload, args.top))
        finally:
            postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
