"""Sessions and paths end to end: a generated product through the official Segment client.

A few hundred persons visit on several days — a few visits a day, events 1 to 30 minutes apart
inside a visit (30 exactly too), the next visit 31 minutes to 4 hours later — browsing
anonymously, signing up (identify) and some on a second device (alias, sent last). 5% of events
are held back and sent after the rest, 3% are sent twice. Every day's session figures and the
top paths, from a start event and to a target event, must equal the oracle's.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from segment.analytics import Client

from tests.support import oracle
from tests.support.delivery import messy_order, send
from tests.support.services import Pipeline

START = datetime(2026, 9, 7, tzinfo=UTC)
DAYS = 5
PERSONS = 300
FLOW = ["home", "search", "view_item", "add_to_cart", "purchase"]


def _generate(rng: random.Random) -> list[oracle.SentEvent]:
    out: list[oracle.SentEvent] = []

    def emit(
        kind: str, actor: str, at: datetime, linked: str | None = None, name: str = ""
    ) -> None:
        out.append(oracle.SentEvent(str(uuid.uuid4()), kind, actor, at, linked, name or "viewed"))

    for n in range(PERSONS):
        device, user = f"anon-{n}-{uuid.uuid4().hex[:6]}", f"user-{n}"
        days = sorted(rng.sample(range(DAYS), rng.randint(1, DAYS)))
        signup_day = rng.choice(days) if rng.random() < 0.6 else None
        phone = f"phone-{n}" if signup_day is not None and rng.random() < 0.3 else None
        for day in days:
            at = START + timedelta(days=day, hours=rng.randint(1, 6), minutes=rng.randint(0, 59))
            known = signup_day is not None and day >= signup_day
            for visit in range(rng.randint(1, 3)):
                actor = phone if phone and known and visit == 2 else (user if known else device)
                step = rng.randrange(len(FLOW) - 1)
                for _ in range(rng.randint(1, 5)):
                    if rng.random() < 0.25:
                        emit("page", actor, at)
                    else:
                        emit("track", actor, at, name=FLOW[step])
                        step = min(len(FLOW) - 1, max(0, step + rng.choice([-1, 1, 1, 0])))
                    at += timedelta(minutes=rng.choice([1, 2, 5, 10, 20, 30]))
                at += timedelta(minutes=rng.choice([31, 45, 90, 240]))
            if day == signup_day:
                emit("identify", user, at, linked=device)
        if phone:
            emit("alias", user, START + timedelta(days=DAYS - 1, hours=23), linked=phone)
    return sorted(out, key=lambda e: e.timestamp)


def test_sessions_and_paths_of_a_generated_product_equal_the_oracle(pipeline: Pipeline) -> None:
    project = pipeline.create_project("sessions-product")
    rng = random.Random(907)
    events = _generate(rng)
    order, duplicates = messy_order(rng, events)  # 5% late, 3% sent twice

    errors: list[object] = []
    client = Client(
        project["write_key"],
        host=pipeline.ingest.url,
        max_queue_size=len(order) + 1,
        on_error=lambda error, batch: errors.append(error),
        upload_size=250,
    )
    for e in order:
        send(client, e)
    client.flush()
    client.join()
    assert errors == []
    key = project["read_key"]
    status = pipeline.wait_processed(key, len(events), timeout=120)
    assert status["events_processed"] == len(events)

    first, last = START.date() - timedelta(days=1), START.date() + timedelta(days=DAYS)
    query = {"from": first.isoformat(), "to": last.isoformat()}
    days = pipeline.read("/v1/sessions", key, **query)["days"]
    expected = oracle.sessions(events, first, last)
    assert days == expected
    # The product is what it claims to be: several visits a day, bounces and long sessions.
    assert sum(d["sessions"] for d in expected) > 2 * PERSONS
    assert all(0 < d["bounce_rate"] < 1 for d in expected if d["sessions"])

    for params, anchor, after in [
        ({"start_event": "search", "depth": "3"}, "search", True),
        ({"start_event": "$page", "depth": "6", "limit": "5"}, "$page", True),
        ({"end_event": "purchase", "depth": "4"}, "purchase", False),
    ]:
        depth, limit = int(params["depth"]), int(params.get("limit", "20"))
        edges = pipeline.read("/v1/paths", key, **query, **params)["edges"]
        assert edges == oracle.paths(events, first, last, anchor, after, depth, limit), params
        assert edges and max(e["step"] for e in edges) == depth

    csv = httpx.get(
        f"{pipeline.gateway.url}/v1/paths",
        params={**query, "end_event": "purchase", "format": "csv"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert csv.status_code == 200
    assert csv.text.splitlines()[0] == "from,to,step,persons"
