"""Records the consumer cannot read go to the DLQ topic (with where and why), never silently
dropped, never blocking the partition; `pulse dlq list` shows them and `pulse dlq replay` puts
them back on their original topic."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from tests.support.services import Pipeline


async def _pulse(pipeline: Pipeline, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "pulse"),
        *args,
        env={**os.environ, **pipeline.metrics.env},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return stdout.decode()


async def _dead_letters(pipeline: Pipeline) -> int:
    return int((await _pulse(pipeline, "dlq", "list")).splitlines()[-1].split()[0])


async def test_unreadable_records_go_to_the_dlq_and_can_be_replayed(pipeline: Pipeline) -> None:
    project = pipeline.create_project("dlq")
    before = await _dead_letters(pipeline)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.metrics.env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    marker = f"not-json-{uuid.uuid4()}".encode()
    await producer.send_and_wait(pipeline.metrics.env["PULSE_EVENTS_TOPIC"], marker)
    await producer.stop()
    # A valid event after it on another partition, and the pipeline keeps flowing.
    async with httpx.AsyncClient() as client:
        ok = await client.post(
            f"{pipeline.ingest.url}/v1/track",
            json={"type": "track", "event": "x", "userId": "u", "writeKey": project["write_key"]},
        )
    assert ok.status_code == 200
    status = pipeline.wait_processed(project["read_key"], 1)
    assert status["events_processed"] == 1

    deadline = time.monotonic() + 30
    while await _dead_letters(pipeline) < before + 1:
        assert time.monotonic() < deadline, "the unreadable record never reached the DLQ"
        await asyncio.sleep(0.5)
    listing = await _pulse(pipeline, "dlq", "list")
    assert marker.decode() in listing
    assert f"from {pipeline.metrics.env['PULSE_EVENTS_TOPIC']}[" in listing
    assert "reason: 1 validation error(s)" in listing

    # Replay puts the original bytes back; still unreadable, they come back to the DLQ.
    assert "replayed" in await _pulse(pipeline, "dlq", "replay", "--limit", "1000")
    deadline = time.monotonic() + 30
    while await _dead_letters(pipeline) < 2 * (before + 1):
        assert time.monotonic() < deadline, "replayed records did not come back"
        await asyncio.sleep(0.5)
