"""Records the consumer cannot read go to the DLQ topic (with where and why), never silently
dropped, never blocking the partition; `pulse dlq list` shows them and `pulse dlq replay` puts
them back on their original topic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from tests.support.services import Pipeline


def _pulse(pipeline: Pipeline, *args: str) -> str:
    env = {**os.environ, **pipeline.metrics.env}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pulse"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _dead_letters(pipeline: Pipeline) -> int:
    return int(_pulse(pipeline, "dlq", "list").splitlines()[-1].split()[0])


async def test_unreadable_records_go_to_the_dlq_and_can_be_replayed(pipeline: Pipeline) -> None:
    project = pipeline.create_project("dlq")
    before = _dead_letters(pipeline)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.metrics.env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    marker = f"not-json-{uuid.uuid4()}".encode()
    await producer.send_and_wait(pipeline.metrics.env["PULSE_EVENTS_TOPIC"], marker)
    await producer.stop()
    # A valid event after it on another partition, and the pipeline keeps flowing.
    ok = httpx.post(
        f"{pipeline.ingest.url}/v1/track",
        json={"type": "track", "event": "x", "userId": "u", "writeKey": project["write_key"]},
    )
    assert ok.status_code == 200
    status = pipeline.wait_processed(project["read_key"], 1)
    assert status["events_processed"] == 1

    deadline = time.monotonic() + 30
    while _dead_letters(pipeline) < before + 1:
        assert time.monotonic() < deadline, "the unreadable record never reached the DLQ"
        time.sleep(0.5)
    listing = _pulse(pipeline, "dlq", "list")
    assert marker.decode() in listing
    assert f"from {pipeline.metrics.env['PULSE_EVENTS_TOPIC']}[" in listing
    assert "reason: 1 validation error(s)" in listing

    # Replay puts the original bytes back; still unreadable, they come back to the DLQ.
    assert "replayed" in _pulse(pipeline, "dlq", "replay", "--limit", "1000")
    deadline = time.monotonic() + 30
    while _dead_letters(pipeline) < 2 * (before + 1):
        assert time.monotonic() < deadline, "replayed records did not come back"
        time.sleep(0.5)
