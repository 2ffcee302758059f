"""What a client gets when a route fails: a `{"code", "message"}` body with the right status,
never a bare 500 for a failure the service can name."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.http import install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/slow")
    async def slow() -> None:
        raise TimeoutError  # what a database statement over its command timeout raises

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    return app


async def test_a_statement_timeout_is_a_503_to_retry_not_a_500() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        slow = await http.get("/slow")
        broken = await http.get("/broken")
    assert slow.status_code == 503
    assert slow.json()["code"] == "timeout"
    assert slow.headers["retry-after"] == "5"
    assert broken.status_code == 500
    assert broken.json() == {
        "code": "internal_error",
        "message": "unexpected error; it has been logged",
    }
