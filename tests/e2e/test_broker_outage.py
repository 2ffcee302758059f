"""The Kafka broker stops during a load and comes back: no acknowledged event is ever lost, and
none is counted twice.

A pipeline (ingest, metrics, gateway) runs against a broker of its own that the test stops and
restarts (same data, same port). While it is down every request must end in 503 + Retry-After
well within 10 s — also the first ones, sent while the producer still believes the old leader is
there — and the ingest's `/readyz` must say 503. When it is back, the same ingest process
answers 200 again without a restart, and every messageId that was ever answered 200 is in the
topic. The metrics service, consuming all along, rides out the outage in the same process and
ends up counting every event in the topic exactly once (a request answered 503 may still have
had its events written: they count too, as the client's retry would be deduplicated).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from deploy.local.stack import Kafka, free_port
from tests.support.services import Pipeline, ServiceProcess
from tests.support.topics import read_topic

TOPIC = "outage.events"
SENDERS = 4
BATCH = 20
LIMIT_SECONDS = 10.0


@dataclass
class Outcome:
    ids: list[str]
    status: int
    seconds: float
    body: dict  # type: ignore[type-arg]
    retry_after: str | None
    sent_at: float


@dataclass
class Load:
    url: str
    write_key: str
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        with httpx.Client(auth=(self.write_key, ""), timeout=30) as client:
            while not self.stop.is_set():
                ids = [str(uuid.uuid4()) for _ in range(BATCH)]
                batch = [
                    {"type": "track", "event": "tick", "userId": f"u{i % 7}", "messageId": m}
                    for i, m in enumerate(ids)
                ]
                started = time.monotonic()
                response = client.post(f"{self.url}/v1/batch", json={"batch": batch})
                outcome = Outcome(
                    ids,
                    response.status_code,
                    time.monotonic() - started,
                    response.json(),
                    response.headers.get("retry-after"),
                    started,
                )
                with self.lock:
                    self.outcomes.append(outcome)
                if response.status_code != 200:
                    time.sleep(0.2)  # as a client backing off would

    def count(self, status: int, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for o in self.outcomes if o.status == status and o.sent_at >= since)


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    kafka = Kafka(Path(tmp_path_factory.mktemp("outage-kafka")), free_port())
    kafka.start()
    yield kafka
    kafka.stop()


@pytest.fixture(scope="module")
def outage(stack_env: dict[str, str], broker: Kafka) -> Iterator[Pipeline]:
    pipeline = Pipeline.start({**stack_env, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}, "outage")
    yield pipeline
    pipeline.stop()


def _readyz(service: ServiceProcess) -> int:
    try:
        return httpx.get(f"{service.url}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.slow
def test_no_event_is_lost_or_counted_twice_when_the_broker_stops(
    outage: Pipeline, broker: Kafka
) -> None:
    ingest, metrics = outage.ingest, outage.metrics
    project = outage.create_project("outage")
    log_start, began = ingest.log.stat().st_size, time.monotonic()
    load = Load(ingest.url, project["write_key"])
    senders = [threading.Thread(target=load.run) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    try:
        _wait_for(lambda: load.count(200) >= 20, 20, "a first load of 200s")
        broker.stop()
        stopped = time.monotonic()
        _wait_for(lambda: load.count(503, since=stopped) >= SENDERS, 30, "503s while it is down")
        _wait_for(lambda: _readyz(ingest) == 503, 10, "/readyz 503 while it is down")
        broker.start()
        restarted = time.monotonic()
        _wait_for(lambda: load.count(200, since=restarted) >= 20, 60, "200s once it is back")
        _wait_for(lambda: _readyz(ingest) == 200, 10, "/readyz 200 once it is back")
    finally:
        load.stop.set()
        for sender in senders:
            sender.join(60)

    assert ingest.proc is not None and ingest.proc.poll() is None, "ingest must not restart"
    # Unpaced, aiokafka asked for metadata again the moment an attempt failed: about 10,000
    # attempts a second while the broker was down, each logged (services/common/kafka.py).
    attempts = ingest.log_since(log_start).count(b"Unable to update metadata")
    assert attempts <= 10 * (time.monotonic() - began), attempts
    for outcome in load.outcomes:
        assert outcome.status in (200, 503), outcome
        assert outcome.seconds < LIMIT_SECONDS, outcome
        if outcome.status == 200:
            assert outcome.body == {"success": True}
        else:
            assert set(outcome.body) == {"code", "message"}, outcome
            assert outcome.retry_after is not None and int(outcome.retry_after) > 0
    # Some requests were answered while the broker was gone: the test saw the outage.
    assert any(o.status == 503 and o.sent_at > stopped for o in load.outcomes)

    acknowledged = {i for o in load.outcomes if o.status == 200 for i in o.ids}
    records = read_topic(broker.bootstrap, TOPIC)
    stored = {r["message_id"] for r in records}
    assert acknowledged - stored == set()
    assert len(acknowledged) >= 40 * BATCH

    status = outage.wait_processed(project["read_key"], len(stored))
    assert metrics.proc is not None and metrics.proc.poll() is None, "metrics must not restart"
    assert status["events_processed"] == len(stored), status
    # Records the topic holds twice (none, unless a producer's retry wrote one again).
    assert status["duplicates_dropped"] == len(records) - len(stored), status
    assert status["rejected"] == 0, status
