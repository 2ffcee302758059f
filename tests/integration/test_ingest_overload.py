"""A burst of large requests over real HTTP: the ingest holds at most its budget of request bodies
at once (services/ingest/body_budget.py), answers the rest 503 + Retry-After with nothing
stored, and every batch it answered 200 is counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.services import Pipeline, ServiceProcess

BUDGET = 10 * 1024 * 1024
REQUESTS = 20
EVENTS = 160  # of 31 KB each: a 5 MB PostHog batch


@pytest.fixture(scope="module")
def bounded(pipeline: Pipeline) -> Iterator[ServiceProcess]:
    """A second ingest on the shared topics holding at most 10 MB of bodies, quota off."""
    service = ServiceProcess(
        "ingest",
        {
            **pipeline.ingest.env,
            "PULSE_MAX_BODY_BYTES_IN_FLIGHT": str(BUDGET),
            "PULSE_QUOTA_EVENTS_PER_SECOND": "0",
        },
    )
    service.start()
    yield service
    service.stop()


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _batch(key: str) -> bytes:
    events = [
        {
            "event": "x",
            "distinct_id": f"u{i}",
            "uuid": str(uuid.uuid4()),
            "properties": {"pad": "y" * 31_000},
        }
        for i in range(EVENTS)
    ]
    return orjson.dumps({"api_key": key, "batch": events})


async def test_a_burst_past_the_budget_is_told_to_retry(
    pipeline: Pipeline, bounded: ServiceProcess
) -> None:
    project = pipeline.create_project("overload")
    assert bounded.proc is not None
    peak_before = _peak_rss_kb(bounded.proc.pid)
    bodies = [_batch(project["write_key"]) for _ in range(REQUESTS)]
    assert all(4 * 1024 * 1024 < len(b) <= 5 * 1024 * 1024 for b in bodies)
    async with httpx.AsyncClient(base_url=bounded.url, timeout=60) as client:
        answers = await asyncio.gather(*(client.post("/batch/", content=b) for b in bodies))
    statuses = [a.status_code for a in answers]
    # Held to two bodies at a time, the process grew by 29 MB; let take all 20 at once (a budget
    # of 1 GB), by 218 MB (2026-11-28).
    growth = (_peak_rss_kb(bounded.proc.pid) - peak_before) * 1024
    assert growth < 6 * BUDGET, growth
    refused = [a for a in answers if a.status_code == 503]
    assert refused and set(statuses) == {200, 503}, statuses
    for answer in refused:
        assert answer.json()["code"] == "overloaded"
        assert answer.headers["retry-after"] == "1"

    # Nothing is held after the burst: a batch goes through, alone or not.
    async with httpx.AsyncClient(base_url=bounded.url, timeout=60) as client:
        again = await client.post("/batch/", content=_batch(project["write_key"]))
    assert again.status_code == 200, again.text
    accepted = EVENTS * (statuses.count(200) + 1)
    status = await asyncio.to_thread(pipeline.wait_processed, project["read_key"], accepted)
    assert (status["events_processed"], status["rejected"]) == (accepted, 0)
