"""Bad input over real HTTP: every refusal has its documented status and `{"code","message"}`
body (never a 500), a refused request writes nothing, and per-event problems reject only that
event while the rest of the batch is stored.
"""

from __future__ import annotations

import base64
import gzip
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from tests.support.services import Pipeline

KB = 1024


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(**extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "e", "userId": "u", "messageId": str(uuid.uuid4()), **extra}


def _sized_batch(size: int, events: int = 20) -> bytes:
    """A valid batch of exactly `size` bytes of JSON, its events padded evenly (each < 32 KB)."""
    batch = [_track(properties={"pad": ""}) for _ in range(events)]
    missing = size - len(orjson.dumps({"batch": batch}))
    for n, message in enumerate(batch):
        message["properties"]["pad"] = "x" * (missing // events + (n < missing % events))
    body = orjson.dumps({"batch": batch})
    assert len(body) == size
    return body


def _gzip_bomb(inflated: int) -> bytes:
    """A gzip stream of a JSON prefix and `inflated` spaces, compressed without holding it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(b'{"batch": [')]
    block = b" " * (1024 * 1024)
    out += [compressor.compress(block) for _ in range(inflated // len(block))]
    out.append(compressor.compress(b"]}") + compressor.flush())
    return b"".join(out)


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (code, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]


def test_refused_requests_get_their_status_and_write_nothing(pipeline: Pipeline) -> None:
    project = pipeline.create_project("battery-refused")
    other = pipeline.create_project("battery-other")
    url = pipeline.ingest.url
    auth = _basic(project["write_key"])
    json_type = {**auth, "Content-Type": "application/json"}
    valid = orjson.dumps({"batch": [_track(), _track()]})
    peak_before = pipeline.ingest.peak_rss_kb()
    bomb = _gzip_bomb(256 * 1024 * 1024)
    assert len(bomb) < 512 * KB

    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("/v1/batch", b'{"batch": [{"type": "track",', json_type, 400, "invalid_json"),
        ("/v1/batch", b"", json_type, 400, "invalid_json"),
        ("/v1/batch", b"[" * 2000 + b"]" * 2000, json_type, 400, "invalid_json"),
        ("/v1/batch", b'{"batch": [], "x": NaN}', json_type, 400, "invalid_json"),
        (
            "/v1/batch",
            valid,
            {**auth, "Content-Type": "application/xml"},
            415,
            "unsupported_media_type",
        ),
        # A real form; JSON typed as a form is taken (RudderStack's Node SDK sends that, body.py).
        (
            "/v1/batch",
            b"data=" + valid,
            {**auth, "Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("/v1/batch", valid, {**json_type, "Content-Encoding": "gzip"}, 400, "invalid_gzip"),
        ("/v1/batch", valid, {**json_type, "Content-Encoding": "br"}, 415, "unsupported_encoding"),
        (
            "/v1/batch",
            gzip.compress(valid)[:-8],
            {**json_type, "Content-Encoding": "gzip"},
            400,
            "invalid_gzip",
        ),
        ("/v1/batch", bomb, {**json_type, "Content-Encoding": "gzip"}, 413, "payload_too_large"),
        ("/v1/batch", _sized_batch(500 * KB + 1), json_type, 413, "payload_too_large"),
        (
            "/v1/batch",
            orjson.dumps({"batch": [_track() for _ in range(2501)]}),
            json_type,
            400,
            "batch_too_long",
        ),
        ("/v1/batch", orjson.dumps({"events": [_track()]}), json_type, 400, "invalid_batch"),
        ("/v1/batch", orjson.dumps([_track()]), json_type, 400, "invalid_batch"),
        (
            "/v1/batch",
            orjson.dumps({"batch": [_track()], "sentAt": "last tuesday"}),
            json_type,
            400,
            "invalid_sent_at",
        ),
        (
            "/v1/track",
            orjson.dumps(_track(properties={"pad": "x" * (32 * KB)})),
            json_type,
            413,
            "payload_too_large",
        ),
        ("/v1/track", orjson.dumps([_track()]), json_type, 400, "invalid_event"),
        ("/v1/nope", valid, json_type, 404, "not_found"),
        # Keys: unknown, missing, two that disagree (Basic vs body), malformed Basic.
        (
            "/v1/batch",
            valid,
            {**_basic("pw_unknown"), "Content-Type": "application/json"},
            401,
            "unauthorized",
        ),
        ("/v1/batch", valid, {"Content-Type": "application/json"}, 401, "unauthorized"),
        (
            "/v1/batch",
            orjson.dumps({"batch": [_track()], "writeKey": other["write_key"]}),
            json_type,
            401,
            "unauthorized",
        ),
        (
            "/v1/batch",
            valid,
            {"Authorization": "Basic !!!", "Content-Type": "application/json"},
            401,
            "unauthorized",
        ),
    ]
    for path, body, headers, status, code in cases:
        _assert_error(httpx.post(f"{url}{path}", content=body, headers=headers), status, code)
    # The bomb was refused after 500 KB of output, not inflated to 256 MB.
    assert pipeline.ingest.peak_rss_kb() - peak_before < 64 * KB

    # Exactly at the limits is fine: a marker proves the pipeline caught up with this project.
    at_limit = httpx.post(f"{url}/v1/batch", content=_sized_batch(500 * KB), headers=json_type)
    assert at_limit.status_code == 200, at_limit.text
    status = pipeline.wait_processed(project["read_key"], 20)
    assert (status["events_processed"], status["rejected"]) == (20, 0)
    assert pipeline.read("/v1/status", other["read_key"])["events_processed"] == 0


def test_per_event_problems_reject_only_that_event(pipeline: Pipeline) -> None:
    project = pipeline.create_project("battery-events")
    now = datetime.now(UTC)
    deep: Any = "leaf"
    for _ in range(230):
        deep = [deep]
    accepted = [
        _track(messageId="m" * 100),
        _track(timestamp=(now + timedelta(hours=20)).isoformat()),
        _track(timestamp="2004-02-04T00:00:00Z"),  # a backfill: old events are kept
        # A device clock a year ahead is corrected by sentAt, not rejected.
        _track(
            timestamp=(now + timedelta(days=365)).isoformat(),
            sentAt=(now + timedelta(days=365, seconds=2)).isoformat(),
        ),
        _track(event="nul\u0000in name", properties={"k": "v\u0000"}, userId="nul\u0000user"),
        {"type": "page", "anonymousId": "a", "messageId": str(uuid.uuid4())},
    ]
    refused: dict[str, Any] = {
        "missing_id": {"type": "track", "event": "e", "messageId": str(uuid.uuid4())},
        "message_id_too_long": _track(messageId="m" * 101),
        "missing_event": {"type": "track", "userId": "u", "messageId": str(uuid.uuid4())},
        "timestamp_in_future": _track(timestamp=(now + timedelta(days=3)).isoformat()),
        "timestamp_out_of_range": _track(timestamp="1970-01-01T00:00:00Z"),
        "invalid_timestamp": _track(timestamp="0000-00-00"),
        "event_too_large": _track(properties={"pad": "x" * (32 * KB)}),
        "too_deeply_nested": _track(properties={"p": deep}),
        "id_too_long": _track(userId="u" * 256),
        "invalid_type": _track(type="purchase"),
        "not_an_object": "track",
    }
    batch = [*accepted[:3], *refused.values(), *accepted[3:]]
    response = httpx.post(
        f"{pipeline.ingest.url}/v1/batch",
        json={"batch": batch},
        headers=_basic(project["write_key"]),
    )
    assert (response.status_code, response.json()) == (200, {"success": True})
    # One-event routes reject the same way, with 200.
    single = httpx.post(
        f"{pipeline.ingest.url}/v1/t",
        json={"event": "e", "writeKey": project["write_key"]},
    )
    assert (single.status_code, single.json()) == (200, {"success": True})

    # The rejections are counted as the consumer applies them, as the events are.
    status = pipeline.wait_processed(project["read_key"], len(accepted), rejected=len(refused) + 1)
    assert status["events_processed"] == len(accepted)
    reasons = sorted(
        r["reason"] for r in pipeline.read("/v1/rejected", project["read_key"])["rejected"]
    )
    assert reasons == sorted([*refused, "missing_id"])
    assert status["rejected"] == len(refused) + 1
    for rejected in pipeline.read("/v1/rejected", project["read_key"])["rejected"]:
        assert "writeKey" not in orjson.dumps(rejected["payload"]).decode()
    assert 'reason="timestamp_in_future"' in httpx.get(f"{pipeline.ingest.url}/metrics").text


def test_dedup_is_per_project(pipeline: Pipeline) -> None:
    """One project's messageIds never suppress another's events."""
    first = pipeline.create_project("dedup-first")
    second = pipeline.create_project("dedup-second")
    batch = [_track(userId=f"u{n}") for n in range(10)]
    for project, times in ((first, 2), (second, 1)):
        for _ in range(times):
            response = httpx.post(
                f"{pipeline.ingest.url}/v1/batch",
                json={"batch": batch},
                headers=_basic(project["write_key"]),
            )
            assert response.status_code == 200
    # wait_processed also waits for the topic's lag to reach 0: every delivery is applied.
    second_status = pipeline.wait_processed(second["read_key"], 10)
    first_status = pipeline.wait_processed(first["read_key"], 10)
    assert (second_status["events_processed"], second_status["duplicates_dropped"]) == (10, 0)
    assert (first_status["events_processed"], first_status["duplicates_dropped"]) == (10, 10)
