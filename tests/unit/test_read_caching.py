"""ETag / If-None-Match / Cache-Control and response reuse of the read API (caching.py).

A small FastAPI app behind the middleware, driven in-process: no network, no database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Scope

from services.common.http import ApiError, install_error_handlers
from services.gateway import caching
from services.gateway.caching import ReadCaching, etag_for, none_match


class Backend:
    """What the routes return, and how often they ran."""

    def __init__(self) -> None:
        self.value = 1
        self.calls = 0
        self.version: tuple[Any, ...] | None = (7, "v1")
        self.gate: asyncio.Event | None = None


def make_app(backend: Backend, max_age: int = 5, entries: int = 100) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    async def version_of(scope: Scope) -> tuple[Any, ...] | None:
        return backend.version

    app.add_middleware(ReadCaching, max_age=max_age, max_entries=entries, version_of=version_of)

    @app.get("/v1/activity")
    async def activity(n: int = 0) -> dict[str, int]:
        backend.calls += 1
        if backend.gate is not None:
            await backend.gate.wait()
        return {"value": backend.value, "n": n}

    @app.get("/v1/live")
    async def live() -> dict[str, int]:
        backend.calls += 1
        return {"value": backend.value}

    @app.get("/v1/status")
    async def failing() -> dict[str, int]:
        raise ApiError(401, "unauthorized", "unknown read key")

    @app.get("/v1/projects")
    async def projects() -> list[dict[str, str]]:
        return [{"read_key": "secret"}]

    @app.post("/v1/funnels")
    async def create() -> JSONResponse:
        return JSONResponse({"id": 1}, status_code=201)

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def test_etag_is_a_quoted_digest_of_the_body() -> None:
    assert etag_for(b"abc") == etag_for(b"abc")
    assert etag_for(b"abc") != etag_for(b"abd")
    assert etag_for(b"abc").startswith('"') and etag_for(b"abc").endswith('"')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),  # If-None-Match compares weakly
        ('"x", "abc"', True),
        ('"x","y"', False),
        ("*", True),
        ('"ab"', False),
    ],
)
def test_if_none_match_parsing(header: str | None, matches: bool) -> None:
    assert none_match(header, '"abc"') is matches


async def test_read_gets_validators_and_a_matching_tag_gets_304() -> None:
    backend = Backend()
    async with client(make_app(backend, max_age=7)) as http:
        first = await http.get("/v1/activity")
        assert first.status_code == 200
        assert first.json() == {"value": 1, "n": 0}
        etag = first.headers["etag"]
        assert etag == etag_for(first.content)
        assert first.headers["cache-control"] == "private, max-age=7"
        assert first.headers["vary"] == "Authorization"

        again = await http.get("/v1/activity", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "private, max-age=7"

        stale = await http.get("/v1/activity", headers={"If-None-Match": '"something-else"'})
        assert stale.status_code == 200
        assert stale.json() == {"value": 1, "n": 0}


async def test_changed_data_changes_the_tag_and_a_stale_tag_gets_the_body() -> None:
    backend = Backend()
    async with client(make_app(backend)) as http:
        old = await http.get("/v1/activity")
        backend.value, backend.version = 2, (7, "v2")
        new = await http.get("/v1/activity", headers={"If-None-Match": old.headers["etag"]})
        assert new.status_code == 200
        assert new.json() == {"value": 2, "n": 0}
        assert new.headers["etag"] != old.headers["etag"]


async def test_unchanged_version_reuses_the_response_without_running_the_route() -> None:
    backend = Backend()
    async with client(make_app(backend)) as http:
        for _ in range(3):
            assert (await http.get("/v1/activity?n=1")).json() == {"value": 1, "n": 1}
        assert backend.calls == 1
        # Another query is another response.
        assert (await http.get("/v1/activity?n=2")).json() == {"value": 1, "n": 2}
        assert backend.calls == 2
        # A new version runs the route again, and its answer is what is served.
        backend.value, backend.version = 5, (7, "v2")
        assert (await http.get("/v1/activity?n=1")).json() == {"value": 5, "n": 1}
        assert backend.calls == 3


async def test_without_a_version_every_request_runs_the_route() -> None:
    backend = Backend()
    backend.version = None  # unknown key or database unreachable
    async with client(make_app(backend)) as http:
        await http.get("/v1/activity")
        await http.get("/v1/activity")
    assert backend.calls == 2


async def test_reads_that_depend_on_the_clock_are_reused_for_at_most_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = Backend()
    now = [1000.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: now[0])
    async with client(make_app(backend)) as http:
        first = await http.get("/v1/live")
        now[0] += 0.9
        second = await http.get("/v1/live", headers={"If-None-Match": first.headers["etag"]})
        assert second.status_code == 304
        assert backend.calls == 1  # reused: same version, under a second old
        backend.value, backend.version = 2, (7, "v2")
        assert (await http.get("/v1/live")).json() == {"value": 2}  # a new version at once
        assert backend.calls == 2
        now[0] += 1.0
        assert (await http.get("/v1/live")).json() == {"value": 2}
        assert backend.calls == 3  # same version, but the clock moved on: computed again


async def test_concurrent_identical_reads_compute_once() -> None:
    backend = Backend()
    backend.gate = asyncio.Event()
    async with client(make_app(backend)) as http:
        requests = [asyncio.create_task(http.get("/v1/activity")) for _ in range(5)]
        await asyncio.sleep(0.05)
        backend.gate.set()
        responses = await asyncio.gather(*requests)
    assert [r.json() for r in responses] == [{"value": 1, "n": 0}] * 5
    assert len({r.headers["etag"] for r in responses}) == 1
    assert backend.calls == 1


async def test_errors_admin_writes_and_other_paths_are_not_cached() -> None:
    backend = Backend()
    async with client(make_app(backend)) as http:
        refused = await http.get("/v1/status")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
        assert refused.headers["cache-control"] == "no-store"
        assert "etag" not in refused.headers

        admin = await http.get("/v1/projects")
        assert admin.headers["cache-control"] == "no-store"
        assert "etag" not in admin.headers

        created = await http.post("/v1/funnels")
        assert created.status_code == 201
        assert created.headers["cache-control"] == "no-store"

        health = await http.get("/livez")
        assert "etag" not in health.headers and "cache-control" not in health.headers


async def test_store_is_bounded() -> None:
    backend = Backend()
    app = make_app(backend, entries=2)
    async with client(app) as http:
        for n in (1, 2, 3):
            await http.get(f"/v1/activity?n={n}")
        await http.get("/v1/activity?n=1")  # evicted as least recently used: runs again
    assert backend.calls == 4
