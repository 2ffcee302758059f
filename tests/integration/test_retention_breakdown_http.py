"""`/v1/retention?breakdown=` over real HTTP: the JSON shape, the CSV, and 422 for a key the
services do not track."""

from __future__ import annotations

import uuid

import httpx

from tests.support.services import Pipeline


def _get(pipeline: Pipeline, key: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{pipeline.gateway.url}/v1/retention",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
    )


def _track(user: str, day: str, **extra: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": "x",
        "userId": user,
        "timestamp": f"{day}T10:00:00Z",
        "messageId": str(uuid.uuid4()),
        **extra,
    }


def test_retention_split_by_plan_as_json_and_csv(pipeline: Pipeline) -> None:
    project = pipeline.create_project("retention-breakdown")
    batch = [
        _track("a", "2026-04-06", properties={"plan": "vip"}),
        _track("a", "2026-04-07"),
        _track("b", "2026-04-06", context={"traits": {"plan": "free"}}),
        _track("c", "2026-04-06"),  # no plan: the null group
        _track("d", "2026-04-07", properties={"plan": "free"}),
    ]
    response = httpx.post(
        f"{pipeline.ingest.url}/v1/batch", json={"batch": batch, "writeKey": project["write_key"]}
    )
    assert response.status_code == 200, response.text
    pipeline.wait_processed(project["read_key"], len(batch))

    query = {"from": "2026-04-06", "to": "2026-04-07", "length": "1", "breakdown": "plan"}
    got = pipeline.read("/v1/retention", project["read_key"], **query)
    assert set(got) == {"cohorts", "breakdown", "breakdown_backfill", "freshness"}
    assert got["breakdown_backfill"] == "complete"  # a new project: no history to fill in
    assert got["cohorts"] == [
        {"date": "2026-04-06", "size": 3, "retained": [3, 1]},
        {"date": "2026-04-07", "size": 1, "retained": [1, 0]},
    ]
    assert got["breakdown"] == [
        {
            "value": "free",
            "cohorts": [
                {"date": "2026-04-06", "size": 1, "retained": [1, 0]},
                {"date": "2026-04-07", "size": 1, "retained": [1, 0]},
            ],
        },
        {
            "value": "vip",
            "cohorts": [
                {"date": "2026-04-06", "size": 1, "retained": [1, 1]},
                {"date": "2026-04-07", "size": 0, "retained": [0, 0]},
            ],
        },
        {
            "value": None,
            "cohorts": [
                {"date": "2026-04-06", "size": 1, "retained": [1, 0]},
                {"date": "2026-04-07", "size": 0, "retained": [0, 0]},
            ],
        },
    ]
    plain = {k: v for k, v in query.items() if k != "breakdown"}
    unsplit = pipeline.read("/v1/retention", project["read_key"], **plain)
    assert unsplit["cohorts"] == got["cohorts"]
    assert unsplit["breakdown"] is None

    csv = _get(pipeline, project["read_key"], format="csv", **query)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines() == [
        "value,date,size,retained",
        "free,2026-04-06,1,1 0",
        "free,2026-04-07,1,1 0",
        "vip,2026-04-06,1,1 1",
        "vip,2026-04-07,0,0 0",
        ",2026-04-06,1,1 0",  # no value: an empty cell
        ",2026-04-07,0,0 0",
    ]


def test_retention_breakdown_without_members_and_by_an_untracked_key(pipeline: Pipeline) -> None:
    project = pipeline.create_project("retention-breakdown-params")
    key = project["read_key"]
    query = {"from": "2026-01-05", "to": "2026-01-11", "period": "week", "breakdown": "plan"}
    empty = pipeline.read("/v1/retention", key, **query)
    assert empty["breakdown"] == []
    assert empty["cohorts"] == [{"date": "2026-01-05", "size": 0, "retained": [0] * 15}]
    csv = _get(pipeline, key, format="csv", **query)
    assert csv.text.splitlines() == ["value,date,size,retained"]

    untracked = _get(pipeline, key, **{**query, "breakdown": "country"})
    assert untracked.status_code == 422
    assert set(untracked.json()) == {"code", "message"}
    assert untracked.json()["message"].startswith("breakdown")
    assert "plan" in untracked.json()["message"]
    assert _get(pipeline, "nope", **query).status_code == 401
