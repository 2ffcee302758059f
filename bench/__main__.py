"""`make bench`: start the local stack (unless the env names one), run every benchmark, report.

`python -m bench [name ...]` runs only the named benchmarks.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import traceback
from pathlib import Path

from bench.harness import RESULTS, Figure, report
from deploy.local.stack import local_stack

# Each module exposes `run(env: dict[str, str]) -> list[Figure]`.
BENCHMARKS = [
    "metrics_apply",
    "sessions_apply",
    "late_events",
    "breakdown_backfill",
    "dashboard",
    "ingest",
    "reads_vs_duckdb",
]


def main(argv: list[str]) -> int:
    chosen = argv or BENCHMARKS
    RESULTS.unlink(missing_ok=True)
    figures: list[Figure] = []
    failed: list[str] = []
    with local_stack(fast=False) as started:
        env = {**os.environ, **started}
        subprocess.run([str(Path(sys.executable).parent / "pulse"), "migrate"], env=env, check=True)
        for name in chosen:
            module = importlib.import_module(f"bench.{name}")
            print(f"== {name}", flush=True)
            try:
                figures += module.run(env)
            except Exception:  # one broken benchmark must not lose the others' figures
                traceback.print_exc()
                failed.append(name)
    report(figures)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
