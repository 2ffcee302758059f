"""What the gateway stores from a request body (projects, their settings and keys, funnels), sent
any JSON: stored, or refused with a 4xx and `{"code","message"}`; never a 500.

Bodies are generated around each route's fields, most of them valid (a body is refused for its
first bad field), the others of every JSON type, text PostgreSQL cannot store (NUL) or longer
than the limits. Found this way: a NUL in a project's or a funnel's name was a 500.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.examples import scaled
from tests.support.services import ADMIN_TOKEN, Pipeline
from tests.support.wire_messages import json_values, leaves

nasty_texts = st.one_of(
    st.sampled_from(["a\x00b", "\x00", "x" * 201, " ", "", "Mars/Olympus", "UTC\x00"]),
    st.text(max_size=20),
    json_values,
)
nasty_numbers = st.one_of(
    st.sampled_from([0, 59, 86401, 7 * 86400 + 1, -1, 2**31, 2**63, 1.5, True, "60"]),
    json_values,
)


def _either(valid: st.SearchStrategy[Any], nasty: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid three times in four: a body is refused for its first bad field, so the ones after
    it are reached only when those before are fine."""
    return st.integers(0, 3).flatmap(lambda n: nasty if n == 0 else valid)


def _text(*valid: str) -> st.SearchStrategy[Any]:
    return _either(st.sampled_from(valid), nasty_texts)


def _number(*valid: int) -> st.SearchStrategy[Any]:
    return _either(st.sampled_from(valid), nasty_numbers)


def _body(
    fields: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Any]:
    """An object with `fields` (and any of `optional`) and now and then a key of its own; now and
    then any JSON at all."""
    known = st.fixed_dictionaries(fields, optional=optional or {})
    extra = st.dictionaries(st.text(max_size=6), json_values, max_size=1)
    whole = st.tuples(known, extra).map(lambda both: {**both[1], **both[0]})
    return _either(whole, json_values)


condition = _body(
    {
        "property": _text("plan", "price"),
        "op": _either(st.sampled_from(["eq", "neq", "in", "gt", "lte"]), nasty_texts),
        "value": _either(
            st.one_of(st.sampled_from(["vip", 3, 2.5, False]), st.lists(leaves, max_size=3)),
            st.one_of(nasty_texts, st.lists(nasty_texts, max_size=2)),
        ),
    }
)
step = _body(
    {"event": _text("visit", "signup", "pay")},
    {"where": _either(st.lists(condition, max_size=2), json_values)},
)
exclusion = _body(
    {"event": _text("cancel")}, {"from_step": _number(1, 2), "to_step": _number(2, 3)}
)
BODIES: dict[str, st.SearchStrategy[Any]] = {
    "project": _body({"name": _text("shop")}, {"timezone": _text("UTC", "Europe/Paris")}),
    "settings": _body(
        {}, {"session_timeout_seconds": _number(60, 1800), "session_cap_seconds": _number(86400)}
    ),
    "rotate": _body({}, {"keys": _either(st.just("write"), nasty_texts)}),
    "funnel": _body(
        {
            "name": _text("checkout"),
            "steps": _either(st.lists(step, min_size=2, max_size=4), json_values),
            "window_seconds": _number(60, 86400),
        },
        {
            "order": _either(st.sampled_from(["ordered", "strict", "any"]), nasty_texts),
            "exclusions": _either(st.lists(exclusion, max_size=2), json_values),
        },
    ),
}


@pytest.fixture(scope="module")
def fuzzed(pipeline: Pipeline) -> dict[str, str]:
    project = pipeline.create_project("write-bodies-fuzz")
    return {"id": str(project["id"]), "read_key": project["read_key"]}


@settings(max_examples=scaled(250), deadline=None)
@given(st.sampled_from(sorted(BODIES)), st.data())
def test_any_body_is_stored_or_refused_with_a_reason(
    pipeline: Pipeline, fuzzed: dict[str, str], route: str, data: st.DataObject
) -> None:
    body = data.draw(BODIES[route], label="body")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    method, path, headers = {
        "project": ("POST", "/v1/projects", admin),
        "settings": ("PATCH", f"/v1/projects/{fuzzed['id']}", admin),
        "rotate": ("POST", f"/v1/projects/{fuzzed['id']}/rotate-keys", admin),
        "funnel": ("POST", "/v1/funnels", {"Authorization": f"Bearer {fuzzed['read_key']}"}),
    }[route]
    if route == "rotate" and isinstance(body, dict) and body.get("keys") in ("read", "both"):
        body = {**body, "keys": "write"}  # keep the read key the funnels are created with
    if route == "rotate" and isinstance(body, dict) and "keys" not in body:
        body = {**body, "keys": "write"}  # the default is both
    response = httpx.request(
        method, f"{pipeline.gateway.url}{path}", json=body, headers=headers, timeout=30
    )
    assert response.status_code < 500, (route, body, response.status_code, response.text)
    answer = response.json()
    if response.status_code >= 400:
        assert {"code", "message"} <= set(answer), answer
    else:
        assert response.status_code in (200, 201), response.status_code
        assert isinstance(answer, dict) and "id" in answer, answer
