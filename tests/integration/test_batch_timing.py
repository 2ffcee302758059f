"""A caught-up consumer applies what it holds after PULSE_BATCH_MIN_SECONDS, not the maximum.

This pipeline lets a batch wait up to ten minutes for more records. Once the consumer has
fetched everything there is (each owned partition up to the end the broker reports), waiting
would only delay the numbers: each lone event must be applied long before that bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.services import Pipeline

MAX_SECONDS = 600


@pytest.fixture(scope="module")
def patient(stack_env: dict[str, str]) -> Iterator[Pipeline]:
    p = Pipeline.start(
        stack_env,
        f"batch-timing-{uuid.uuid4().hex[:6]}",
        PULSE_BATCH_MAX_SECONDS=str(MAX_SECONDS),
        PULSE_BATCH_MIN_SECONDS="0.05",
    )
    yield p
    p.stop()


def test_a_caught_up_consumer_does_not_wait_for_a_full_batch(patient: Pipeline) -> None:
    project = patient.create_project("batch-timing")
    for sent in (1, 2, 3):
        response = httpx.post(
            f"{patient.ingest.url}/v1/track",
            json={"event": "tick", "userId": f"u-{sent}", "writeKey": project["write_key"]},
        )
        assert response.status_code == 200
        # Raises when the event is not applied within the timeout, a tenth of the maximum.
        status = patient.wait_processed(project["read_key"], sent, timeout=MAX_SECONDS / 10)
        assert status["events_processed"] == sent
