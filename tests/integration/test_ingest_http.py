"""Ingest over real HTTP, Kafka and PostgreSQL: auth, errors, rejections, CORS, health."""

from __future__ import annotations

import base64
import gzip
import uuid

import httpx
import orjson

from tests.support.services import Pipeline


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(**extra: object) -> dict[str, object]:
    return {"type": "track", "event": "x", "userId": "u", "messageId": str(uuid.uuid4()), **extra}


def test_success_is_exactly_200_success_true(pipeline: Pipeline) -> None:
    project = pipeline.create_project("ingest-ok")
    for path, body, headers in [
        ("/v1/batch", {"batch": [_track()]}, _basic(project["write_key"])),
        ("/v1/batch", {"batch": [_track()], "writeKey": project["write_key"]}, {}),
        ("/v1/track", {**_track(), "writeKey": project["write_key"]}, {}),
        ("/v1/t", _track(), {"Authorization": f"Bearer {project['write_key']}"}),
        ("/v1/import", {"batch": [_track()]}, _basic(project["write_key"])),
    ]:
        response = httpx.post(f"{pipeline.ingest.url}{path}", json=body, headers=headers)
        assert (response.status_code, response.json()) == (200, {"success": True}), path
    status = pipeline.wait_processed(project["read_key"], 5)
    assert status["events_processed"] == 5


def test_gzip_and_text_plain_bodies(pipeline: Pipeline) -> None:
    project = pipeline.create_project("ingest-bodies")
    body = orjson.dumps({"batch": [_track(), _track()], "writeKey": project["write_key"]})
    gz = httpx.post(
        f"{pipeline.ingest.url}/v1/batch",
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert gz.status_code == 200, gz.text
    beacon = httpx.post(
        f"{pipeline.ingest.url}/v1/p",
        content=orjson.dumps(
            {"type": "page", "anonymousId": "a", "writeKey": project["write_key"]}
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert beacon.status_code == 200, beacon.text
    # Segment's mobile SDKs: a batch to /v1/b, gzip as text/plain, the writeKey in the body.
    batch = {"batch": [_track(), _track()], "sentAt": "2026-11-28T10:00:00Z"}
    mobile = httpx.post(
        f"{pipeline.ingest.url}/v1/b",
        content=gzip.compress(orjson.dumps({**batch, "writeKey": project["write_key"]})),
        headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )
    assert (mobile.status_code, mobile.json()) == (200, {"success": True}), mobile.text
    assert pipeline.wait_processed(project["read_key"], 5)["events_processed"] == 5


def test_unknown_or_disagreeing_keys_are_401_and_write_nothing(pipeline: Pipeline) -> None:
    a = pipeline.create_project("ingest-a")
    b = pipeline.create_project("ingest-b")
    url = f"{pipeline.ingest.url}/v1/batch"
    cases = [
        ({"batch": [_track()]}, _basic("pw_nope")),
        ({"batch": [_track()], "writeKey": b["write_key"]}, _basic(a["write_key"])),
        ({"batch": [_track()]}, {}),
        ({"batch": [_track()]}, {"Authorization": b"Basic \x80"}),  # not ASCII: was a 500
    ]
    for body, headers in cases:
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code == 401
        assert set(response.json()) == {"code", "message"}
    # A marker event proves the pipeline is caught up, then nothing else was counted.
    ok = httpx.post(url, json={"batch": [_track()]}, headers=_basic(a["write_key"]))
    assert ok.status_code == 200
    assert pipeline.wait_processed(a["read_key"], 1)["events_processed"] == 1
    assert pipeline.read("/v1/status", b["read_key"])["events_processed"] == 0


def test_invalid_events_are_rejected_and_the_rest_accepted(pipeline: Pipeline) -> None:
    project = pipeline.create_project("ingest-rejects")
    batch = [_track(), {"type": "track", "event": "x"}, _track(messageId="m" * 101), _track()]
    response = httpx.post(
        f"{pipeline.ingest.url}/v1/batch",
        json={"batch": batch},
        headers=_basic(project["write_key"]),
    )
    assert response.status_code == 200
    pipeline.wait_processed(project["read_key"], 2, rejected=2)
    answer = pipeline.read("/v1/rejected", project["read_key"])
    assert sorted(r["reason"] for r in answer["rejected"]) == ["message_id_too_long", "missing_id"]
    assert set(answer["freshness"]) == {"processed_through", "lag"}
    assert answer["freshness"]["processed_through"] is not None
    assert pipeline.read("/v1/status", project["read_key"])["rejected"] == 2


def test_refused_requests_get_code_and_message(pipeline: Pipeline) -> None:
    project = pipeline.create_project("ingest-errors")
    url = f"{pipeline.ingest.url}/v1/batch"
    auth = _basic(project["write_key"])
    cases = [
        (
            httpx.post(url, content=b"{bad", headers={**auth, "Content-Type": "application/json"}),
            400,
        ),
        (httpx.post(url, json={"nope": []}, headers=auth), 400),
        (httpx.post(url, json={"batch": [_track() for _ in range(2501)]}, headers=auth), 400),
        (httpx.post(url, json={"batch": [_track(p="x" * 600_000)]}, headers=auth), 413),
        (httpx.post(url, content=b"{}", headers={**auth, "Content-Type": "application/xml"}), 415),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert set(response.json()) == {"code", "message"}


def test_cors_allows_browser_posts_without_credentials(pipeline: Pipeline) -> None:
    preflight = httpx.options(
        f"{pipeline.ingest.url}/v1/t",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers


def test_health_and_metrics_on_every_service(pipeline: Pipeline) -> None:
    for service in (pipeline.ingest, pipeline.metrics, pipeline.gateway):
        assert httpx.get(f"{service.url}/livez").status_code == 200
        assert httpx.get(f"{service.url}/readyz").json()["status"] == "ok"
        assert "# TYPE" in httpx.get(f"{service.url}/metrics").text
    ingest_metrics = httpx.get(f"{pipeline.ingest.url}/metrics").text
    assert 'route="/v1/batch"' in ingest_metrics
    assert "pulse_ingest_events_accepted_total" in ingest_metrics
    assert (
        "pulse_metrics_batch_apply_duration_seconds"
        in httpx.get(f"{pipeline.metrics.url}/metrics").text
    )
