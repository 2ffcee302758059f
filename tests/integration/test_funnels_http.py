"""`/v1/funnels` over real HTTP: definitions (create, list, read, delete), auth, 422s, the counting
rules of docs/funnels.md, breakdown values, entry days, CSV, ETag/304 and cache validity.

The gateway runs alone here (no metrics service), on a database of the module's own, and the
funnels' `funnel_attempts` rows are written with SQL: this tests the gateway's reading of them,
with numbers worked out by hand, whatever writes them.
"""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.metrics.funnels import step_counts
from tests.support.services import ADMIN_TOKEN, ServiceProcess
from tests.support.store_db import Db

Json = dict[str, Any]

# The shared pipeline's metrics service must not complete these funnels behind the tests.
pytestmark = pytest.mark.private_db


@pytest.fixture(scope="module")
def gateway(stack_env: dict[str, str], db: Db) -> Iterator[ServiceProcess]:
    name = "funnels-http"
    service = ServiceProcess(
        "gateway",
        {
            **stack_env,
            "DATABASE_URL": db.url,
            "PULSE_ADMIN_TOKEN": ADMIN_TOKEN,
            "PULSE_EVENTS_TOPIC": f"{name}.events",
            "PULSE_REJECTED_TOPIC": f"{name}.rejected",
            "PULSE_DLQ_TOPIC": f"{name}.dlq",
            "PULSE_CONSUMER_GROUP": f"{name}.metrics",
            "PULSE_PROJECT_CACHE_SECONDS": "0.2",
        },
    )
    service.start()
    yield service
    service.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def http(gateway: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        yield client


async def new_project(http: httpx.AsyncClient) -> Json:
    response = await http.post(
        "/v1/projects",
        json={"name": f"funnels-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    await asyncio.sleep(0.5)  # the gateway's key cache refreshes every 0.2 s here
    project: Json = response.json()
    return project


def auth(project: Json) -> dict[str, str]:
    return {"Authorization": f"Bearer {project['read_key']}"}


def definition(*events: str, **extra: Any) -> Json:
    return {"name": "f", "steps": [{"event": e} for e in events], "window_seconds": 3600, **extra}


async def create(http: httpx.AsyncClient, project: Json, body: Json) -> Json:
    response = await http.post("/v1/funnels", json=body, headers=auth(project))
    assert response.status_code == 201, response.text
    created: Json = response.json()
    return created


async def report(
    http: httpx.AsyncClient, project: Json, funnel_id: int, start: str, stop: str, **params: str
) -> Json:
    response = await http.get(
        f"/v1/funnels/{funnel_id}",
        params={"from": start, "to": stop, **params},
        headers=auth(project),
    )
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


Attempt = tuple[str, date, int, int, list[int], Any]  # person, day, hour, depth, seconds, props


async def insert_attempts(db: Db, funnel_id: int, attempts: list[Attempt]) -> None:
    """Rows as the metrics service keeps them: each is a person's best attempt of that day, and
    the step counts the gateway reads, from them."""
    await db.pool.executemany(
        "INSERT INTO funnel_attempts (funnel_id, person_id, day, entry_ts, depth, seconds, props)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        [
            (
                funnel_id,
                person,
                day,
                datetime(day.year, day.month, day.day, hour, tzinfo=UTC),
                depth,
                seconds,
                None if props is None else json.dumps(props),
            )
            for person, day, hour, depth, seconds, props in attempts
        ],
    )
    async with db.pool.acquire() as conn:
        await step_counts.refill(conn, funnel_id)


def step_figures(steps: list[Json]) -> list[tuple[Any, ...]]:
    return [
        (
            s["users"],
            s["conversion_from_start"],
            s["conversion_from_previous"],
            s["median_seconds_to_convert"],
        )
        for s in steps
    ]


async def test_create_list_read_and_delete(http: httpx.AsyncClient) -> None:
    project = await new_project(http)
    assert (await http.get("/v1/funnels", headers=auth(project))).json() == {"funnels": []}
    body = {
        "name": "Sign-up to purchase",
        "steps": [
            {"event": "Signed Up"},
            {"event": "Added To Cart", "where": [{"property": "price", "op": "gte", "value": 10}]},
            {"event": "Order Completed"},
        ],
        "window_seconds": 604800,
        "exclusions": [{"event": "Contacted Support", "from_step": 1, "to_step": 3}],
    }
    created = await create(http, project, body)
    assert set(created) == {
        "id",
        "name",
        "steps",
        "window_seconds",
        "order",
        "exclusions",
        "backfill",
        "created_at",
    }
    assert created["name"] == "Sign-up to purchase"
    assert created["steps"][0] == {"event": "Signed Up", "where": []}
    assert created["steps"][1]["where"] == [{"property": "price", "op": "gte", "value": 10}]
    assert created["window_seconds"] == 604800
    assert created["order"] == "ordered"
    assert created["exclusions"] == [
        {"event": "Contacted Support", "where": [], "from_step": 1, "to_step": 3}
    ]
    assert created["backfill"] == "running"
    datetime.fromisoformat(created["created_at"])

    # Listed at once, although the list was just read (and could have been reused).
    listed = (await http.get("/v1/funnels", headers=auth(project))).json()["funnels"]
    assert listed == [created]

    got = await report(http, project, created["id"], "2026-05-01", "2026-05-02")
    assert set(got) == {"id", "name", "steps", "backfill", "entry_days", "freshness"}
    assert got["id"] == created["id"] and got["name"] == "Sign-up to purchase"
    assert got["backfill"] == "running"
    assert got["steps"] == [
        {
            "event": event,
            "users": 0,
            "conversion_from_start": None,
            "conversion_from_previous": None,
            "median_seconds_to_convert": None,
        }
        for event in ("Signed Up", "Added To Cart", "Order Completed")
    ]
    assert got["entry_days"] == [
        {"date": "2026-05-01", "users": [0, 0, 0]},
        {"date": "2026-05-02", "users": [0, 0, 0]},
    ]
    assert set(got["freshness"]) == {"processed_through", "lag"}

    deleted = await http.delete(f"/v1/funnels/{created['id']}", headers=auth(project))
    assert deleted.status_code == 204 and deleted.content == b""
    assert deleted.headers["cache-control"] == "no-store"
    gone = await http.get(
        f"/v1/funnels/{created['id']}?from=2026-05-01&to=2026-05-02", headers=auth(project)
    )
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    again = await http.delete(f"/v1/funnels/{created['id']}", headers=auth(project))
    assert again.status_code == 404
    assert (await http.get("/v1/funnels", headers=auth(project))).json() == {"funnels": []}


async def test_keys_and_projects(http: httpx.AsyncClient) -> None:
    owner, other = await new_project(http), await new_project(http)
    funnel = await create(http, owner, definition("a", "b"))
    path = f"/v1/funnels/{funnel['id']}"
    query = "?from=2026-05-01&to=2026-05-01"
    for method, url in [
        ("POST", "/v1/funnels"),
        ("GET", "/v1/funnels"),
        ("GET", path + query),
        ("DELETE", path),
    ]:
        body = definition("a", "b") if method == "POST" else None
        assert (await http.request(method, url, json=body)).status_code == 401
        # The write key is public (it ships in apps): it neither defines nor reads funnels.
        wrong = await http.request(
            method, url, json=body, headers={"Authorization": f"Bearer {owner['write_key']}"}
        )
        assert wrong.status_code == 401 and set(wrong.json()) == {"code", "message"}

    # Another project's key sees neither the funnel nor its figures, and cannot delete it.
    assert (await http.get("/v1/funnels", headers=auth(other))).json() == {"funnels": []}
    foreign = await http.get(path + query, headers=auth(other))
    assert foreign.status_code == 404
    assert foreign.json() == {
        "code": "not_found",
        "message": f"no funnel {funnel['id']} in this project",
    }
    assert (await http.delete(path, headers=auth(other))).status_code == 404
    assert (await http.get(path + query, headers=auth(owner))).status_code == 200
    unknown = await http.get(f"/v1/funnels/{2**31 - 1}{query}", headers=auth(owner))
    assert unknown.status_code == 404


def _where(op: str, value: Any) -> Json:
    return definition("a", "b") | {
        "steps": [
            {"event": "a", "where": [{"property": "p", "op": op, "value": value}]},
            {"event": "b"},
        ]
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (definition("a"), "steps: List should have at least 2 items"),
        (definition(*"abcdefghijk"), "steps: List should have at most 10 items"),
        (_where("like", 1), "steps.0.where.0.op: Input should be 'eq'"),
        (_where("in", "x"), "steps.0.where.0: `in` takes a non-empty list"),
        (_where("in", []), "steps.0.where.0: `in` takes a non-empty list"),
        (_where("gt", "10"), "steps.0.where.0: `gt` takes a number"),
        (
            definition("a", "b", "c", exclusions=[{"event": "x", "from_step": 2, "to_step": 2}]),
            "exclusions[0]: from_step < to_step <= 3",
        ),
        (
            definition("a", "b", exclusions=[{"event": "x", "from_step": 3}]),
            "exclusions[0]: from_step < to_step <= 2",
        ),
        (definition("a", "b", window_seconds=0), "window_seconds: Input should be greater"),
        (definition("a", "b", window_seconds=90 * 86400 + 1), "window_seconds: Input should"),
        (definition("a", "b", order="random"), "order: Input should be 'ordered'"),
        (definition("a", "b", name=""), "name: String should have at least 1 character"),
    ],
)
async def test_bad_definitions_are_422_naming_the_field(
    http: httpx.AsyncClient, body: Json, message: str
) -> None:
    project = await new_project(http)
    response = await http.post("/v1/funnels", json=body, headers=auth(project))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
    assert message in response.json()["message"]
    assert (await http.get("/v1/funnels", headers=auth(project))).json() == {"funnels": []}


async def test_bad_read_parameters_are_422(http: httpx.AsyncClient) -> None:
    project = await new_project(http)
    funnel = await create(http, project, definition("a", "b"))
    for url, name in [
        (f"/v1/funnels/{funnel['id']}?from=2026-05-02&to=2026-05-01", "to"),
        (f"/v1/funnels/{funnel['id']}?to=2026-05-01", "from"),
        (f"/v1/funnels/{funnel['id']}?from=2026-05-01&to=2026-05-01&breakdown=", "breakdown"),
        (f"/v1/funnels/{funnel['id']}?from=2026-05-01&to=2026-05-01&format=xml", "format"),
        ("/v1/funnels/0?from=2026-05-01&to=2026-05-01", "funnel_id"),
        ("/v1/funnels/x?from=2026-05-01&to=2026-05-01", "funnel_id"),
    ]:
        response = await http.get(url, headers=auth(project))
        assert response.status_code == 422, url
        assert response.json()["message"].startswith(name), (url, response.json())


async def test_a_project_has_at_most_100_funnels(http: httpx.AsyncClient) -> None:
    project = await new_project(http)
    for _ in range(100):
        await create(http, project, definition("a", "b"))
    refused = await http.post("/v1/funnels", json=definition("a", "b"), headers=auth(project))
    assert refused.status_code == 422
    assert "100 funnels" in refused.json()["message"]
    funnels = (await http.get("/v1/funnels", headers=auth(project))).json()["funnels"]
    assert len(funnels) == 100
    await http.delete(f"/v1/funnels/{funnels[0]['id']}", headers=auth(project))
    await create(http, project, definition("a", "b"))


D1, D2, D3, D4, D5 = (date(2026, 5, d) for d in range(1, 6))

# Steps A, B, C. Each row is one person's best attempt of one day: (person, day, hour of
# entry, depth, seconds to each step, props).
COUNTED: list[Attempt] = [
    ("p1", D1, 10, 2, [0, 60], None),
    ("p1", D2, 9, 3, [0, 30, 100], None),  # deeper: p1's best
    ("p2", D1, 12, 2, [0, 10], None),  # as deep as the D3 one and earlier: p2's best
    ("p2", D3, 8, 2, [0, 20], None),
    ("p3", D2, 0, 1, [0], None),
    ("p4", D3, 23, 3, [0, 50, 301], None),
    ("p5", date(2026, 4, 30), 10, 3, [0, 1, 1], None),  # before the range
    ("p5", D1, 10, 1, [0], None),
    ("p6", date(2026, 5, 6), 10, 3, [0, 1, 1], None),  # after the range
    ("p8", D2, 15, 2, [0, 7], None),
]


async def test_best_attempt_per_person_conversions_and_medians(
    http: httpx.AsyncClient, db: Db
) -> None:
    project = await new_project(http)
    funnel = await create(http, project, definition("A", "B", "C"))
    await insert_attempts(db, funnel["id"], COUNTED)

    got = await report(http, project, funnel["id"], "2026-05-01", "2026-05-05")
    assert [s["event"] for s in got["steps"]] == ["A", "B", "C"]
    # Best attempts in range: p1 depth 3 (30, 100), p2 depth 2 (10), p3 1, p4 3 (50, 301),
    # p5 1, p8 2 (7). Step B: 7, 10, 30, 50 -> (10 + 30) / 2. Step C: 100, 301 -> 200.5.
    assert step_figures(got["steps"]) == [
        (6, 1.0, 1.0, None),
        (4, 0.6667, 0.6667, 20.0),
        (2, 0.3333, 0.5, 200.5),
    ]
    # Per entry day, each person's attempt of that day: D1 p1 2, p2 2, p5 1; D2 p1 3, p3 1,
    # p8 2; D3 p2 2, p4 3; nobody on D4 and D5.
    assert got["entry_days"] == [
        {"date": "2026-05-01", "users": [3, 2, 0]},
        {"date": "2026-05-02", "users": [3, 2, 1]},
        {"date": "2026-05-03", "users": [2, 2, 1]},
        {"date": "2026-05-04", "users": [0, 0, 0]},
        {"date": "2026-05-05", "users": [0, 0, 0]},
    ]

    # A narrower range changes whose attempt is best: on D3 alone p2's D3 attempt counts (20).
    d3 = await report(http, project, funnel["id"], "2026-05-03", "2026-05-03")
    assert step_figures(d3["steps"]) == [
        (2, 1.0, 1.0, None),
        (2, 1.0, 1.0, 35.0),
        (1, 0.5, 0.5, 301.0),
    ]
    # Including Apr 30 makes p5's deeper attempt of that day its best (1 s, 1 s).
    wider = await report(http, project, funnel["id"], "2026-04-30", "2026-05-03")
    assert step_figures(wider["steps"]) == [
        (6, 1.0, 1.0, None),
        (5, 0.8333, 0.8333, 10.0),  # 1, 7, 10, 30, 50
        (3, 0.5, 0.6, 100.0),  # 1, 100, 301
    ]
    assert [d["users"] for d in wider["entry_days"]] == [[1, 1, 1], [3, 2, 0], [3, 2, 1], [2, 2, 1]]


BREAKDOWN: list[Attempt] = [
    ("a", D1, 9, 1, [0], {"plan": "vip"}),
    ("a", D2, 9, 2, [0, 40], {"plan": "free"}),  # a's best: counts under "free" only
    ("b", D1, 10, 2, [0, 20], {"plan": "free"}),
    ("c", D1, 10, 1, [0], {"plan": 1}),
    ("d", D1, 10, 2, [0, 5], {"plan": 1.0}),
    ("e", D1, 10, 1, [0], {"plan": True}),
    ("f", D1, 10, 1, [0], {"plan": False}),
    ("g", D1, 10, 2, [0, 9], {"plan": {"tier": 1}}),
    ("h", D1, 10, 1, [0], {"plan": [1]}),
    ("i", D1, 10, 1, [0], {"plan": None}),
    ("j", D1, 10, 1, [0], None),
    ("k", D1, 10, 1, [0], {"other": "x"}),
    ("l", D1, 10, 2, [0, 3], {"plan": "vip"}),
    ("m", D1, 10, 1, [0], {"plan": 12345678901234567890}),
]


async def test_breakdown_by_the_best_attempts_step_one_value(
    http: httpx.AsyncClient, db: Db
) -> None:
    project = await new_project(http)
    funnel = await create(http, project, definition("A", "B"))
    await insert_attempts(db, funnel["id"], BREAKDOWN)

    got = await report(http, project, funnel["id"], "2026-05-01", "2026-05-02", breakdown="plan")
    assert step_figures(got["steps"]) == [(13, 1.0, 1.0, None), (5, 0.3846, 0.3846, 9.0)]
    groups = {g["value"]: step_figures(g["steps"]) for g in got["breakdown"]}
    # Most persons first, then by value (code points), null last among equals.
    assert list(groups) == [
        None,  # an object, a list, JSON null, no props, no such key
        "free",
        "1",
        "1.0",  # numbers are written as the event's JSON has them
        "12345678901234567890",
        "false",
        "true",
        "vip",  # l only: a's "vip" attempt is not a's best
    ]
    assert groups[None] == [(5, 1.0, 1.0, None), (1, 0.2, 0.2, 9.0)]
    assert groups["free"] == [(2, 1.0, 1.0, None), (2, 1.0, 1.0, 30.0)]
    assert groups["1"] == [(1, 1.0, 1.0, None), (0, 0.0, 0.0, None)]
    assert groups["1.0"] == [(1, 1.0, 1.0, None), (1, 1.0, 1.0, 5.0)]
    assert groups["vip"] == [(1, 1.0, 1.0, None), (1, 1.0, 1.0, 3.0)]
    assert [g["steps"][0]["event"] for g in got["breakdown"]] == ["A"] * len(groups)
    assert sum(g["steps"][0]["users"] for g in got["breakdown"]) == 13

    # A key nobody has: everyone under null.
    none = await report(http, project, funnel["id"], "2026-05-01", "2026-05-02", breakdown="x y")
    assert [(g["value"], g["steps"][0]["users"]) for g in none["breakdown"]] == [(None, 13)]
    # An empty range: no groups, but the key is there.
    empty = await report(http, project, funnel["id"], "2026-06-01", "2026-06-01", breakdown="plan")
    assert empty["breakdown"] == []


async def test_breakdown_falls_back_to_the_identify_trait_as_of_entry(
    http: httpx.AsyncClient, db: Db
) -> None:
    """A step-1 event without the key takes the person's latest identify trait at or before its
    second, over all their distinct ids; an event's own value wins; no trait: null."""
    project = await new_project(http)
    funnel = await create(http, project, definition("A", "B"))
    at10 = datetime(2026, 5, 1, 10, tzinfo=UTC)
    await db.pool.executemany(
        "INSERT INTO identities (project_id, distinct_id, person_id) VALUES ($1, $2, $3)",
        [
            (project["id"], d, p)
            for d, p in [("p", "p"), ("dev-p", "p"), ("q", "q"), ("r", "r"), ("s", "s"), ("t", "s")]
        ],
    )
    await db.pool.executemany(
        "INSERT INTO trait_changes (project_id, distinct_id, key, ts, value)"
        " VALUES ($1, $2, 'plan', $3, $4)",
        [
            (project["id"], "dev-p", at10.replace(hour=9), "free"),  # p's device, earlier
            (project["id"], "p", at10, "vip"),  # p, at the entry's second: counts, latest
            (project["id"], "q", at10.replace(second=1), "vip"),  # after q's entry: not yet
            (project["id"], "r", at10.replace(hour=8), "vip"),  # r's event has its own value
            (project["id"], "s", at10.replace(hour=7), "free"),  # s's two ids in one second:
            (project["id"], "t", at10.replace(hour=7), "vip"),  # the larger value wins
        ],
    )
    await insert_attempts(
        db,
        funnel["id"],
        [
            ("p", D1, 10, 2, [0, 4], {"price": 3}),
            ("q", D1, 10, 1, [0], None),
            ("r", D1, 10, 1, [0], {"plan": "free"}),
            ("s", D1, 11, 1, [0], {"plan": None}),
        ],
    )
    got = await report(http, project, funnel["id"], "2026-05-01", "2026-05-01", breakdown="plan")
    groups = {g["value"]: step_figures(g["steps"]) for g in got["breakdown"]}
    assert groups == {
        "free": [(1, 1.0, 1.0, None), (0, 0.0, 0.0, None)],  # r's own property
        "vip": [(2, 1.0, 1.0, None), (1, 0.5, 0.5, 4.0)],  # p's trait at 10:00:00, and s
        None: [(1, 1.0, 1.0, None), (0, 0.0, 0.0, None)],  # q's trait came a second late
    }
    # A key without identify traits: its events' own values only.
    price = await report(http, project, funnel["id"], "2026-05-01", "2026-05-01", breakdown="price")
    assert [(g["value"], g["steps"][0]["users"]) for g in price["breakdown"]] == [
        (None, 3),
        ("3", 1),
    ]


async def test_breakdown_keeps_the_50_biggest_values(http: httpx.AsyncClient, db: Db) -> None:
    project = await new_project(http)
    funnel = await create(http, project, definition("A", "B"))
    many: list[Attempt] = [(f"q{n}", D1, 10, 1, [0], {"plan": f"v{n:02}"}) for n in range(60)]
    many += [("r1", D1, 10, 1, [0], {"plan": "v59"}), ("r2", D1, 10, 1, [0], {"plan": "v58"})]
    await insert_attempts(db, funnel["id"], many)
    got = await report(http, project, funnel["id"], "2026-05-01", "2026-05-01", breakdown="plan")
    values = [g["value"] for g in got["breakdown"]]
    assert values == ["v58", "v59"] + [f"v{n:02}" for n in range(48)]


async def test_csv_has_a_line_per_step_or_per_value_and_step(
    http: httpx.AsyncClient, db: Db
) -> None:
    project = await new_project(http)
    funnel = await create(http, project, definition("=Signed Up", "Paid"))
    await insert_attempts(
        db,
        funnel["id"],
        [
            ("x", D1, 10, 2, [0, 4], {"plan": "free"}),
            ("y", D1, 10, 1, [0], {"plan": "vip"}),
            ("z", D1, 11, 1, [0], None),
        ],
    )
    url = f"/v1/funnels/{funnel['id']}?from=2026-05-01&to=2026-05-01&format=csv"
    plain = await http.get(url, headers=auth(project))
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/csv")
    assert plain.text.splitlines() == [
        "step,event,users,conversion_from_start,conversion_from_previous,median_seconds_to_convert",
        "1,'=Signed Up,3,1.0,1.0,",  # a cell starting with = is not a formula
        "2,Paid,1,0.3333,0.3333,4.0",
    ]
    split = await http.get(url + "&breakdown=plan", headers=auth(project))
    assert split.text.splitlines() == [
        "value,step,event,users,conversion_from_start,conversion_from_previous,"
        "median_seconds_to_convert",
        "free,1,'=Signed Up,1,1.0,1.0,",
        "free,2,Paid,1,1.0,1.0,4.0",
        "vip,1,'=Signed Up,1,1.0,1.0,",
        "vip,2,Paid,0,0.0,0.0,",
        ",1,'=Signed Up,1,1.0,1.0,",
        ",2,Paid,0,0.0,0.0,",
    ]
    # The list of funnels too: a line per funnel, its steps as JSON in one cell.
    listed = await http.get("/v1/funnels?format=csv", headers=auth(project))
    assert listed.headers["content-type"].startswith("text/csv")
    header, line = list(csv.reader(listed.text.splitlines()))
    assert header == [
        "name", "steps", "window_seconds", "order", "exclusions", "id", "backfill", "created_at"
    ]  # fmt: skip
    assert (line[0], line[5]) == ("f", str(funnel["id"])) and line[6] in ("running", "complete")
    assert json.loads(line[1]) == funnel["steps"]
    nobody = await http.get(
        url.replace("2026-05-01", "2026-06-01") + "&breakdown=plan", headers=auth(project)
    )
    assert nobody.text.splitlines() == [
        "value,step,event,users,conversion_from_start,conversion_from_previous,"
        "median_seconds_to_convert"
    ]


async def test_etag_304_and_changes_of_the_funnel_are_seen(http: httpx.AsyncClient, db: Db) -> None:
    project = await new_project(http)
    funnel = await create(http, project, definition("A", "B"))
    await insert_attempts(db, funnel["id"], [("x", D1, 10, 2, [0, 4], None)])
    url = f"/v1/funnels/{funnel['id']}?from=2026-05-01&to=2026-05-01"
    first = await http.get(url, headers=auth(project))
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private, max-age=")
    assert first.headers["vary"] == "Authorization"
    again = await http.get(url, headers={**auth(project), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    listed = await http.get("/v1/funnels", headers=auth(project))
    assert (
        await http.get(
            "/v1/funnels", headers={**auth(project), "If-None-Match": listed.headers["etag"]}
        )
    ).status_code == 304

    # The metrics service finishing the backfill is a new version of the funnel's reads.
    await db.pool.execute(
        "UPDATE funnels SET backfill = 'complete', backfill_done_at = now() WHERE id = $1",
        funnel["id"],
    )
    await asyncio.sleep(0.5)  # versions are reread every 0.25 s at most
    done = await http.get(url, headers={**auth(project), "If-None-Match": etag})
    assert done.status_code == 200 and done.json()["backfill"] == "complete"
    assert done.json()["steps"][1]["users"] == 1
    relisted = await http.get(
        "/v1/funnels", headers={**auth(project), "If-None-Match": listed.headers["etag"]}
    )
    assert relisted.status_code == 200
    assert relisted.json()["funnels"][0]["backfill"] == "complete"

    # Another funnel created, one deleted: seen by the very next read.
    second = await create(http, project, definition("C", "D"))
    assert [
        f["id"] for f in (await http.get("/v1/funnels", headers=auth(project))).json()["funnels"]
    ] == [funnel["id"], second["id"]]
    await http.delete(f"/v1/funnels/{funnel['id']}", headers=auth(project))
    assert (await http.get(url, headers=auth(project))).status_code == 404
    assert [
        f["id"] for f in (await http.get("/v1/funnels", headers=auth(project))).json()["funnels"]
    ] == [second["id"]]

    created = await http.post("/v1/funnels", json=definition("A", "B"), headers=auth(project))
    assert created.headers["cache-control"] == "no-store" and "etag" not in created.headers
