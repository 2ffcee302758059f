"""Records the consumer cannot read go to the DLQ topic (with where and why), never silently
dropped, never blocking the partition; `pulse dlq list` shows them and `pulse dlq replay` puts
them back on their original topic."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
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
    listing = await _pulse(pipeline, "dlq", "list", "--limit", "100000")
    return int(listing.splitlines()[-1].split()[0])


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


async def test_records_postgresql_could_not_store_are_dead_letters_not_a_stopped_consumer(
    pipeline: Pipeline,
) -> None:
    """Records of our model that the ingest would never write (another producer's, a hand-made
    replay): each would fail its batch's transaction, and the consumer would stop on it at every
    restart. They go to the DLQ with their reason, and the events after them are counted."""
    project = pipeline.create_project("dlq-unstorable")
    before = await _dead_letters(pipeline)
    now = datetime.now(UTC).isoformat()
    good = {
        "project_id": int(project["id"]),
        "type": "track",
        "event": "e",
        "user_id": "u",
        "timestamp": now,
        "received_at": now,
    }
    poison = {
        "holds a NUL character": {"event": "a\x00b"},
        "project 2147483000 does not exist": {"project_id": 2_147_483_000},
        "project_id: Input should be less than or equal to 2147483647": {"project_id": 2**40},
        "message_id: String should have at most 100 characters": {"message_id": "m" * 5000},
        "user_id or anonymous_id is required": {"user_id": None},
        "timestamp: Value error, must be in [2000-01-01": {"timestamp": "0001-01-01T00:00:00Z"},
        "received_at: Value error, is more than a day after": {"received_at": "8999-01-01T00:00Z"},
    }
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.metrics.env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    for n, change in enumerate(poison.values()):
        record = {**good, "message_id": f"poison-{uuid.uuid4()}-{n}", **change}
        await producer.send_and_wait(
            pipeline.metrics.env["PULSE_EVENTS_TOPIC"], orjson.dumps(record), key=b"u"
        )
    # An integer beyond 64 bits in a property (orjson, as the archive, cannot write it) is
    # stored as the float the ingest would have read it as, and counted.
    giant = {**good, "message_id": str(uuid.uuid4()), "properties": {"n": 0}}
    raw = orjson.dumps(giant).replace(b'"n":0', b'"n":1180591620717411303424')
    await producer.send_and_wait(pipeline.metrics.env["PULSE_EVENTS_TOPIC"], raw, key=b"u")
    # On the same partition (same key), after them: counted only if the consumer went on.
    ok = {**good, "message_id": str(uuid.uuid4())}
    await producer.send_and_wait(
        pipeline.metrics.env["PULSE_EVENTS_TOPIC"], orjson.dumps(ok), key=b"u"
    )
    await producer.stop()

    status = pipeline.wait_processed(project["read_key"], 2)
    assert status["events_processed"] == 2
    assert pipeline.metrics.proc is not None and pipeline.metrics.proc.poll() is None
    deadline = time.monotonic() + 30
    while await _dead_letters(pipeline) < before + len(poison):
        assert time.monotonic() < deadline, "the unstorable records never reached the DLQ"
        await asyncio.sleep(0.5)
    listing = await _pulse(pipeline, "dlq", "list", "--limit", "100000")
    for reason in poison:
        assert reason in listing, reason
