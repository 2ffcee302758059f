"""The bound on request body bytes held at once: charged as read, given back when answered."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from services.common.http import ApiError
from services.ingest.body import read_body
from services.ingest.body_budget import HELD, BodyBudget
from tests.support.asgi_request import asgi_request


def test_requests_share_the_budget_and_give_it_back() -> None:
    budget = BodyBudget(100)
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    budget.take(first, 60)
    budget.take(second, 40)
    assert (budget.held, first[HELD], second[HELD]) == (100, 60, 40)
    with pytest.raises(ApiError) as refused:
        budget.take(second, 1)
    error = refused.value
    assert (error.status, error.code, error.headers) == (503, "overloaded", {"Retry-After": "1"})
    assert (budget.held, second[HELD]) == (100, 40)  # a refusal charges nothing
    budget.release(first)
    budget.take(second, 60)
    budget.release(second)
    assert budget.held == 0 and HELD not in second
    budget.release(second)  # an answered request that held nothing gives back nothing
    assert budget.held == 0


def test_a_request_alone_may_hold_more_than_the_budget() -> None:
    budget = BodyBudget(10)
    alone: dict[str, Any] = {}
    budget.take(alone, 8)
    budget.take(alone, 8)  # only its own bytes are held: it goes on
    other: dict[str, Any] = {}
    with pytest.raises(ApiError):
        budget.take(other, 1)
    assert budget.held == 16


async def test_a_body_is_charged_as_inflated() -> None:
    budget = BodyBudget(10_000)
    body = gzip.compress(b'{"batch": [' + b" " * 5000 + b"]}")
    request = asgi_request(body, {"content-type": "text/plain"}, chunk=100)
    read = await read_body(request, 20_000, budget=budget)
    assert read.data == {"batch": []}
    assert budget.held == request.scope[HELD] == len(b'{"batch": [') + 5000 + len(b"]}")


async def test_a_body_past_the_budget_is_refused_while_others_hold_bytes() -> None:
    budget = BodyBudget(1000)
    budget.take({}, 900)  # another request's body
    request = asgi_request(b"[" + b" " * 500 + b"]", {"content-type": "application/json"}, chunk=64)
    with pytest.raises(ApiError) as refused:
        await read_body(request, 10_000, budget=budget)
    assert refused.value.code == "overloaded"
    assert budget.held == 900 + request.scope[HELD] <= 1000
