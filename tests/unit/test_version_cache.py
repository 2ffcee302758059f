"""The gateway's version cache (caching.py `VersionCache`): how often it reads a project's version,
which requests wait for a read, and which reads it keeps. A fake clock and a fake read, no I/O."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from starlette.types import Scope
from structlog.testing import capture_logs

from services.common.projects import Project
from services.gateway.caching import Version, VersionCache
from services.gateway.state import GatewayState

STALENESS = 1.0
SCOPE: Scope = {
    "type": "http",
    "method": "GET",
    "path": "/v1/events",
    "headers": [(b"authorization", b"Bearer pr_key")],
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Versions(VersionCache):
    """A VersionCache whose reads return the pipeline position `position` holds when they begin,
    and end when the test releases them."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(lambda: None, STALENESS, clock)  # type: ignore[arg-type,return-value]
        self.position = 1
        self.reads = 0
        self.release = asyncio.Event()
        self.release.set()

    async def _project(self, state: GatewayState, scope: Scope) -> Project | None:
        return Project(id=7, name="p", timezone="UTC", write_key="pw_key", read_key="pr_key")

    async def _read(self, state: GatewayState, project_id: int) -> tuple[float, Version | None]:
        began, position = self._clock(), self.position
        self.reads += 1
        await self.release.wait()
        return began, Version((project_id, position), None, None, None)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_version_is_reused_within_half_its_life_without_a_read() -> None:
    clock = Clock()
    versions = Versions(clock)
    first = await versions(SCOPE)
    versions.position = 2
    clock.now += STALENESS * 0.4
    assert await versions(SCOPE) == first
    await settle()
    assert versions.reads == 1


async def test_past_half_its_life_a_request_answers_at_once_and_the_next_read_runs_behind_it() -> (
    None
):
    clock = Clock()
    versions = Versions(clock)
    first = await versions(SCOPE)
    versions.position = 2
    versions.release.clear()  # the refresh cannot end until released
    clock.now += STALENESS * 0.6
    assert await asyncio.wait_for(versions(SCOPE), 1) == first  # did not wait for the read
    assert await asyncio.wait_for(versions(SCOPE), 1) == first  # nor start a second one
    assert versions.reads == 2
    versions.release.set()
    await settle()
    assert await versions(SCOPE) == (7, 2)
    assert versions.reads == 2


async def test_an_expired_version_is_waited_for() -> None:
    clock = Clock()
    versions = Versions(clock)
    await versions(SCOPE)
    versions.position = 2
    versions.release.clear()
    clock.now += STALENESS
    waiting = asyncio.ensure_future(versions(SCOPE))
    await settle()
    assert not waiting.done()
    versions.release.set()
    assert await waiting == (7, 2)


async def test_a_read_begun_before_a_write_is_not_kept() -> None:
    clock = Clock()
    versions = Versions(clock)
    await versions(SCOPE)
    versions.release.clear()
    clock.now += STALENESS * 0.6
    await versions(SCOPE)  # starts a refresh
    await settle()  # which begins, before the write below
    clock.now += 0.01
    await versions.forget({**SCOPE, "method": "POST", "path": "/v1/funnels"})
    versions.position = 3
    versions.release.set()
    await settle()
    # The refresh's version predates the write: the next request reads a version of its own.
    assert await versions(SCOPE) == (7, 3)
    assert versions.reads == 3


async def test_a_failed_background_read_is_logged_and_the_next_request_reads_again() -> None:
    clock = Clock()
    versions = Versions(clock)
    await versions(SCOPE)
    failures: list[Any] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: failures.append(context))
    original = versions._read

    async def failing(state: GatewayState, project_id: int) -> tuple[float, Version | None]:
        raise RuntimeError("lost")

    versions._read = failing  # type: ignore[method-assign]
    clock.now += STALENESS * 0.6
    with capture_logs() as logs:
        await versions(SCOPE)
        await settle()
    assert [(e["event"], e["error"]) for e in logs] == [
        ("read_cache_version_error", "RuntimeError('lost')")
    ]
    versions._read = original  # type: ignore[method-assign]
    versions.position = 2
    clock.now += STALENESS * 0.5  # the kept version has expired
    assert await versions(SCOPE) == (7, 2)
    gc.collect()
    await settle()
    assert failures == []
