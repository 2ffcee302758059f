"""Every read the gateway documents, asked with any values of its parameters: a 200 with a body
of its format, or a 422 naming a parameter; never a 500.

The routes and their parameters come from the gateway's own OpenAPI document, so a new route or
parameter is covered without touching this test. Values lean on the edges where date and period
arithmetic can fail: the first and last days Python and PostgreSQL share (years 1 and 9999),
periods that start before the first day or end after the last, negative and huge numbers, text
with a NUL. Found this way: `/v1/lifecycle` from 0001-01-01 by month (the month before year 1),
and a NUL in `start_event`, were 500s.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.examples import scaled
from tests.support.services import Pipeline

days = st.one_of(
    st.sampled_from(
        [
            "0001-01-01",
            "0001-01-02",
            "0001-01-07",
            "0001-02-28",
            "9999-12-01",
            "9999-12-26",
            "9999-12-31",
            "2026-11-01",
            "2026-11-27",
            "2026-02-29",
            "2026-1-5",
            "20261127",
            "",
        ]
    ),  # fmt: skip
    st.dates().map(str),
)
integers = st.one_of(
    st.sampled_from([-1, 0, 1, 2, 6, 7, 30, 31, 365, 366, 10**6, 2**31, 2**63]),
    st.integers(),
).map(str)
texts = st.one_of(
    st.sampled_from(["signup", "buy", "plan", "$pageview", "a\x00b"]), st.text(max_size=40)
)


def _values(name: str, schema: dict[str, Any]) -> st.SearchStrategy[str]:
    options = [texts]
    for alternative in [schema, *schema.get("anyOf", [])]:
        if "enum" in alternative:
            options.append(st.sampled_from([str(v) for v in alternative["enum"]]))
        if alternative.get("format") == "date" or name in ("from", "to"):
            options.append(days)
        if alternative.get("type") == "integer":
            options.append(integers)
    return st.one_of(*options)


@pytest.fixture(scope="module")
def reads(pipeline: Pipeline) -> tuple[dict[str, str], list[tuple[str, dict[str, Any]]]]:
    """The read key's headers and each read (GET) route with its query parameters."""
    project = pipeline.create_project("read-params-fuzz")
    headers = {"Authorization": f"Bearer {project['read_key']}"}
    funnel_id = pipeline.create_funnel(project["read_key"], "a", "b", window_seconds=3600)
    document = httpx.get(f"{pipeline.gateway.url}/openapi.json").json()
    routes = []
    for path, operations in document["paths"].items():
        if (
            not path.startswith("/v1/")
            or path.startswith("/v1/projects")
            or "get" not in operations
        ):
            continue  # the admin routes take the admin token
        parameters = {
            p["name"]: p.get("schema", {})
            for p in operations["get"].get("parameters", [])
            if p["in"] == "query"
        }
        routes.append((path.replace("{funnel_id}", str(funnel_id)), parameters))
    assert len(routes) >= 10, [path for path, _ in routes]
    assert all("{" not in path for path, _ in routes), [path for path, _ in routes]
    return headers, routes


@settings(max_examples=scaled(300), deadline=None)
@given(st.data())
def test_any_read_parameters_get_a_200_or_a_422_naming_one(
    pipeline: Pipeline,
    reads: tuple[dict[str, str], list[tuple[str, dict[str, Any]]]],
    data: st.DataObject,
) -> None:
    headers, routes = reads
    path, parameters = data.draw(st.sampled_from(routes), label="route")
    # Each parameter given three times in four: most reads reach past the checks of one.
    chosen = [name for name in sorted(parameters) if data.draw(st.integers(0, 3), label=name) > 0]
    query = {name: data.draw(_values(name, parameters[name]), label=name) for name in chosen}
    if "from" in query and "to" in query and data.draw(st.booleans(), label="to near from"):
        # Most ranges worth reading are short: `to` a few days from `from`, edges included.
        offset = data.draw(st.sampled_from([-1, 0, 1, 6, 27, 30, 730, 731]), label="to - from")
        with suppress(ValueError, OverflowError):
            query["to"] = str(date.fromisoformat(query["from"]) + timedelta(days=offset))
    response = httpx.get(f"{pipeline.gateway.url}{path}", params=query, headers=headers, timeout=30)
    assert response.status_code in (200, 422), (path, query, response.status_code, response.text)
    if response.status_code == 422:
        body = response.json()
        assert body["code"] == "invalid_parameter", body
        assert body["message"].split(":")[0] in parameters, (path, query, body)
    elif query.get("format") == "csv":
        assert response.headers["content-type"].startswith("text/csv"), response.headers
    else:
        assert isinstance(response.json(), dict | list)
