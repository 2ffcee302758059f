"""Product KPI gauges on the gateway's /metrics, for two projects in different timezones."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.common.events import EventRecord
from services.common.funnels import FunnelDefinition
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.services import Pipeline
from tests.support.store_db import Db


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


# ---- funnel conversion ---------------------------------------------------------------------


def _funnel_gauges(pipeline: Pipeline) -> tuple[dict[str, float], dict[str, str]]:
    """{funnel id: ratio} and {funnel id: name} of pulse_funnel_conversion_ratio / _info."""
    text = httpx.get(f"{pipeline.gateway.url}/metrics").text
    ratios, names = {}, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == "pulse_funnel_conversion_ratio":
                ratios[sample.labels["funnel"]] = sample.value
            elif family.name == "pulse_funnel_info":
                names[sample.labels["funnel"]] = sample.labels["name"]
    return ratios, names


class _History:
    """Track events (and identify links) of one project, at local times of its timezone."""

    def __init__(self, project_id: int, timezone: str) -> None:
        self.project_id = project_id
        self.zone = ZoneInfo(timezone)
        self.events: list[EventRecord] = []

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, clock(hour, minute), self.zone).astimezone(UTC)

    def track(self, who: str, event: str, day: date, hour: int, minute: int = 0) -> None:
        anonymous = who.startswith("device-")
        self.events.append(
            EventRecord(
                project_id=self.project_id,
                message_id=str(uuid.uuid4()),
                type="track",
                event=event,
                timestamp=self.at(day, hour, minute),
                received_at=datetime.now(UTC),
                user_id=None if anonymous else who,
                anonymous_id=who if anonymous else None,
            )
        )

    def link(self, user_id: str, anonymous_id: str, day: date) -> None:
        self.events.append(
            EventRecord(
                project_id=self.project_id,
                message_id=str(uuid.uuid4()),
                type="identify",
                user_id=user_id,
                anonymous_id=anonymous_id,
                timestamp=self.at(day, 23, 59),
                received_at=datetime.now(UTC),
            )
        )


async def _define(db: Db, project_id: int, name: str, **spec: object) -> str:
    definition = FunnelDefinition.model_validate({"name": name, **spec})
    funnel_id = await db.pool.fetchval(
        "INSERT INTO funnels (project_id, name, definition, backfill) "
        "VALUES ($1, $2, $3::jsonb, 'complete') RETURNING id",
        project_id,
        name,
        definition.model_dump_json(),
    )
    return str(funnel_id)


async def _clear_of_midnight(*timezones: str) -> None:
    """Wait while a day boundary is under a minute away in any of the timezones: the expected
    values below are worked out for one 'yesterday'."""
    while True:
        now = datetime.now(UTC)
        local = [now.astimezone(ZoneInfo(tz)) for tz in timezones]
        if all(t.hour < 23 or t.minute < 59 for t in local):
            return
        await asyncio.sleep(5)


async def test_funnel_conversion_gauges_count_best_attempts_of_the_last_7_complete_days(
    pipeline: Pipeline, db: Db
) -> None:
    await _clear_of_midnight("UTC", "Asia/Tokyo")
    shop = pipeline.create_project("kpi-funnels-shop")  # UTC
    app = pipeline.create_project("kpi-funnels-app", timezone="Asia/Tokyo")
    shop_id, app_id = int(shop["id"]), int(app["id"])
    steps3 = [{"event": "view"}, {"event": "cart"}, {"event": "buy"}]
    checkout = await _define(db, shop_id, "Checkout", steps=steps3, window_seconds=86400)
    # Same name in both projects: the label is the id, and the info gauge tells them apart.
    again = await _define(db, shop_id, "Checkout", steps=steps3[1:], window_seconds=3600)
    ghost = await _define(
        db, shop_id, "Nobody", steps=[{"event": "never"}, {"event": "buy"}], window_seconds=60
    )
    pay = await _define(
        db,
        app_id,
        "Open to pay",
        steps=[{"event": "open"}, {"event": "pay"}],
        window_seconds=7200,
    )

    # Shop (UTC): range = the 7 days from yesterday - 6 to yesterday.
    y = datetime.now(UTC).date() - timedelta(days=1)
    shop_events = _History(shop_id, "UTC")
    for name, minute in (("view", 0), ("cart", 10), ("buy", 20)):
        shop_events.track("p1", name, y - timedelta(days=2), 12, minute)  # converts
    shop_events.track("p2", "view", y - timedelta(days=3), 12)
    shop_events.track("p2", "cart", y - timedelta(days=3), 13)  # depth 2
    shop_events.track("p3", "view", y, 22)  # depth 1 in the range ...
    for name, minute in (("view", 0), ("cart", 1), ("buy", 2)):
        shop_events.track("p3", name, y - timedelta(days=9), 9, minute)  # ... converted before it
    for name, minute in (("view", 0), ("cart", 1), ("buy", 2)):
        shop_events.track("p4", name, y + timedelta(days=1), 0, minute)  # today: not complete
        shop_events.track("p5", name, y - timedelta(days=7), 10, minute)  # a day too early
    shop_events.track("p5", "view", y - timedelta(days=6), 10)  # first day of the range: depth 1
    for name, minute in (("view", 0), ("cart", 5), ("buy", 9)):
        shop_events.track("p5", name, y - timedelta(days=5), 10, minute)  # best attempt: converts
    # An anonymous visit, then the person signs in and finishes: one person, converted.
    shop_events.track("device-6", "view", y - timedelta(days=4), 20)
    shop_events.link("u6", "device-6", y - timedelta(days=4))
    shop_events.track("u6", "cart", y - timedelta(days=4), 21)
    shop_events.track("u6", "buy", y - timedelta(days=4), 22)
    # Entered: p1, p2, p3, p5, u6; last step: p1, p5, u6. Second funnel (cart -> buy within an
    # hour): p1, p2, p5, u6 entered (p3 and p4 outside the range); p1, p5 and u6 bought in time.

    # App (Tokyo, UTC+9): yesterday and the range follow Tokyo's calendar.
    ty = datetime.now(ZoneInfo("Asia/Tokyo")).date() - timedelta(days=1)
    app_events = _History(app_id, "Asia/Tokyo")
    app_events.track("q1", "open", ty, 10)
    app_events.track("q1", "pay", ty, 10, 30)  # converts
    app_events.track("q2", "open", ty - timedelta(days=6), 0, 30)  # UTC: the day before
    app_events.track("q3", "open", ty + timedelta(days=1), 0, 30)  # UTC: still "yesterday"
    app_events.track("q3", "pay", ty + timedelta(days=1), 1)
    app_events.track("q4", "open", ty - timedelta(days=7), 23, 30)  # UTC: inside the range
    app_events.track("q4", "pay", ty - timedelta(days=7), 23, 45)
    app_events.track("q5", "open", ty - timedelta(days=2), 9)
    app_events.track("q5", "pay", ty - timedelta(days=2), 12)  # after the 2-hour window
    # Entered: q1, q2, q5; converted: q1.

    store = Store(db.pool, "kpi-funnel-tests")
    for history in (shop_events, app_events):
        ordered = sorted(history.events, key=lambda e: e.timestamp)
        for i in range(0, len(ordered), 3):  # several batches: later steps complete attempts
            await store.apply(ParsedBatch(events=ordered[i : i + 3]), {})

    expected = {checkout: 3 / 5, again: 3 / 4, pay: 1 / 3}
    names = {checkout: "Checkout", again: "Checkout", ghost: "Nobody", pay: "Open to pay"}
    deadline = time.monotonic() + 15
    while True:
        ratios, info = await asyncio.to_thread(_funnel_gauges, pipeline)
        mine = {k: v for k, v in ratios.items() if k in names}
        if mine == expected and {k: info.get(k) for k in names} == names:
            break
        assert time.monotonic() < deadline, (mine, info)
        await asyncio.sleep(0.3)
    assert ghost not in ratios  # nobody entered: no ratio, but its name is known

    # The same counting as the read API over the 7 days: last step's users / first step's.
    for project, funnel, last_day in ((shop, checkout, y), (shop, again, y), (app, pay, ty)):
        report = pipeline.read(
            f"/v1/funnels/{funnel}",
            project["read_key"],
            **{"from": str(last_day - timedelta(days=6)), "to": str(last_day)},
        )
        users = [step["users"] for step in report["steps"]]
        assert users[-1] / users[0] == expected[funnel], (funnel, users)
