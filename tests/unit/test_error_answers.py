"""What a client gets when a route fails: a `{"code", "message"}` body with the right status,
never a bare 500 for a failure the service can name."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, ProgrammingError

from services.common.db import database_unavailable
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

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connection refused")  # PostgreSQL down

    @app.get("/bad-sql")
    async def bad_sql() -> None:
        raise asyncpg.PostgresSyntaxError("syntax error at or near")  # a bug, not an outage

    return app


async def _answers(*paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        return [await http.get(path) for path in paths]


async def test_a_statement_timeout_is_a_503_to_retry_not_a_500() -> None:
    slow, broken = await _answers("/slow", "/broken")
    assert slow.status_code == 503
    assert slow.json()["code"] == "timeout"
    assert slow.headers["retry-after"] == "5"
    assert broken.status_code == 500
    assert broken.json() == {
        "code": "internal_error",
        "message": "unexpected error; it has been logged",
    }


async def test_an_unreachable_database_is_a_503_to_retry_and_a_bad_statement_a_500() -> None:
    refused, bad_sql = await _answers("/refused", "/bad-sql")
    assert refused.status_code == 503
    assert refused.json()["code"] == "database_unavailable"
    assert refused.headers["retry-after"] == "5"
    assert bad_sql.status_code == 500
    assert bad_sql.json()["code"] == "internal_error"


def _wrapped(error: BaseException, invalidated: bool = False) -> DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: the driver's error as `orig`, caused by
    asyncpg's."""
    driver_error = Exception(str(error))
    driver_error.__cause__ = error
    return DBAPIError("SELECT 1", None, driver_error, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.TooManyConnectionsError("too many clients"), True),
        (_wrapped(asyncpg.ConnectionDoesNotExistError("closed in the middle")), True),
        (_wrapped(RuntimeError("anything"), invalidated=True), True),
        (TimeoutError(), False),  # a statement over its timeout: its own 503
        (asyncpg.PostgresSyntaxError("syntax error"), False),
        (_wrapped(asyncpg.UndefinedColumnError("column does not exist")), False),
        (ProgrammingError("SELECT x", None, Exception("no such column")), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_which_errors_mean_the_database_is_unavailable(
    error: BaseException, unavailable: bool
) -> None:
    assert database_unavailable(error) is unavailable
