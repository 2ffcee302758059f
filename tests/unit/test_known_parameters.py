"""Read routes answer a query parameter they do not take with 422 naming it
(services/gateway/params.py: known_parameters), instead of ignoring it; after the read key."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query

from services.common.http import install_error_handlers
from services.common.projects import Project
from services.gateway.params import DateRange, date_range, known_parameters

KEY = "pr_test"
PROJECT = Project(1, "test", "UTC", "pw_test", KEY)


class Projects:
    async def by_read_key(self, key: str) -> Project | None:
        return PROJECT if key == KEY else None


def make_app() -> FastAPI:
    router = APIRouter()

    @router.get("/v1/lifecycle")
    async def lifecycle(
        span: Annotated[DateRange, Depends(date_range)],
        period: Annotated[str, Query()] = "day",
    ) -> dict[str, str]:
        return {"from": span.start.isoformat(), "period": period}

    app = FastAPI()
    app.state.pulse = SimpleNamespace(projects=Projects())
    install_error_handlers(app)
    app.include_router(router, dependencies=[Depends(known_parameters)])
    return app


async def _get(params: dict[str, str], key: str = KEY) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(
            "/v1/lifecycle", params=params, headers={"Authorization": f"Bearer {key}"}
        )


async def test_a_parameter_the_route_does_not_take_is_named_in_a_422() -> None:
    response = await _get({"from": "2026-05-01", "to": "2026-05-31", "interval": "week"})
    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_parameter",
        "message": "interval: not a parameter of /v1/lifecycle "
        "(it takes: format, from, period, to)",
    }


async def test_the_parameters_of_the_route_and_its_dependencies_are_taken() -> None:
    params = {"from": "2026-05-01", "to": "2026-05-31", "period": "week", "format": "json"}
    response = await _get(params)
    assert response.status_code == 200, response.text
    assert response.json() == {"from": "2026-05-01", "period": "week"}


async def test_a_cache_buster_is_let_by_and_a_near_miss_is_not() -> None:
    params = {"from": "2026-05-01", "to": "2026-05-31", "_": "1795000000000"}
    response = await _get(params)
    assert response.status_code == 200, response.text
    assert response.json() == {"from": "2026-05-01", "period": "day"}
    response = await _get({**params, "__": "1"})
    assert response.status_code == 422
    assert response.json()["message"].startswith("__: not a parameter of /v1/lifecycle")


async def test_an_unknown_key_is_a_401_whatever_the_parameters() -> None:
    response = await _get({"interval": "week"}, key="pr_wrong")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
