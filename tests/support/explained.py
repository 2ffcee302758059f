"""Executed plans, as `auto_explain` sends them back to the connection that ran them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

if TYPE_CHECKING:  # store_db imports this module
    from tests.support.store_db import Db


@asynccontextmanager
async def explaining(
    conn: asyncpg.Connection,
    keep: Callable[[dict[str, Any]], None],
    *,
    analyze: bool,
    nested: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """While inside, every statement `conn` runs (with `nested`, a trigger's statements too)
    has its plan passed to `keep`: auto_explain's JSON, with "Query Text" and "Plan" (executed,
    with row counts, when `analyze`), and "JIT" when it compiled."""

    def listen(_: asyncpg.Connection, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message
        if text.startswith("duration:") and "plan:" in text:
            keep(orjson.loads(text.split("plan:", 1)[1]))

    conn.add_log_listener(listen)
    try:
        await conn.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
            f"SET auto_explain.log_nested_statements = {'on' if nested else 'off'}; "
            f"SET auto_explain.log_analyze = {'on' if analyze else 'off'}; "
            "SET auto_explain.log_timing = off; SET auto_explain.log_format = json; "
            "SET client_min_messages = log"
        )
        yield conn
    finally:
        conn.remove_log_listener(listen)


class NestedLoopsOnly:
    """A connection that joins only by nested loops, with `auto_explain` sending back the
    executed plans (nested statements too: a trigger's) whose query text holds `marker`."""

    def __init__(self, db: Db, marker: str) -> None:
        self._db = db
        self._marker = marker
        self.plans: list[dict[str, Any]] = []
        self._open = AsyncExitStack()

    def _keep(self, explained: dict[str, Any]) -> None:
        if self._marker in explained["Query Text"]:
            self.plans.append(explained["Plan"])

    async def __aenter__(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self._db.url, server_settings={"enable_hashjoin": "off", "enable_mergejoin": "off"}
        )
        self._open.push_async_callback(conn.close)
        return await self._open.enter_async_context(
            explaining(conn, self._keep, analyze=True, nested=True)
        )

    async def __aexit__(self, *_: object) -> None:
        await self._open.aclose()


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, the root first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def index_scans(plan: dict[str, Any], table: str) -> Iterator[dict[str, Any]]:
    """The index scans of `table` in the plan."""
    return (n for n in plan_nodes(plan) if n.get("Relation Name") == table and "Index Name" in n)
