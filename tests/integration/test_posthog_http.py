"""PostHog's capture routes over real HTTP, Kafka and PostgreSQL: paths, bodies, keys, limits."""

from __future__ import annotations

import base64
import gzip
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tests.support.services import Pipeline

PATHS = ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/batch", "/capture", "/e", "/i/v0/e"]
DAY = "2026-10-20"


def _event(distinct_id: str = "p", event: str = "clicked", **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "distinct_id": distinct_id,
        "uuid": str(uuid.uuid4()),
        "timestamp": f"{DAY}T10:00:00Z",
        **extra,
    }


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "detail"}, body
    assert body["code"] == code and body["detail"] == body["message"]


def test_every_path_and_body_shape_is_accepted(pipeline: Pipeline) -> None:
    project = pipeline.create_project("posthog-shapes")
    key = project["write_key"]
    url = pipeline.ingest.url
    for path in PATHS:
        response = httpx.post(f"{url}{path}", json={"api_key": key, "batch": [_event()]})
        assert (response.status_code, response.json()) == (200, {"success": True}), path
    bodies: list[tuple[str, bytes, dict[str, str]]] = [
        # One event with its api_key; a bare array with posthog-js's properties.token.
        ("/capture/", orjson.dumps({**_event(), "api_key": key}), {}),
        ("/e/", orjson.dumps([_event(properties={"token": key}) for _ in range(2)]), {}),
        # gzip by header, and posthog-js's ?compression=gzip-js text/plain body.
        (
            "/batch/",
            gzip.compress(orjson.dumps({"api_key": key, "batch": [_event()]})),
            {"Content-Encoding": "gzip"},
        ),
        (
            "/e/?compression=gzip-js",
            gzip.compress(orjson.dumps([_event(properties={"token": key})])),
            {"Content-Type": "text/plain"},
        ),
        # posthog-js now: the same body with no parameter, known by its first bytes.
        (
            "/e/?ver=1.449.2&_=1764339000000",
            gzip.compress(orjson.dumps([_event(properties={"token": key})])),
            {"Content-Type": "text/plain"},
        ),
        # posthog-js's beacons on page unload: base64 JSON in a form's `data`.
        (
            "/e/?compression=base64",
            b"data="
            + base64.b64encode(orjson.dumps([_event(properties={"token": key})])).replace(
                b"+", b"%2B"
            ),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        # Basic and Bearer work here too.
        (
            "/batch/",
            orjson.dumps({"batch": [_event()]}),
            {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
        ),
        ("/i/v0/e/", orjson.dumps([_event()]), {"Authorization": f"Bearer {key}"}),
        # Segment's body key works here too (SPEC §3), alone or agreeing with api_key.
        ("/batch/", orjson.dumps({"writeKey": key, "batch": [_event()]}), {}),
        ("/capture/", orjson.dumps({**_event(), "writeKey": key, "api_key": key}), {}),
    ]
    for path, body, headers in bodies:
        response = httpx.post(f"{url}{path}", content=body, headers=headers)
        assert (response.status_code, response.json()) == (200, {"success": True}), path
    # A 1 MB batch is fine on PostHog routes (Segment's limit is 500 KB).
    big = [_event(properties={"pad": "x" * 20_000}) for _ in range(50)]
    response = httpx.post(f"{url}/batch/", json={"api_key": key, "batch": big})
    assert response.status_code == 200, response.text
    sent = len(PATHS) + 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + len(big)
    status = pipeline.wait_processed(project["read_key"], sent)
    assert (status["events_processed"], status["rejected"]) == (sent, 0)


def test_mapping_counts_people_across_identify_and_alias(pipeline: Pipeline) -> None:
    """Anonymous pageviews, then `$identify`: one person, active once, the day before counted."""
    project = pipeline.create_project("posthog-identity")
    batch = [
        _event("anon-1", "$pageview", properties={"$current_url": "https://x.example/a"}),
        _event("anon-1", "$autocapture"),
        _event("user-1", "$identify", properties={"$anon_distinct_id": "anon-1"}),
        _event("user-1", "purchased"),
        _event("other-device", "$screen", properties={"$screen_name": "Cart"}),
        _event("user-1", "$create_alias", properties={"alias": "other-device"}),
        _event("user-1", "$set", properties={"$set": {"plan": "vip"}}),
    ]
    response = httpx.post(
        f"{pipeline.ingest.url}/batch/", json={"api_key": project["write_key"], "batch": batch}
    )
    assert response.status_code == 200
    pipeline.wait_processed(project["read_key"], len(batch))
    days = pipeline.read("/v1/activity", project["read_key"], **{"from": DAY, "to": DAY})["days"]
    # identify, alias and $set are not activity: 4 active events, all by one person.
    assert (days[0]["dau"], days[0]["events"]) == (1, 4)


def test_refusals_carry_detail_for_the_posthog_client(pipeline: Pipeline) -> None:
    project = pipeline.create_project("posthog-refusals")
    other = pipeline.create_project("posthog-other")
    key = project["write_key"]
    url = pipeline.ingest.url
    five_mb = 5 * 1024 * 1024
    pad = "x" * 30_000
    huge = {"api_key": key, "batch": [_event(properties={"p": pad}) for _ in range(180)]}
    assert len(orjson.dumps(huge)) > five_mb
    cases: list[tuple[str, Any, int, str]] = [
        ("/batch/", {"batch": [_event()]}, 401, "unauthorized"),
        ("/batch/", {"api_key": "phc_unknown", "batch": [_event()]}, 401, "unauthorized"),
        # Keys that disagree, whichever fields they came in.
        (
            "/batch/",
            {"api_key": key, "writeKey": other["write_key"], "batch": [_event()]},
            401,
            "unauthorized",
        ),
        (
            "/e/",
            [_event(properties={"token": key}), _event(properties={"token": other["write_key"]})],
            401,
            "unauthorized",
        ),
        ("/batch/", {"api_key": key, "batch": {"not": "a list"}}, 400, "invalid_batch"),
        ("/e/", {"data": "eyJldmVudCI6IngifQ=="}, 415, "unsupported_encoding"),
        ("/batch/", huge, 413, "payload_too_large"),
    ]
    for path, body, status, code in cases:
        _assert_error(httpx.post(f"{url}{path}", json=body), status, code)
    _assert_error(
        httpx.post(f"{url}/e/?compression=lz64", json=[_event(api_key=key)]),
        415,
        "unsupported_encoding",
    )
    _assert_error(
        httpx.post(f"{url}/batch/", content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
    )

    # Per-event problems are rejected events; the rest is stored.
    now = datetime.now(UTC).isoformat()
    batch = [
        _event(timestamp=now),
        {"distinct_id": "p", "uuid": str(uuid.uuid4())},
        {"event": "x", "uuid": str(uuid.uuid4())},
        _event(uuid="u" * 101),
        _event(timestamp="2999-01-01T00:00:00Z"),
        _event(properties={"p": "x" * 40_000}),
    ]
    response = httpx.post(f"{url}/batch/", json={"api_key": key, "batch": batch})
    assert (response.status_code, response.json()) == (200, {"success": True})
    status = pipeline.wait_processed(project["read_key"], 1, rejected=5)
    assert (status["events_processed"], status["rejected"]) == (1, 5)
    rejected = pipeline.read("/v1/rejected", project["read_key"])["rejected"]
    assert sorted(r["reason"] for r in rejected) == [
        "event_too_large",
        "message_id_too_long",
        "missing_event",
        "missing_id",
        "timestamp_in_future",
    ]
    assert any(r["message_id"] == "u" * 101 for r in rejected)
    assert pipeline.read("/v1/status", other["read_key"])["events_processed"] == 0


def test_posthog_js_finds_its_config_and_no_feature_flags(pipeline: Pipeline) -> None:
    """posthog-js's remote config (JSON and script) and flags requests get answers that say the
    project has no flags, recordings, surveys or heatmaps, and that gzip is welcome."""
    url = pipeline.ingest.url
    origin = {"Origin": "https://app.example"}
    config = httpx.get(f"{url}/array/phc_Some-token_1/config", headers=origin)
    assert config.status_code == 200
    assert config.headers["access-control-allow-origin"] == "*"
    assert config.json() == {
        "token": "phc_Some-token_1",
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "sessionRecording": False,
        "heatmaps": False,
        "surveys": False,
        "siteApps": [],
    }
    script = httpx.get(f"{url}/array/phc_Some-token_1/config.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert orjson.dumps(config.json()).decode() in script.text
    assert 'c["phc_Some-token_1"]=' in script.text
    # A token that is no key is not echoed back.
    for path in ("/array/x%22%3Balert(1)/config.js", "/array/x%22%3Balert(1)/config"):
        assert httpx.get(f"{url}{path}").status_code == 404

    no_flags = {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
    }
    body = gzip.compress(b'{"token": "phc_x", "distinct_id": "p"}')
    for path in ("/flags/?v=2", "/flags?v=2", "/decide/?v=4", "/decide"):
        response = httpx.post(f"{url}{path}", content=body, headers={"Content-Type": "text/plain"})
        assert (response.status_code, response.json()) == (200, no_flags), path
