"""Session fixtures: the real Kafka + PostgreSQL stack, started here unless the env names one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.stack import local_stack
from tests.support.services import Pipeline


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    """DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS of a migrated, running stack."""
    with local_stack(fast=True) as started:
        env = {
            "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
            "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""),
            **started,
        }
        subprocess.run(
            [str(Path(sys.executable).parent / "pulse"), "migrate"],
            env={**os.environ, **env},
            check=True,
        )
        yield env


@pytest.fixture(scope="session")
def pipeline(stack_env: dict[str, str]) -> Iterator[Pipeline]:
    """A running ingest + metrics + gateway shared by the integration tests (one project each)."""
    # KPI gauges recomputed every second, so tests can scrape them soon after sending.
    p = Pipeline.start(stack_env, "shared", PULSE_KPI_REFRESH_SECONDS="1")
    yield p
    p.stop()
