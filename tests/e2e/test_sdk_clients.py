"""The official Segment, RudderStack and PostHog clients for Python and Node, unmodified, against
Pulse (the Node ones from npm, `tests/js_sdks`, run by `tests/js_sdks/send.mjs`).

Each client sends a few thousand events through a proxy that drops every 5th acknowledgement
after the ingest stored the batch, so the client really retries batches that were already
acknowledged. Every messageId must be in the topic, and the pipeline must count each event once:
`events_processed` is exactly the events sent, `duplicates_dropped` exactly the retried ones.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from posthog import Posthog
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.support.lost_acks import LostAcks
from tests.support.services import Pipeline
from tests.support.topics import read_topic

SEND_MJS = Path(__file__).resolve().parents[1] / "js_sdks" / "send.mjs"
EVENTS = 2_000
PEOPLE = 150
START = datetime(2026, 10, 10, 1, tzinfo=UTC)
TOPIC = "e2e-sdks.events"


@pytest.fixture(scope="module")
def pipeline(stack_env: dict[str, str]) -> Iterator[Pipeline]:
    p = Pipeline.start(stack_env, "e2e-sdks")
    yield p
    p.stop()


def _plan() -> list[tuple[str, str, datetime]]:
    """(messageId, person, time) for each event: a spread of people over two days."""
    return [
        (str(uuid.uuid4()), f"person-{n % PEOPLE}", START + timedelta(minutes=n))
        for n in range(EVENTS)
    ]


def _segment_like(make: Callable[[str, str, list[object]], object]) -> Callable[..., None]:
    def send(write_key: str, url: str, plan: list[tuple[str, str, datetime]]) -> None:
        errors: list[object] = []
        client = make(write_key, url, errors)
        for message_id, person, at in plan:
            client.track(  # type: ignore[attr-defined]
                user_id=person,
                event="Product Viewed",
                properties={"sku": message_id[:8]},
                timestamp=at,
                message_id=message_id,
            )
        client.flush()  # type: ignore[attr-defined]
        client.join()  # type: ignore[attr-defined]
        assert errors == []

    return send


def _segment(gzip: bool) -> Callable[..., None]:
    return _segment_like(
        lambda key, url, errors: SegmentClient(
            key,
            host=url,
            gzip=gzip,
            max_retries=5,
            upload_size=100,
            on_error=lambda error, batch: errors.append(error),
        )
    )


# RudderStack's defaults: gzip on, Basic auth, /v1/batch.
_rudder = _segment_like(
    lambda key, url, errors: RudderClient(
        key, host=url, max_retries=5, on_error=lambda error, batch: errors.append(error)
    )
)


def _posthog(write_key: str, url: str, plan: list[tuple[str, str, datetime]]) -> None:
    errors: list[object] = []
    client = Posthog(
        write_key,
        host=url,
        flush_at=100,
        max_retries=5,
        on_error=lambda error, batch: errors.append(error),
    )
    for message_id, person, at in plan:
        client.capture(
            "Product Viewed",
            distinct_id=person,
            properties={"sku": message_id[:8]},
            timestamp=at,
            uuid=message_id,
        )
    client.flush()
    client.shutdown()
    assert errors == []


def _node(sdk: str) -> Callable[..., None]:
    def send(write_key: str, url: str, plan: list[tuple[str, str, datetime]]) -> None:
        events = [(message_id, person, at.isoformat()) for message_id, person, at in plan]
        done = subprocess.run(
            ["node", str(SEND_MJS), sdk, url, write_key],
            input=orjson.dumps(events),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()

    return send


@pytest.mark.parametrize(
    ("client", "path", "encoding", "send"),
    [
        ("segment", "/v1/batch", "identity", _segment(gzip=False)),
        ("segment-gzip", "/v1/batch", "gzip", _segment(gzip=True)),
        ("rudderstack", "/v1/batch", "gzip", _rudder),
        ("posthog", "/batch/", "identity", _posthog),
        ("posthog-node", "/batch/", "gzip", _node("posthog-node")),
        ("segment-node", "/v1/batch", "identity", _node("segment-node")),
        # Its gzipped JSON comes typed as a form (axios's default type for a buffer).
        ("rudderstack-node", "/v1/batch", "gzip", _node("rudderstack-node")),
    ],
    ids=[
        "segment",
        "segment-gzip",
        "rudderstack",
        "posthog",
        "posthog-node",
        "segment-node",
        "rudderstack-node",
    ],
)
def test_official_client_events_arrive_exactly_once(
    pipeline: Pipeline, client: str, path: str, encoding: str, send: Callable[..., None]
) -> None:
    project = pipeline.create_project(f"sdk-{client}")
    plan = _plan()
    with LostAcks(pipeline.ingest.url, every=5).running() as proxy:
        send(project["write_key"], proxy.url, plan)
    assert set(proxy.statuses) == {200}
    assert (proxy.paths, proxy.encodings) == ({path}, {encoding})
    assert proxy.lost, "the proxy must have made the client retry"
    sent = {message_id for message_id, _, _ in plan}
    assert {i for ids in proxy.lost for i in ids} <= sent

    status = pipeline.wait_processed(project["read_key"], EVENTS)
    assert status["events_processed"] == EVENTS
    assert status["duplicates_dropped"] == proxy.duplicates
    assert status["rejected"] == 0

    stored = [
        r
        for r in read_topic(pipeline.ingest.env["KAFKA_BOOTSTRAP_SERVERS"], TOPIC)
        if r["project_id"] == int(project["id"])
    ]
    assert {r["message_id"] for r in stored} == sent
    assert len(stored) == EVENTS + proxy.duplicates
    first = next(r for r in stored if r["message_id"] == plan[0][0])
    assert (first["type"], first["event"], first["user_id"]) == (
        "track",
        "Product Viewed",
        "person-0",
    )
    # Clock-skew correction moves it by the client-to-server delay only (same machine clock).
    assert abs(datetime.fromisoformat(first["timestamp"]) - START) < timedelta(seconds=5)
