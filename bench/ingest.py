"""Ingest throughput and latency, each against a baseline measured in the same run.

- `/v1/batch` events/s (batches of 100) ÷ a bare aiokafka producer loop's msgs/s, same broker,
  same producer settings, same records (goal >= 0.5).
- `/v1/track` requests/s ÷ a trivial ASGI POST endpoint's requests/s under the same uvicorn
  (goal >= 0.2).
- `/v1/batch` p99 latency at half its maximum rate ÷ the trivial endpoint's p99 for the same
  bodies at the same rate.

Load comes from vegeta, an open-model generator: a fixed arrival rate whatever the latency, so
queueing shows in the percentiles. Maximum rates are measured with a fixed number of workers
(`-rate=0`). Every attack is bounded in time and targets 127.0.0.1 only. vegeta comes from
Debian where the release has it, else `go install` (see the Makefile's `bench` target).

On a shared 2-core machine the background load drifts; each value and its baseline are measured
in alternation, ROUNDS times, and the best of each is kept.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.harness import Figure
from deploy.local.stack import ROOT, free_port
from services.common.events import EventRecord
from services.common.kafka import durable_producer, ensure_topics
from services.common.settings import IngestSettings
from tests.support.services import ServiceProcess

BATCH = 100
ROUNDS = 3
SECONDS = 5  # per capacity attack
LATENCY_SECONDS = 10
WORKERS = 128  # concurrent clients when measuring capacity: enough to keep either side busy
PRODUCER_MESSAGES = 100_000
BODIES = 50  # distinct request bodies, cycled by vegeta
TOPIC_PREFIX = "bench-ingest"


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline endpoint: read the whole POST body, answer `{"success": true}`."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"success":true}'})


def vegeta() -> str:
    found = shutil.which("vegeta") or str(ROOT / ".local" / "bin" / "vegeta")
    if not Path(found).exists():
        raise SystemExit("vegeta is missing: run `make bench` (it installs it)")
    return found


def _events(n: int, salt: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": f"user-{salt}-{i % 37}",
            "anonymousId": f"device-{salt}-{i % 41}",
            "messageId": str(uuid.uuid4()),
            "timestamp": now,
            "properties": {"sku": f"sku-{i}", "price": 19.99, "currency": "EUR"},
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        }
        for i in range(n)
    ]


def _targets(url: str, write_key: str, bodies: list[bytes], path: Path) -> Path:
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    lines = [
        orjson.dumps(
            {
                "method": "POST",
                "url": url,
                "header": {"Content-Type": ["application/json"], "Authorization": [auth]},
                "body": base64.b64encode(body).decode(),
            }
        )
        for body in bodies
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def attack(targets: Path, rate: float | None, seconds: int) -> dict[str, Any]:
    """One bounded vegeta attack; `rate=None` is as fast as WORKERS concurrent clients go."""
    pace = ["-rate=0", f"-max-workers={WORKERS}", f"-workers={WORKERS}"]
    if rate is not None:
        pace = [f"-rate={max(1, round(rate))}/s", "-workers=16"]
    tool = vegeta()
    env = {**os.environ, "GOMAXPROCS": "1"}  # the same generator cost for every target
    attack_run = subprocess.run(
        [
            tool,
            "attack",
            "-format=json",
            f"-targets={targets}",
            f"-duration={seconds}s",
            "-timeout=15s",
            "-max-body=0",
            *pace,
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    report = subprocess.run(
        [tool, "report", "-type=json"],
        input=attack_run.stdout,
        check=True,
        capture_output=True,
        env=env,
    )
    result: dict[str, Any] = orjson.loads(report.stdout)
    codes = result.get("status_codes", {})
    if set(codes) != {"200"}:
        raise SystemExit(f"not every request succeeded: {codes} {result.get('errors')}")
    return result


async def _create_project(database_url: str) -> str:
    write_key = "pw_bench_" + secrets.token_hex(8)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO projects (name, write_key, read_key) VALUES ($1, $2, $3)",
            f"bench-{write_key[-6:]}",
            write_key,
            "pr_bench_" + secrets.token_hex(8),
        )
    finally:
        await conn.close()
    return write_key


async def _producer_rate(settings: IngestSettings, records: list[tuple[bytes, bytes]]) -> float:
    """A bare aiokafka loop: queue every send, then wait for all acknowledgements."""
    await ensure_topics(settings)
    producer = durable_producer(settings)
    await producer.start()
    try:
        warm = [await producer.send(settings.events_topic, v, key=k) for k, v in records[:2000]]
        await asyncio.gather(*warm)
        started = time.perf_counter()
        acks = [await producer.send(settings.events_topic, v, key=k) for k, v in records]
        await asyncio.gather(*acks)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _records(n: int) -> list[tuple[bytes, bytes]]:
    now = datetime.now(UTC)
    out = []
    for message in _events(n, "producer"):
        record = EventRecord(
            project_id=1,
            message_id=message["messageId"],
            type="track",
            event=message["event"],
            user_id=message["userId"],
            anonymous_id=message["anonymousId"],
            timestamp=now,
            received_at=now,
            properties=message["properties"],
            context=message["context"],
        )
        out.append((record.partition_key, record.model_dump_json().encode()))
    return out


def _start_bare() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.ingest:bare_app",
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"{}", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the bare ASGI endpoint did not start")


def run(env: dict[str, str]) -> list[Figure]:
    run_id = uuid.uuid4().hex[:6]
    settings = IngestSettings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=env["DATABASE_URL"],
        events_topic=f"{TOPIC_PREFIX}-{run_id}.baseline",
        rejected_topic=f"{TOPIC_PREFIX}-{run_id}.baseline-rejected",
    )
    records = _records(PRODUCER_MESSAGES)
    write_key = asyncio.run(_create_project(env["DATABASE_URL"]))
    ingest = ServiceProcess(
        "ingest",
        {
            "DATABASE_URL": env["DATABASE_URL"],
            "KAFKA_BOOTSTRAP_SERVERS": env["KAFKA_BOOTSTRAP_SERVERS"],
            "PULSE_EVENTS_TOPIC": f"{TOPIC_PREFIX}-{run_id}.events",
            "PULSE_REJECTED_TOPIC": f"{TOPIC_PREFIX}-{run_id}.rejected",
            "PULSE_QUOTA_EVENTS_PER_SECOND": "0",  # measure the service, not the quota
            "PULSE_LOG_LEVEL": "warning",
        },
    )
    ingest.start()
    bare, bare_url = _start_bare()
    try:
        with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
            folder = Path(tmp)
            batches = [orjson.dumps({"batch": _events(BATCH, str(n))}) for n in range(BODIES)]
            singles = [orjson.dumps(e) for e in _events(BODIES, "single")]
            batch_targets = _targets(
                f"{ingest.url}/v1/batch", write_key, batches, folder / "batch.json"
            )
            track_targets = _targets(
                f"{ingest.url}/v1/track", write_key, singles, folder / "track.json"
            )
            bare_batch = _targets(bare_url, write_key, batches, folder / "bare-batch.json")
            bare_track = _targets(bare_url, write_key, singles, folder / "bare-track.json")

            attack(batch_targets, None, 2)  # warm-up: connections, caches, producer batches
            attack(bare_track, None, 2)
            producer_rate = batch_max = track_max = bare_max = 0.0
            for n in range(ROUNDS):
                producer_rate = max(producer_rate, asyncio.run(_producer_rate(settings, records)))
                batch_max = max(batch_max, attack(batch_targets, None, SECONDS)["throughput"])
                bare_max = max(bare_max, attack(bare_track, None, SECONDS)["throughput"])
                track_max = max(track_max, attack(track_targets, None, SECONDS)["throughput"])
                print(
                    f"round {n + 1}: producer {producer_rate:,.0f} msgs/s, "
                    f"/v1/batch {batch_max * BATCH:,.0f} events/s, "
                    f"bare ASGI {bare_max:,.0f} req/s, /v1/track {track_max:,.0f} req/s",
                    flush=True,
                )

            half = batch_max / 2
            p99 = attack(batch_targets, half, LATENCY_SECONDS)["latencies"]["99th"] / 1e6
            bare_p99 = attack(bare_batch, half, LATENCY_SECONDS)["latencies"]["99th"] / 1e6
            print(f"p99 at {half:,.0f} batches/s: ingest {p99:.1f} ms, bare {bare_p99:.1f} ms")
    finally:
        bare.terminate()
        bare.wait(30)
        ingest.stop()

    return [
        Figure(
            "ingest_batch_events_per_s_vs_bare_producer",
            batch_max * BATCH,
            producer_rate,
            "events/s ÷ msgs/s",
            ">= 0.5",
        ),
        Figure(
            "ingest_track_requests_per_s_vs_bare_asgi",
            track_max,
            bare_max,
            "requests/s ÷ requests/s",
            ">= 0.2",
        ),
        Figure(
            "ingest_batch_p99_ms_at_half_max_rate_vs_bare_asgi",
            p99,
            bare_p99,
            f"ms at {half:.0f} batches/s of {BATCH}",
        ),
    ]
