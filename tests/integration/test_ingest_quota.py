"""Per-write-key quota over real HTTP: 429 + Retry-After for the noisy key, nobody else slowed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.services import Pipeline, ServiceProcess


@pytest.fixture(scope="module")
def limited(pipeline: Pipeline) -> Iterator[ServiceProcess]:
    """A second ingest on the shared topics, with a small quota: 100 events/s, bursts of 200."""
    service = ServiceProcess(
        "ingest",
        {
            **pipeline.ingest.env,
            "PULSE_QUOTA_EVENTS_PER_SECOND": "100",
            "PULSE_QUOTA_BURST_EVENTS": "200",
        },
    )
    service.start()
    yield service
    service.stop()


def _batch(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": "e", "userId": f"u{i}", "messageId": str(uuid.uuid4())}
        for i in range(n)
    ]


def test_a_key_over_its_quota_gets_429_and_others_do_not(
    pipeline: Pipeline, limited: ServiceProcess
) -> None:
    noisy = pipeline.create_project("quota-noisy")
    quiet = pipeline.create_project("quota-quiet")
    url = f"{limited.url}/v1/batch"
    auth = (noisy["write_key"], "")
    # Admitted while the bucket is not in debt: 200 - 150 - 150 = -100.
    for _ in range(2):
        assert httpx.post(url, json={"batch": _batch(150)}, auth=auth).status_code == 200
    refused = httpx.post(url, json={"batch": _batch(150)}, auth=auth)
    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    assert set(refused.json()) == {"code", "message"}
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 2
    posthog = httpx.post(
        f"{limited.url}/batch/",
        json={"api_key": noisy["write_key"], "batch": [{"event": "x", "distinct_id": "u"}]},
    )
    assert posthog.status_code == 429
    assert set(posthog.json()) == {"code", "message", "detail"}
    assert int(posthog.headers["retry-after"]) >= 1

    # Another key on the same process is not affected.
    other = httpx.post(url, json={"batch": _batch(150)}, auth=(quiet["write_key"], ""))
    assert other.status_code == 200

    time.sleep(wait)
    assert httpx.post(url, json={"batch": _batch(10)}, auth=auth).status_code == 200

    # Refused requests wrote nothing.
    assert pipeline.wait_processed(noisy["read_key"], 310)["events_processed"] == 310
    assert pipeline.wait_processed(quiet["read_key"], 150)["events_processed"] == 150
    metrics = httpx.get(f"{limited.url}/metrics").text
    assert f'pulse_ingest_quota_exceeded_total{{project="{noisy["id"]}"}} 2.0' in metrics
