"""`make bench`: start the local stack (unless the env names one), run every benchmark, report.

`python -m bench [name ...]` runs only the named benchmarks.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

from bench.harness import RESULTS, Figure, report
from deploy.local.stack import local_stack

# Each module exposes `run(env: dict[str, str]) -> list[Figure]`.
BENCHMARKS = ["metrics_apply", "sessions_apply", "dashboard", "ingest", "reads_vs_duckdb"]


def main(argv: list[str]) -> int:
    chosen = argv or BENCHMARKS
    RESULTS.unlink(missing_ok=True)
    figures: list[Figure] = []
    with local_stack(fast=False) as started:
        env = {**os.environ, **started}
        subprocess.run([str(Path(sys.executable).parent / "pulse"), "migrate"], env=env, check=True)
        for name in chosen:
            module = importlib.import_module(f"bench.{name}")
            print(f"== {name}", flush=True)
            figures += module.run(env)
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
