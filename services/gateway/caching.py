"""HTTP caching of the read API, so many polling dashboards cost little.

Two layers:

- **Validators for clients.** Every `200` to a `GET /v1/...` read carries `ETag` (a digest of the
  body), `Cache-Control: private, max-age=N` and `Vary: Authorization`; a request whose
  `If-None-Match` names the current ETag gets `304 Not Modified` with no body. Browsers do this on
  their own for `fetch()`, so a dashboard re-polling unchanged numbers downloads nothing.
- **Reuse on the server.** The reads listed in `VERSIONED_READS` depend only on the project's
  aggregates and the pipeline position. A project's aggregates change only in a metrics
  transaction that also bumps its `project_stats` counters (store.py applies dedup, merges,
  aggregates and counters together), so `(project_stats row, applied offsets, topic end offsets)`
  is a version of everything such a response says, `freshness` included. A response is reused
  while its version is unchanged; the counters and offsets only grow, and a response is computed
  after its version was read, so a stored response never predates its version. The version is
  read at most every `read_cache_staleness_seconds` per project (one indexed row), so a reused
  answer is at most that much behind the pipeline, and consistent with the other reads of the
  same moment. Concurrent identical requests for an uncached version wait for one computation.

Funnel reads (`/v1/funnels`, `/v1/funnels/{id}`) also depend on the project's funnel definitions
and on each funnel's backfill, which change outside those transactions: the gateway creates and
deletes funnels, and the metrics service backfills a new one in transactions of its own, each
moving the funnel's `backfill_cursor` (and finally `backfill`, `backfill_done_at`). Their version
therefore adds the project's funnels `(id, backfill, backfill_cursor, backfill_done_at)`: any
creation, deletion or backfill step is a new version. (`funnel_attempts` otherwise change only in
the metrics batch transactions, which bump the counters and offsets.) A successful POST or DELETE
under `/v1/funnels` drops this process's known version of the project before its response is
sent, so a client reads its own write at once; other gateway processes see it within the
staleness bound like any change.

The sessions read (`/v1/sessions`) also depends on the project's session settings and on the
rebuild of its sessions after they change, which happen outside those transactions: the admin
API changes the settings (`PATCH /v1/projects/{id}`), and the metrics service rebuilds the
sessions in transactions of its own, each moving `projects.sessions_rebuild_cursor` (and finally
`sessions_rebuild`). Its version therefore adds the project's `(session_timeout_seconds,
session_cap_seconds, sessions_generation, sessions_rebuild, sessions_rebuild_cursor)`: a change
bumps the generation and restarts the cursor, and within a generation the cursor only moves
forward, so every change and every rebuild step is a new version. A successful PATCH of a
project drops this process's known version of it, like a funnel write. (Paths are cut by
neither setting: their version is the pipeline's.)

The activity, retention, stickiness, lifecycle and sessions reads (`/v1/activity`,
`/v1/retention`, `/v1/stickiness`, `/v1/lifecycle`, `/v1/sessions`) also depend, with
`?breakdown=`, and the list of keys (`/v1/breakdowns`) always, on the project's tracked keys,
which POST and DELETE `/v1/breakdowns` and a metrics service's start add or drop, and on the
backfill of a new key (the metrics service's breakdown_backfill.py), which moves
`breakdown_keys.backfill_cursor` (and finally `backfill`) in transactions of its own. Their
version therefore adds the project's `breakdown_keys` `(key, configured, backfill,
backfill_cursor, backfill_done_at)`: every change of the keys and every backfill step is a new
version. A successful POST or DELETE of `/v1/breakdowns` drops this process's known version of
the project before its response is sent, like a funnel write.

Reads whose answer also depends on the clock (`CLOCKED_READS`: the live view's sliding windows)
are reused the same way but for at most `CLOCKED_REUSE_SECONDS` (1 s): new events still show as
soon as their version is read, and the windows slide within the second the live view promises.
Writes (any method but GET) and admin responses (they hold keys) are marked `no-store`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.logging import get_logger
from services.common.projects import Project
from services.gateway.state import GatewayState

log = get_logger(__name__)

READ_PREFIX = "/v1/"
ADMIN_PREFIX = "/v1/projects"
FUNNELS_PREFIX = "/v1/funnels"
SESSIONS_PATH = "/v1/sessions"
BREAKDOWN_READS = (
    "/v1/activity",
    "/v1/retention",
    "/v1/stickiness",
    "/v1/lifecycle",
    "/v1/breakdowns",
)
# A path listed here is versioned, and so are the paths below it (`/v1/funnels/{id}`).
VERSIONED_READS = (
    "/v1/activity",
    "/v1/breakdowns",
    "/v1/stickiness",
    "/v1/lifecycle",
    "/v1/events",
    "/v1/retention",
    SESSIONS_PATH,
    "/v1/paths",
    "/v1/status",
    "/v1/rejected",
    FUNNELS_PREFIX,
)
# Versioned like the reads above, and also expired by age: their answer moves with the clock.
CLOCKED_READS = ("/v1/live",)
CLOCKED_REUSE_SECONDS = 1.0
MAX_CACHED_BYTES = 64 * 1024 * 1024

VERSION_SQL = text(
    """
SELECT s.events_processed, s.duplicates_dropped, s.rejected, s.processed_through,
       (SELECT coalesce(sum(o.next_offset), 0) FROM consumer_offsets o
        WHERE o.consumer_group = :group AND o.topic = ANY(:topics)) AS applied,
       (SELECT string_agg(format('%s %s %L %L', f.id, f.backfill, f.backfill_cursor,
                                 f.backfill_done_at), ',' ORDER BY f.id)
        FROM funnels f WHERE f.project_id = :project) AS funnels,
       (SELECT format('%s %s %s %s %L', p.session_timeout_seconds, p.session_cap_seconds,
                      p.sessions_generation, p.sessions_rebuild, p.sessions_rebuild_cursor)
        FROM projects p WHERE p.id = :project) AS sessions,
       (SELECT string_agg(format('%L %s %s %L %L', k.key, k.configured, k.backfill,
                                 k.backfill_cursor, k.backfill_done_at), ',' ORDER BY k.key)
        FROM breakdown_keys k WHERE k.project_id = :project) AS breakdowns
FROM (SELECT 1) AS one
LEFT JOIN project_stats s ON s.project_id = :project
"""
)
# A change of a project's session settings: PATCH /v1/projects/{id} (admin API).
SETTINGS_WRITE = re.compile(r"/v1/projects/(\d+)")


def under(path: str, prefixes: tuple[str, ...]) -> bool:
    """`path` is one of `prefixes` or below one of them."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def settings_written(scope: Scope) -> int | None:
    """The project whose session settings `scope` changes, if it is such a request."""
    match = SETTINGS_WRITE.fullmatch(scope.get("path", ""))
    if match is None or scope.get("method") != "PATCH":
        return None
    return int(match.group(1))


def etag_for(body: bytes) -> str:
    """A strong validator: equal bodies, equal tags."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def read_headers(etag: str, max_age: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"etag", etag.encode()),
        (b"cache-control", f"private, max-age={max_age}".encode()),
        (b"vary", b"Authorization"),
    ]


@dataclass(frozen=True)
class Captured:
    """A complete response as the app sent it."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Any = None  # the matched route, so request metrics label a reused response alike
    began: float = 0.0  # time.monotonic() when the app started on it


@dataclass(frozen=True)
class Stored:
    version: tuple[Any, ...]
    response: Captured
    etag: str


VersionOf = Callable[[Scope], Awaitable[tuple[Any, ...] | None]]
OnWrite = Callable[[Scope], Awaitable[None]]


class ResponseStore:
    """Reused responses, one per (project, path, query), least recently used evicted first."""

    def __init__(self, max_entries: int, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self._entries: OrderedDict[tuple[Any, ...], Stored] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._inflight: dict[tuple[Any, ...], asyncio.Future[Captured]] = {}

    def get(
        self, key: tuple[Any, ...], version: tuple[Any, ...], max_age: float | None = None
    ) -> Stored | None:
        stored = self._entries.get(key)
        if stored is None or stored.version != version:
            return None
        if max_age is not None and time.monotonic() - stored.response.began >= max_age:
            return None
        self._entries.move_to_end(key)
        return stored

    def put(self, key: tuple[Any, ...], stored: Stored) -> None:
        size = len(stored.response.body)
        if self._max_entries == 0 or size > self._max_bytes // 4:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.response.body)
        self._entries[key] = stored
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.response.body)

    async def compute_once(
        self, key: tuple[Any, ...], compute: Callable[[], Awaitable[Captured]]
    ) -> Captured:
        """Run `compute` for `key`, or wait for the run already in flight for it.

        The run is a task of its own: a client that disconnects does not cancel it for the
        others waiting on it.
        """
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(compute())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: tuple[Any, ...], task: asyncio.Future[Captured]) -> None:
        del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: waiters that went away leave no unreported error

    def __len__(self) -> int:
        return len(self._entries)


async def capture(app: ASGIApp, scope: Scope, receive: Receive) -> Captured:
    """Run the app to completion and keep what it sent."""
    began = time.monotonic()
    start: Message = {}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return Captured(
        status=int(start["status"]),
        headers=list(start.get("headers", [])),
        body=b"".join(chunks),
        route=scope.get("route"),
        began=began,
    )


class ReadCaching:
    """ASGI middleware: validators, 304s and response reuse for `GET /v1/...` reads."""

    def __init__(
        self,
        app: ASGIApp,
        max_age: int,
        max_entries: int,
        version_of: VersionOf | None = None,
        versioned: tuple[str, ...] = VERSIONED_READS,
        on_write: OnWrite | None = None,
        clocked: tuple[str, ...] = CLOCKED_READS,
    ) -> None:
        self.app = app
        self.max_age = max_age
        self.store = ResponseStore(max_entries)
        self.version_of = version_of
        self.versioned = versioned
        self.clocked = clocked
        self.on_write = on_write  # told of a successful write to a versioned path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(READ_PREFIX):
            await self.app(scope, receive, send)
            return
        if path.startswith(ADMIN_PREFIX) or scope["method"] != "GET":
            send = _with_header(send, b"cache-control", b"no-store")
            written = under(path, self.versioned) or settings_written(scope) is not None
            if self.on_write is not None and written:
                send = _before_success(send, self.on_write, scope)
            await self.app(scope, receive, send)
            return
        key, version = None, None
        clocked = under(path, self.clocked)
        if self.version_of is not None and (clocked or under(path, self.versioned)):
            version = await self.version_of(scope)
            if version is not None:
                key = (version[0], path, scope.get("query_string", b""))
        if key is None or version is None:
            captured = await capture(self.app, scope, receive)
            etag = etag_for(captured.body)
        else:
            max_age = CLOCKED_REUSE_SECONDS if clocked else None
            stored = self.store.get(key, version, max_age)
            if stored is None:
                # A clocked read's run is shared only by requests within its own second.
                slot = time.monotonic() // max_age if max_age else None
                captured = await self.store.compute_once(
                    (key, version, slot), lambda: capture(self.app, scope, receive)
                )
                etag = etag_for(captured.body)
                if captured.status == 200:
                    self.store.put(key, Stored(version, captured, etag))
            else:
                captured, etag = stored.response, stored.etag
            if captured.route is not None:
                scope["route"] = captured.route
        await self._send(scope, send, captured, etag)

    async def _send(self, scope: Scope, send: Send, captured: Captured, etag: str) -> None:
        if captured.status != 200:
            failed = MutableHeaders(raw=list(captured.headers))
            failed["cache-control"] = "no-store"
            await send(
                {"type": "http.response.start", "status": captured.status, "headers": failed.raw}
            )
            await send({"type": "http.response.body", "body": captured.body})
            return
        validators = read_headers(etag, self.max_age)
        if none_match(Headers(scope=scope).get("if-none-match"), etag):
            await send({"type": "http.response.start", "status": 304, "headers": validators})
            await send({"type": "http.response.body", "body": b""})
            return
        names = {name for name, _ in validators}
        kept = [(k, v) for k, v in captured.headers if k.lower() not in names]
        await send({"type": "http.response.start", "status": 200, "headers": kept + validators})
        await send({"type": "http.response.body", "body": captured.body})


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(raw=list(message.get("headers", [])))
            headers[name.decode()] = value.decode()
            message = {**message, "headers": headers.raw}
        await send(message)

    return sending


def _before_success(send: Send, hook: OnWrite, scope: Scope) -> Send:
    """Run `hook` once the app answered a success, before the client can see the answer."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] < 400:
            await hook(scope)
        await send(message)

    return sending


@dataclass(frozen=True)
class Version:
    """What a project's reads depend on: the pipeline's position for all of them, the funnels'
    definitions and backfill state for the funnel reads as well, the session settings and
    rebuild state for the sessions read, and the breakdown keys' backfill state for the reads
    that break down."""

    pipeline: tuple[Any, ...]  # project id first: the response store keys on it
    funnels: str | None
    sessions: str | None
    breakdowns: str | None


class VersionCache:
    """The gateway's versions: one PostgreSQL read per project per `staleness` seconds or so.

    A version is reused for requests arriving within `staleness` seconds after its read began,
    and concurrent requests share one read. Reads stay consistent with each other (every
    response stored under a version was computed after that version was read), and none is
    more than `staleness` behind the pipeline; 0 reads the version for every request.
    `forget` (after a write) makes the next request read a version begun after it.

    Refresh ahead: a request that finds the version past half its life answers with it at once
    and starts the next read in the background (one at a time per project), so a project read
    steadily (polling dashboards) gets a version about every `staleness / 2` seconds and no
    request waits for one; only a request after a quiet spell, when the version has expired,
    waits for its read. Waiting for every read instead made the reads at 0.1 s of staleness
    slower at the p95 than at 0.25 s, under 200 polling clients.
    """

    def __init__(
        self,
        app_state: Callable[[], GatewayState],
        staleness: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = app_state
        self._staleness = staleness
        self._clock = clock
        self._known: dict[int, tuple[float, Version | None]] = {}
        self._reading: dict[int, asyncio.Future[tuple[float, Version | None]]] = {}
        self._written: dict[int, float] = {}  # per project: when its funnels last changed here

    async def __call__(self, scope: Scope) -> tuple[Any, ...] | None:
        state = self._state()
        project = await self._project(state, scope)
        if project is None:
            return None  # no key, or the route refuses it with 401
        version = await self._version(state, project)
        if version is None:
            return None
        path = scope.get("path", "")
        if under(path, (FUNNELS_PREFIX,)):
            return (*version.pipeline, version.funnels)
        if under(path, (SESSIONS_PATH,)):  # and its breakdown (`?breakdown=`)
            return (*version.pipeline, version.sessions, version.breakdowns)
        if under(path, BREAKDOWN_READS):
            return (*version.pipeline, version.breakdowns)
        return version.pipeline

    async def forget(self, scope: Scope) -> None:
        """The project's funnels or breakdown keys (a read key's write) or session settings (an
        admin's PATCH) changed: versions read before now are no longer current."""
        project_id = settings_written(scope)
        if project_id is None:
            project = await self._project(self._state(), scope)
            if project is None:
                return
            project_id = project.id
        self._written[project_id] = self._clock()
        self._known.pop(project_id, None)
        self._reading.pop(project_id, None)  # requests from now on start a read of their own

    async def _project(self, state: GatewayState, scope: Scope) -> Project | None:
        scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return await state.projects.by_read_key(key.strip())

    async def _version(self, state: GatewayState, project: Project) -> Version | None:
        known = self._known.get(project.id)
        if known is not None:
            age = self._clock() - known[0]
            if age < self._staleness:
                if age >= self._staleness / 2:
                    self._reading_of(state, project.id)  # refresh ahead, not waited for
                return known[1]
        _, version = await asyncio.shield(self._reading_of(state, project.id))
        return version

    def _reading_of(
        self, state: GatewayState, project_id: int
    ) -> asyncio.Future[tuple[float, Version | None]]:
        """The project's read in flight, or a new one; its result is kept when it ends."""
        reading = self._reading.get(project_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(state, project_id))
            self._reading[project_id] = reading
            reading.add_done_callback(lambda done: self._done_reading(project_id, done))
        return reading

    def _done_reading(
        self, project_id: int, reading: asyncio.Future[tuple[float, Version | None]]
    ) -> None:
        # Only this read's own entry: `forget` may have put a newer read in its place.
        if self._reading.get(project_id) is reading:
            del self._reading[project_id]
        if reading.cancelled():
            return
        error = reading.exception()  # retrieved, so a read nobody waits for still reports it
        if error is not None:
            log.error("read_cache_version_error", error=repr(error))
            return
        began, version = reading.result()
        known = self._known.get(project_id)
        newer = known is None or began > known[0]
        # A read begun before the last write (`forget`) may predate it: not kept.
        if version is not None and newer and began >= self._written.get(project_id, -math.inf):
            self._known[project_id] = (began, version)

    async def _read(self, state: GatewayState, project_id: int) -> tuple[float, Version | None]:
        began = self._clock()
        try:
            async with state.engine.connect() as conn:
                row = (
                    await conn.execute(
                        VERSION_SQL,
                        {
                            "project": project_id,
                            "group": state.settings.consumer_group,
                            # the topics `lag` counts, the same the version's topic_end is of
                            "topics": state.lag.topics,
                        },
                    )
                ).one()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # No reuse: the route runs and reports the failure itself.
            log.warning("read_cache_version_failed", error=type(exc).__name__)
            return began, None
        ends = await state.lag.end_offsets()
        topic_end = None if ends is None else tuple(sorted(ends.items()))
        counters = (
            row.events_processed,
            row.duplicates_dropped,
            row.rejected,
            row.processed_through,
            row.applied,
        )
        pipeline = (project_id, *counters, topic_end)
        return began, Version(pipeline, row.funnels, row.sessions, row.breakdowns)
