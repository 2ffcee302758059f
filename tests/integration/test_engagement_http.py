"""`/v1/live`, `/v1/sessions` and `/v1/paths` over real HTTP: the live view's windows and
minutes, identity-merged persons, auth, parameter errors, CSV."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from tests.support.services import Pipeline


def _get(pipeline: Pipeline, path: str, key: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{pipeline.gateway.url}{path}", params=params, headers={"Authorization": f"Bearer {key}"}
    )


def test_live_counts_merged_persons_by_event_time(pipeline: Pipeline) -> None:
    project = pipeline.create_project("live")
    now = datetime.now(UTC).replace(microsecond=0)
    tag = uuid.uuid4().hex[:6]

    def track(at: datetime, **ids: str) -> dict[str, object]:
        return {"type": "track", "event": "tick", "timestamp": at.isoformat(), **ids}

    ago = {minutes: now - timedelta(minutes=minutes) for minutes in (2, 3, 10, 50, 90)}
    batch = [
        # One person on two ids (identify merges them), active 2 and 3 minutes ago.
        track(ago[2], anonymousId=f"a-{tag}"),
        track(ago[3], userId=f"u-{tag}"),
        {"type": "identify", "userId": f"u-{tag}", "anonymousId": f"a-{tag}"},
        track(ago[10], userId=f"v-{tag}"),
        track(ago[50], userId=f"w-{tag}"),
        track(ago[90], userId=f"x-{tag}"),  # outside the hour
        {"type": "identify", "userId": f"y-{tag}"},  # not activity
    ]
    response = httpx.post(
        f"{pipeline.ingest.url}/v1/batch", json={"batch": batch, "writeKey": project["write_key"]}
    )
    assert response.status_code == 200
    pipeline.wait_processed(project["read_key"], len(batch))

    live = pipeline.read("/v1/live", project["read_key"])
    assert live["persons_5m"] == 1
    assert live["persons_30m"] == 2
    minutes = [(datetime.fromisoformat(m["minute"]), m["events"]) for m in live["minutes"]]
    assert len(minutes) == 60
    assert [m for m, _ in minutes] == sorted(m for m, _ in minutes)
    assert (
        minutes[-1][0]
        <= datetime.fromisoformat(live["as_of"])
        < minutes[-1][0] + timedelta(minutes=1)
    )
    expected = Counter(
        ago[k].replace(second=0)
        for k in (2, 3, 10, 50)
        if ago[k].replace(second=0) >= minutes[0][0]
    )
    assert {m: n for m, n in minutes if n} == dict(expected)
    assert set(live["freshness"]) == {"processed_through", "lag"}

    csv = _get(pipeline, "/v1/live", project["read_key"], format="csv")
    assert csv.status_code == 200
    assert csv.text.splitlines()[0] == "minute,events"
    assert len(csv.text.splitlines()) == 61


def test_sessions_and_paths_parameters_and_auth(pipeline: Pipeline) -> None:
    project = pipeline.create_project("engagement-params")
    key = project["read_key"]
    span = {"from": "2026-01-01", "to": "2026-01-03"}
    for path in ("/v1/sessions", "/v1/live"):
        assert _get(pipeline, path, "nope", **span).status_code == 401
    assert _get(pipeline, "/v1/paths", "nope", start_event="a", **span).status_code == 401
    for params, name in [
        ({}, "start_event"),
        ({"start_event": "a", "end_event": "b"}, "start_event"),
        ({"start_event": "a", "depth": "7"}, "depth"),
        ({"start_event": "a", "depth": "0"}, "depth"),
    ]:
        bad = _get(pipeline, "/v1/paths", key, **span, **params)
        assert bad.status_code == 422, params
        assert name in bad.json()["message"], params
    # A breakdown /v1/paths does not offer is named, not ignored (params.py).
    unsplit = _get(pipeline, "/v1/paths", key, start_event="a", breakdown="plan", **span)
    assert unsplit.status_code == 422
    assert unsplit.json()["message"].startswith("breakdown: not a parameter of /v1/paths")

    empty = _get(pipeline, "/v1/sessions", key, **span).json()
    assert [d["date"] for d in empty["days"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all(d["sessions"] == 0 and d["median_seconds"] is None for d in empty["days"])
    csv = _get(pipeline, "/v1/sessions", key, format="csv", **span)
    assert csv.text.splitlines()[0] == (
        "date,sessions,median_seconds,mean_seconds,events_per_session,bounce_rate"
    )
    assert _get(pipeline, "/v1/paths", key, end_event="b", **span).json()["edges"] == []
