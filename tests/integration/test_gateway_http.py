"""Gateway over real HTTP: read-key auth, admin API, parameters, timezone days, late events."""

from __future__ import annotations

import uuid

import httpx

from tests.support.services import ADMIN_TOKEN, Pipeline


def _send(pipeline: Pipeline, write_key: str, events: list[dict[str, object]]) -> None:
    response = httpx.post(
        f"{pipeline.ingest.url}/v1/batch", json={"batch": events, "writeKey": write_key}
    )
    assert response.status_code == 200, response.text


def test_reads_need_a_read_key_and_admin_needs_the_token(pipeline: Pipeline) -> None:
    project = pipeline.create_project("gw-auth")
    url = f"{pipeline.gateway.url}/v1/activity?from=2026-01-01&to=2026-01-02"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    # A write key is public: it must not read.
    wrong = httpx.get(url, headers={"Authorization": f"Bearer {project['write_key']}"})
    assert wrong.status_code == 401
    assert set(wrong.json()) == {"code", "message"}
    assert httpx.get(f"{pipeline.gateway.url}/v1/projects").status_code == 401
    listed = httpx.get(
        f"{pipeline.gateway.url}/v1/projects", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert project["id"] in [p["id"] for p in listed.json()]


def test_bad_parameters_are_422_naming_the_parameter(pipeline: Pipeline) -> None:
    project = pipeline.create_project("gw-params")
    headers = {"Authorization": f"Bearer {project['read_key']}"}
    for path, query, name in [
        ("activity", "from=2026-13-01&to=2026-01-02", "from"),
        ("activity", "from=2026-01-05&to=2026-01-02", "to"),
        ("activity", "to=2026-01-02", "from"),
        ("lifecycle", "from=0001-01-01&to=0001-01-01&period=month", "from"),  # was a 500
        ("activity", "from=2026-01-01&to=9999-12-31", "to"),
        ("paths", "from=2026-01-01&to=2026-01-02&start_event=a%00b", "start_event"),  # was a 500
    ]:
        response = httpx.get(f"{pipeline.gateway.url}/v1/{path}?{query}", headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(name)
    nul = httpx.post(
        f"{pipeline.gateway.url}/v1/projects",
        json={"name": "a\x00b"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert nul.status_code == 422, nul.text  # was a 500: PostgreSQL cannot store a NUL
    assert nul.json()["message"].startswith("name")
    funnel = httpx.post(
        f"{pipeline.gateway.url}/v1/funnels",
        json={"name": "f", "steps": [{"event": "a"}, {"event": "b\x00"}], "window_seconds": 60},
        headers=headers,
    )
    assert funnel.status_code == 422, funnel.text  # was a 500 too
    assert funnel.json()["message"].startswith("steps.1.event")
    bad_tz = httpx.post(
        f"{pipeline.gateway.url}/v1/projects",
        json={"name": "x", "timezone": "Mars/Olympus"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert bad_tz.status_code == 422
    assert "timezone" in bad_tz.json()["message"]


def test_days_follow_the_project_timezone_and_late_events_move_first_days(
    pipeline: Pipeline,
) -> None:
    project = pipeline.create_project("gw-tz", timezone="America/New_York")

    def track(at: str) -> dict[str, object]:
        return {
            "type": "track",
            "event": "x",
            "userId": "p",
            "timestamp": at,
            "messageId": str(uuid.uuid4()),
        }

    # 02:00 UTC on Mar 10 is Mar 9 evening in New York.
    _send(pipeline, project["write_key"], [track("2026-03-10T02:00:00Z")])
    pipeline.wait_processed(project["read_key"], 1)
    # A late event, days older, makes Mar 5 the person's first day.
    _send(pipeline, project["write_key"], [track("2026-03-05T15:00:00Z")])
    pipeline.wait_processed(project["read_key"], 2)
    days = pipeline.read(
        "/v1/activity", project["read_key"], **{"from": "2026-03-05", "to": "2026-03-10"}
    )["days"]
    by_date = {d["date"]: d for d in days}
    assert by_date["2026-03-09"]["dau"] == 1
    assert by_date["2026-03-10"]["dau"] == 0
    assert [d["new_users"] for d in days] == [1, 0, 0, 0, 0, 0]
    assert by_date["2026-03-09"]["wau"] == 1 and by_date["2026-03-10"]["wau"] == 1


def test_activity_as_csv(pipeline: Pipeline) -> None:
    project = pipeline.create_project("gw-csv")
    response = httpx.get(
        f"{pipeline.gateway.url}/v1/activity",
        params={"from": "2026-01-01", "to": "2026-01-03", "format": "csv"},
        headers={"Authorization": f"Bearer {project['read_key']}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "date,dau,wau,mau,new_users,events,stickiness"
    assert lines[1:] == [f"2026-01-0{d},0,0,0,0,0," for d in (1, 2, 3)]


def test_activity_breakdown_by_plan(pipeline: Pipeline) -> None:
    project = pipeline.create_project("gw-breakdown")
    events: list[dict[str, object]] = [
        {
            "type": "track",
            "event": "x",
            "userId": "a",
            "properties": {"plan": "vip"},
            "timestamp": "2026-04-02T10:00:00Z",
            "messageId": str(uuid.uuid4()),
        },
        {
            "type": "page",
            "userId": "b",
            "context": {"traits": {"plan": "free"}},
            "timestamp": "2026-04-02T11:00:00Z",
            "messageId": str(uuid.uuid4()),
        },
        {
            "type": "track",
            "event": "x",
            "userId": "c",
            "timestamp": "2026-04-02T12:00:00Z",
            "messageId": str(uuid.uuid4()),
        },
    ]
    _send(pipeline, project["write_key"], events)
    pipeline.wait_processed(project["read_key"], 3)
    query = {"from": "2026-04-02", "to": "2026-04-02", "breakdown": "plan"}
    got = pipeline.read("/v1/activity", project["read_key"], **query)
    assert got["days"][0]["dau"] == 3
    # c sent no plan: the null group, last (an empty cell in CSV)
    assert [(s["value"], s["days"][0]["dau"]) for s in got["breakdown"]] == [
        ("free", 1),
        ("vip", 1),
        (None, 1),
    ]
    csv = httpx.get(
        f"{pipeline.gateway.url}/v1/activity",
        params={**query, "format": "csv"},
        headers={"Authorization": f"Bearer {project['read_key']}"},
    )
    assert csv.text.splitlines() == [
        "value,date,dau,wau,mau,events",
        "free,2026-04-02,1,1,1,1",
        "vip,2026-04-02,1,1,1,1",
        ",2026-04-02,1,1,1,1",
    ]
    untracked = httpx.get(
        f"{pipeline.gateway.url}/v1/activity",
        params={**query, "breakdown": "country"},
        headers={"Authorization": f"Bearer {project['read_key']}"},
    )
    assert untracked.status_code == 422
    assert untracked.json()["message"].startswith("breakdown")


def _requests_counted(metrics: str, route: str, status: str) -> float:
    prefix = f'pulse_http_requests_total{{method="GET",route="{route}",status="{status}"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_requests_are_counted_by_route_template_and_status(pipeline: Pipeline) -> None:
    project = pipeline.create_project("gw-request-metrics")
    headers = {"Authorization": f"Bearer {project['read_key']}"}
    url = f"{pipeline.gateway.url}/v1/activity?from=2026-01-01&to=2026-01-02"
    metrics_url = f"{pipeline.gateway.url}/metrics"
    before = httpx.get(metrics_url).text

    first = httpx.get(url, headers=headers)
    assert first.status_code == 200
    again = httpx.get(url, headers={**headers, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{pipeline.gateway.url}/v1/nowhere", headers=headers).status_code == 404

    after = httpx.get(metrics_url).text
    for route, status in [
        ("/v1/activity", "200"),
        ("/v1/activity", "304"),
        ("/v1/activity", "401"),
        ("unmatched", "404"),
    ]:
        counted = _requests_counted(after, route, status) - _requests_counted(before, route, status)
        assert counted == 1, (route, status)
    assert 'pulse_http_request_duration_seconds_count{method="GET",route="/v1/activity"}' in after
