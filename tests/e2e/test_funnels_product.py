"""Funnels and retention end to end: a generated shop through the official Segment client.

Four hundred persons over three weeks browse anonymously, some sign up (identify, with a
`plan` trait their SDK attaches from then on; a third of them sign up through a server, which
sends the `plan` trait with the identify only, so breakdowns take it from there), add items to
their cart and purchase — some
within 7 days of signing up, some later, some never; a few purchase on a second device linked
by an alias sent last; some contact support between cart and purchase. 5% of events are held
back and sent after the rest, 3% are sent twice.

A funnel defined before the data arrives (maintained as events stream in) and the same funnel
defined after it has all been processed (backfilled from the archive) must both equal the
oracle's answers, as must their breakdown by plan, conversion by entry day, and retention.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from segment.analytics import Client

from services.common.funnels import FunnelDefinition
from tests.support import funnel_oracle, oracle
from tests.support.delivery import messy_order
from tests.support.funnel_oracle import FunnelEvent
from tests.support.services import Pipeline

START = datetime(2026, 8, 3, tzinfo=UTC)
DAYS = 21
PERSONS = 400

SHOP_FUNNEL: dict[str, Any] = {
    "name": "Sign-up to purchase",
    "steps": [
        {"event": "Signed Up"},
        {"event": "Added To Cart", "where": [{"property": "price", "op": "gte", "value": 10}]},
        {"event": "Order Completed"},
    ],
    "window_seconds": 7 * 86400,
    "exclusions": [{"event": "Contacted Support", "from_step": 2, "to_step": 3}],
}
VIP_FUNNEL: dict[str, Any] = {
    "name": "Any order to VIP",
    "steps": [
        {"event": "Signed Up"},
        {"event": "Order Completed", "where": [{"property": "plan", "op": "eq", "value": "vip"}]},
        {"event": "Added To Cart"},
    ],
    "window_seconds": 14 * 86400,
    "order": "any",
}


def _generate(rng: random.Random) -> list[FunnelEvent]:
    out: list[FunnelEvent] = []

    def emit(kind: str, actor: str, at: datetime, **fields: Any) -> None:
        # Whole seconds plus noise well inside one: rounding never decides a window edge here.
        at = at.replace(microsecond=rng.randrange(0, 400_000))
        out.append(FunnelEvent(str(uuid.uuid4()), kind, actor, at, **fields))

    for n in range(PERSONS):
        device, user = f"anon-{n}-{uuid.uuid4().hex[:6]}", f"user-{n}"
        plan = rng.choice(["free", "free", "vip"])
        at = START + timedelta(days=rng.randrange(DAYS - 3), hours=rng.randint(6, 20))
        for _ in range(rng.randint(1, 4)):  # anonymous browsing
            emit("page", device, at, event="Home")
            at += timedelta(minutes=rng.randint(1, 50))
        if rng.random() < 0.3:
            continue  # never signs up
        traits = {"plan": plan}
        if rng.random() < 0.33:  # server side: the trait comes with the identify only
            emit("identify", user, at, linked=device, sets=traits)
            emit("track", user, at + timedelta(seconds=1), event="Signed Up")
        else:
            emit(
                "track", device, at, event="Signed Up", properties={"source": "web"}, traits=traits
            )
            emit("identify", user, at + timedelta(seconds=1), linked=device)
        phone = f"phone-{n}" if rng.random() < 0.15 else None
        # Then days of activity; the purchase lands inside or outside the 7-day window.
        for _ in range(rng.randint(0, 3)):
            at += timedelta(days=rng.choice([0, 1, 2, 5, 8]), hours=rng.randint(0, 5))
            price = rng.choice([5, 10, 12.5, 40])
            emit(
                "track", user, at, event="Added To Cart", properties={"price": price}, traits=traits
            )
            if rng.random() < 0.15:
                emit("track", user, at + timedelta(minutes=5), event="Contacted Support")
            if rng.random() < 0.6:
                buyer = phone or user
                later = timedelta(hours=rng.choice([1, 20, 100, 170, 200]))
                emit(
                    "track",
                    buyer,
                    at + later,
                    event="Order Completed",
                    properties={"plan": plan, "revenue": price},
                    traits={} if buyer == phone else traits,
                )
        if phone:
            emit("alias", user, START + timedelta(days=DAYS, hours=1), linked=phone)
        # Comebacks for retention.
        for day in rng.sample(range(1, 15), rng.randint(0, 4)):
            emit("page", user, at + timedelta(days=day), event="Home", traits=traits)
    return sorted(out, key=lambda e: e.timestamp)


def _send(client: Client, e: FunnelEvent) -> None:
    if e.type == "identify":
        client.identify(
            user_id=e.person,
            anonymous_id=e.linked,
            traits=e.sets,
            timestamp=e.timestamp,
            message_id=e.message_id,
        )
        return
    if e.type == "alias":
        client.alias(
            previous_id=e.linked, user_id=e.person, timestamp=e.timestamp, message_id=e.message_id
        )
        return
    ids = {"user_id": e.person} if e.person.startswith("user-") else {"anonymous_id": e.person}
    common = {"timestamp": e.timestamp, "message_id": e.message_id, "context": {"traits": e.traits}}
    if e.type == "page":
        client.page(name=e.event, properties=e.properties, **common, **ids)
    else:
        client.track(event=e.event, properties=e.properties, **common, **ids)


def _post_funnel(pipeline: Pipeline, key: str, spec: dict[str, Any]) -> int:
    response = httpx.post(
        f"{pipeline.gateway.url}/v1/funnels",
        json=spec,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _wait_backfilled(pipeline: Pipeline, key: str, funnel_id: int, query: dict[str, str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if pipeline.read(f"/v1/funnels/{funnel_id}", key, **query)["backfill"] == "complete":
            return
        time.sleep(0.3)
    raise AssertionError(f"funnel {funnel_id} still backfilling after 120 s")


def _range(first: date, last: date) -> dict[str, str]:
    return {"from": first.isoformat(), "to": last.isoformat()}


def test_funnels_and_retention_of_a_generated_shop_equal_the_oracle(pipeline: Pipeline) -> None:
    project = pipeline.create_project("funnel-shop")
    tz = "UTC"  # the property tests cover other timezones
    key = project["read_key"]
    streamed = {
        name: _post_funnel(pipeline, key, spec)
        for name, spec in [("shop", SHOP_FUNNEL), ("vip", VIP_FUNNEL)]
    }

    rng = random.Random(2026)
    events = _generate(rng)
    order, _ = messy_order(rng, events)  # type: ignore[arg-type]  # 5% late, 3% sent twice
    errors: list[object] = []
    client = Client(
        project["write_key"],
        host=pipeline.ingest.url,
        max_queue_size=len(order) + 1,
        on_error=lambda error, batch: errors.append(error),
        upload_size=250,
    )
    for e in order:
        _send(client, e)  # type: ignore[arg-type]
    client.flush()
    client.join()
    assert errors == []
    status = pipeline.wait_processed(key, len(events), timeout=180)
    assert status["events_processed"] == len(events)

    backfilled = {
        name: _post_funnel(pipeline, key, spec)
        for name, spec in [("shop", SHOP_FUNNEL), ("vip", VIP_FUNNEL)]
    }
    whole = _range(START.date() - timedelta(days=1), START.date() + timedelta(days=DAYS + 14))
    for funnel_id in backfilled.values():
        _wait_backfilled(pipeline, key, funnel_id, whole)

    for name, spec in [("shop", SHOP_FUNNEL), ("vip", VIP_FUNNEL)]:
        definition = FunnelDefinition.model_validate(spec)
        for first, last in [
            (START.date(), START.date() + timedelta(days=DAYS + 14)),
            (START.date() + timedelta(days=3), START.date() + timedelta(days=9)),
            (START.date() + timedelta(days=5), START.date() + timedelta(days=5)),
        ]:
            query = _range(first, last)
            expected = funnel_oracle.funnel_steps(events, definition, first, last, tz)
            expected_days = funnel_oracle.entry_days(events, definition, first, last, tz)
            for funnel_id in (streamed[name], backfilled[name]):
                report = pipeline.read(f"/v1/funnels/{funnel_id}", key, **query)
                assert report["backfill"] == "complete"
                assert report["steps"] == expected, (name, query, funnel_id)
                assert report["entry_days"] == expected_days, (name, query, funnel_id)
            split = pipeline.read(
                f"/v1/funnels/{backfilled[name]}", key, **query, breakdown="plan"
            )["breakdown"]
            assert split == funnel_oracle.funnel_breakdown(
                events, definition, first, last, "plan", tz, trait_keys=["plan"]
            ), (name, query)

    # The shop is what it claims: converting, dropping out, late purchases outside the window.
    shop = funnel_oracle.funnel_steps(
        events,
        FunnelDefinition.model_validate(SHOP_FUNNEL),
        START.date(),
        START.date() + timedelta(days=DAYS + 14),
        tz,
    )
    assert shop[0]["users"] > 200 and 0 < shop[2]["users"] < shop[1]["users"] < shop[0]["users"]
    # Server-side sign-ups: their plan comes from the identify trait, not the event.
    everything = (START.date(), START.date() + timedelta(days=DAYS + 14))
    shop_by_trait = funnel_oracle.Evaluation(
        events, FunnelDefinition.model_validate(SHOP_FUNNEL), tz, ["plan"]
    ).trait_values(*everything, "plan")
    assert shop_by_trait > 50

    sent = [e.sent() for e in events]
    for params in [
        {"length": "14", "period": "day", "mode": "on"},
        {"length": "3", "period": "week", "mode": "on_or_after", "start_event": "Signed Up"},
    ]:
        first, last = START.date(), START.date() + timedelta(days=DAYS)
        cohorts = pipeline.read("/v1/retention", key, **_range(first, last), **params)["cohorts"]
        assert cohorts == oracle.retention(
            sent,
            first,
            last,
            int(params["length"]),
            params["period"],
            params["mode"],
            params.get("start_event"),
        ), params
