"""Read caching of the funnel routes (caching.py): `/v1/funnels/{id}` is reused like the other
versioned reads, and a successful funnel write is announced before its response leaves.

A small FastAPI app behind the middleware, driven in-process: no network, no database.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.types import Scope

from services.common.http import ApiError, install_error_handlers
from services.gateway.caching import ReadCaching, under


class Backend:
    def __init__(self) -> None:
        self.version: tuple[Any, ...] = (7, "v1")
        self.calls = 0
        self.events: list[str] = []


def make_app(backend: Backend) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    async def version_of(scope: Scope) -> tuple[Any, ...] | None:
        return backend.version

    async def on_write(scope: Scope) -> None:
        backend.events.append(f"written {scope['method']} {scope['path']}")

    app.add_middleware(
        ReadCaching, max_age=5, max_entries=10, version_of=version_of, on_write=on_write
    )

    @app.get("/v1/funnels/{funnel_id}")
    async def read(funnel_id: int) -> dict[str, int]:
        backend.calls += 1
        return {"id": funnel_id, "calls": backend.calls}

    @app.post("/v1/funnels")
    async def create(fail: bool = False) -> JSONResponse:
        if fail:
            raise ApiError(422, "invalid_parameter", "steps: too few")
        backend.events.append("handled")
        return JSONResponse({"id": 1}, status_code=201)

    @app.delete("/v1/funnels/{funnel_id}")
    async def remove(funnel_id: int) -> Response:
        return Response(status_code=204)

    @app.post("/v1/other")
    async def other() -> dict[str, int]:
        return {}

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def test_versioned_paths_include_the_paths_below_them() -> None:
    assert under("/v1/funnels", ("/v1/funnels",))
    assert under("/v1/funnels/12", ("/v1/funnels",))
    assert not under("/v1/funnelsx", ("/v1/funnels",))
    assert not under("/v1/activity", ("/v1/funnels",))


async def test_a_funnel_read_is_reused_while_its_version_holds() -> None:
    backend = Backend()
    async with client(make_app(backend)) as http:
        first = await http.get("/v1/funnels/3")
        assert (await http.get("/v1/funnels/3")).json() == first.json() == {"id": 3, "calls": 1}
        again = await http.get("/v1/funnels/3", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        backend.version = (7, "v2")  # e.g. the funnel's backfill moved on
        assert (await http.get("/v1/funnels/3")).json() == {"id": 3, "calls": 2}


async def test_successful_writes_are_announced_before_the_response_and_never_stored() -> None:
    backend = Backend()
    async with client(make_app(backend)) as http:
        created = await http.post("/v1/funnels")
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        assert backend.events == ["handled", "written POST /v1/funnels"]
        assert (await http.delete("/v1/funnels/1")).status_code == 204
        assert backend.events[-1] == "written DELETE /v1/funnels/1"

        backend.events.clear()
        refused = await http.post("/v1/funnels?fail=true")
        assert refused.status_code == 422 and refused.headers["cache-control"] == "no-store"
        await http.post("/v1/other")  # not a versioned path
        assert backend.events == []
