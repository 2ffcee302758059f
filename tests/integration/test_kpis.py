"""Product KPI gauges on the gateway's /metrics, for two projects in different timezones."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import Pipeline


def _event(kind: str, at: datetime, **fields: object) -> dict[str, object]:
    return {
        "type": kind,
        "messageId": str(uuid.uuid4()),
        "timestamp": at.isoformat(),
        **({"event": "Used"} if kind == "track" else {}),
        **fields,
    }


def _send(pipeline: Pipeline, write_key: str, events: list[dict[str, object]]) -> None:
    response = httpx.post(
        f"{pipeline.ingest.url}/v1/batch", json={"batch": events, "writeKey": write_key}
    )
    assert response.status_code == 200, response.text


def _active_users(pipeline: Pipeline) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{pipeline.gateway.url}/metrics").text
    return {
        (sample.labels["project"], sample.labels["window"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "pulse_active_users"
        for sample in family.samples
    }


def test_active_users_gauges_count_trailing_windows_per_project(pipeline: Pipeline) -> None:
    shop = pipeline.create_project("kpi-shop")  # UTC
    app = pipeline.create_project("kpi-app", timezone="Asia/Tokyo")
    now = datetime.now(UTC)
    shop_events = [
        _event("track", now, userId="a1"),
        _event("track", now - timedelta(minutes=5), userId="a1"),  # same person, same day
        _event("page", now, userId="a2"),
        _event("screen", now, anonymousId="device-3"),
        _event("track", now - timedelta(days=3), userId="a4"),  # 7d and 30d only
        _event("track", now - timedelta(days=10), userId="a5"),  # 30d only
        _event("track", now - timedelta(days=40), userId="a6"),  # outside every window
        _event("identify", now, userId="a7"),  # not activity
        _event("track", now, anonymousId="device-1"),
        # device-1 turns out to be a1: one person, counted once.
        _event("identify", now, userId="a1", anonymousId="device-1"),
    ]
    app_events = [
        _event("track", now, userId="b1"),
        _event("track", now, userId="b2"),
        _event("track", now - timedelta(days=6), userId="b3"),  # still inside 7 days
        _event("track", now - timedelta(days=29), userId="b4"),  # the 30th day back
    ]
    _send(pipeline, shop["write_key"], shop_events)
    _send(pipeline, app["write_key"], app_events)
    pipeline.wait_processed(shop["read_key"], len(shop_events))
    pipeline.wait_processed(app["read_key"], len(app_events))

    expected = {
        (str(shop["id"]), "1d"): 3.0,
        (str(shop["id"]), "7d"): 4.0,
        (str(shop["id"]), "30d"): 5.0,
        (str(app["id"]), "1d"): 2.0,
        (str(app["id"]), "7d"): 3.0,
        (str(app["id"]), "30d"): 4.0,
    }
    deadline = time.monotonic() + 15
    while True:
        seen = _active_users(pipeline)
        mine = {k: v for k, v in seen.items() if k in expected}
        if mine == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert mine == expected

    # The gauges agree with the read API's DAU/WAU/MAU for today in each project's timezone.
    for project, tz_today in ((shop, now.date()), (app, (now + timedelta(hours=9)).date())):
        day = pipeline.read(
            "/v1/activity", project["read_key"], **{"from": str(tz_today), "to": str(tz_today)}
        )["days"][0]
        pid = str(project["id"])
        assert (day["dau"], day["wau"], day["mau"]) == (
            expected[(pid, "1d")],
            expected[(pid, "7d")],
            expected[(pid, "30d")],
        )
    info = httpx.get(f"{pipeline.gateway.url}/metrics").text
    assert f'pulse_project_info{{name="kpi-app",project="{app["id"]}"}} 1.0' in info


def _retention(pipeline: Pipeline, project_id: int) -> dict[str, float]:
    text = httpx.get(f"{pipeline.gateway.url}/metrics").text
    return {
        sample.labels["day"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "pulse_retention_ratio"
        for sample in family.samples
        if sample.labels["project"] == str(project_id)
    }


def test_retention_ratio_gauges_use_yesterdays_returns(pipeline: Pipeline) -> None:
    project = pipeline.create_project("kpi-retention")  # UTC
    yesterday = datetime.now(UTC).replace(hour=12, minute=0, second=0) - timedelta(days=1)
    events = [
        # Day-1 cohort (first seen the day before yesterday): r1 came back yesterday, r2 not.
        _event("track", yesterday - timedelta(days=1), userId="r1"),
        _event("track", yesterday, userId="r1"),
        _event("track", yesterday - timedelta(days=1), userId="r2"),
        # Day-7 cohort: s1 came back yesterday.
        _event("track", yesterday - timedelta(days=7), userId="s1"),
        _event("track", yesterday, userId="s1"),
    ]
    _send(pipeline, project["write_key"], events)
    pipeline.wait_processed(project["read_key"], len(events))
    deadline = time.monotonic() + 15
    while _retention(pipeline, int(project["id"])) != {"1": 0.5, "7": 1.0}:
        assert time.monotonic() < deadline, _retention(pipeline, int(project["id"]))
        time.sleep(0.3)
