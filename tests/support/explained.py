"""Executed plans, as `auto_explain` sends them back to the connection that ran them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson

from tests.support.store_db import Db


class NestedLoopsOnly:
    """A connection that joins only by nested loops, with `auto_explain` sending back the
    executed plans (nested statements too: a trigger's) whose query text holds `marker`."""

    def __init__(self, db: Db, marker: str) -> None:
        self._db = db
        self._marker = marker
        self.plans: list[dict[str, Any]] = []
        self.conn: asyncpg.Connection | None = None

    def _keep(self, _: asyncpg.Connection, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message
        if text.startswith("duration:") and "plan:" in text:
            explained = orjson.loads(text.split("plan:", 1)[1])
            if self._marker in explained["Query Text"]:
                self.plans.append(explained["Plan"])

    async def __aenter__(self) -> asyncpg.Connection:
        self.conn = await asyncpg.connect(
            self._db.url, server_settings={"enable_hashjoin": "off", "enable_mergejoin": "off"}
        )
        self.conn.add_log_listener(self._keep)
        await self.conn.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
            "SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on; "
            "SET auto_explain.log_timing = off; SET auto_explain.log_format = json; "
            "SET client_min_messages = log"
        )
        return self.conn

    async def __aexit__(self, *_: object) -> None:
        assert self.conn is not None
        self.conn.remove_log_listener(self._keep)
        await self.conn.close()


def index_scans(plan: dict[str, Any], table: str) -> Iterator[dict[str, Any]]:
    """The index scans of `table` in the plan."""
    if plan.get("Relation Name") == table and "Index Name" in plan:
        yield plan
    for child in plan.get("Plans", []):
        yield from index_scans(child, table)
