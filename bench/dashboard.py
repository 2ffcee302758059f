"""200 dashboards polling the gateway: what a wall of open dashboards costs (issue 7).

Each poller is one open dashboard page: every 5 s it loads, concurrently, the endpoints the page
needs for a 30-day range, sending back the ETag of its previous answer like a browser does
(`If-None-Match`). Pollers are spread over a few projects holding `make demo` data.

Figures:
- `dashboard_poll_p95_ratio`: p95 latency of those requests against the p95 of a bare endpoint
  returning a static JSON of the same mean size, polled the same way (same server, uvicorn +
  FastAPI, one process). Goal <= 3.
- `dashboard_poll_304_share`: the share of answers that were `304 Not Modified`.

Everything runs on 127.0.0.1, for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.harness import Figure
from deploy.demo import DemoConfig, Generator, create_project, send_all, wait_applied
from deploy.local.stack import free_port

BIN = Path(sys.executable).parent
POLLERS = 200
PROJECTS = 4
POLL_SECONDS = 5.0
WARMUP_SECONDS = 10.0
MEASURE_SECONDS = 40.0
CONNECTIONS_PER_PAGE = 3
ADMIN = "bench-admin-token"
PAGE_ENDPOINTS = (
    "/v1/activity?from={start}&to={stop}",
    "/v1/breakdowns",
    "/v1/activity?from={start}&to={stop}&breakdown=plan",
    "/v1/stickiness?from={start}&to={stop}&period=week",
    "/v1/lifecycle?from={start}&to={stop}&period=week",
    "/v1/events?from={start}&to={stop}",
    "/v1/status",
    # Views of later features: the page asks, and shows "not available yet" on 404.
    "/v1/retention?from={start}&to={stop}&length=14&period=day&mode=on",
    "/v1/funnels",
    "/v1/sessions?from={start}&to={stop}",
    "/v1/live",
)


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    full_bodies: list[int] = field(default_factory=list)  # sizes of 200 answers, warm-up too
    errors: int = 0

    def p95(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")


@contextmanager
def process(args: list[str], env: dict[str, str], url: str, log: Path) -> Iterator[None]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} not ready; see {log}")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


class Connection:
    """One keep-alive HTTP/1.1 connection, as lean as possible so that 200 pollers in one Python
    process measure the server rather than the client (httpx costs ~1 ms of CPU a request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        status = int((await self.reader.readline()).split()[1])
        received: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            received[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(received.get("content-length", "0")))
        return status, received, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def poll(
    port: int, pages: list[list[tuple[str, dict[str, str]]]], warmup: float, measure: float
) -> Samples:
    """Every poller loads its page's URLs every POLL_SECONDS over CONNECTIONS_PER_PAGE
    connections, like a browser; only requests sent in the measured window count."""
    samples = Samples()
    started = time.monotonic()
    stop = started + warmup + measure

    async def one(
        conn: Connection, path: str, headers: dict[str, str], etags: dict[str, str]
    ) -> None:
        sent = dict(headers)
        if path in etags:
            sent["If-None-Match"] = etags[path]
        began = time.monotonic()
        try:
            status, received, body = await conn.get(path, sent)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            # The server closed an idle keep-alive connection: reconnect once, as browsers do.
            conn.close()
            conn.writer = None
            began = time.monotonic()
            try:
                status, received, body = await conn.get(path, sent)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                samples.errors += 1
                conn.close()
                conn.writer = None
                return
        took = time.monotonic() - began
        if "etag" in received:
            etags[path] = received["etag"]
        if status == 200:
            samples.full_bodies.append(len(body))
        if began >= started + warmup:
            samples.seconds.append(took)
            samples.statuses.append(status)
            samples.paths.append(path.partition("?")[0])

    async def poller(urls: list[tuple[str, dict[str, str]]]) -> None:
        etags: dict[str, str] = {}
        conns = [Connection(port) for _ in range(CONNECTIONS_PER_PAGE)]
        lanes = [urls[i :: len(conns)] for i in range(len(conns))]

        async def lane(conn: Connection, work: list[tuple[str, dict[str, str]]]) -> None:
            for path, headers in work:
                await one(conn, path, headers, etags)

        await asyncio.sleep(random.uniform(0, POLL_SECONDS))
        try:
            while time.monotonic() < stop:
                tick = time.monotonic()
                await asyncio.gather(*(lane(c, w) for c, w in zip(conns, lanes, strict=True)))
                await asyncio.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - tick)))
        finally:
            for conn in conns:
                conn.close()

    await asyncio.gather(*(poller(urls) for urls in pages))
    return samples


async def vacuum(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def run(env: dict[str, str]) -> list[Figure]:
    random.seed(7)
    logs = Path(__file__).parent / "results"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("ingest", "metrics", "gateway", "static")}
    service_env = {
        **os.environ,
        **env,
        "PULSE_DRAIN_SECONDS": "0",
        "PULSE_ADMIN_TOKEN": ADMIN,
        "PULSE_EVENTS_TOPIC": "bench-dashboard.events",
        "PULSE_REJECTED_TOPIC": "bench-dashboard.rejected",
        "PULSE_CONSUMER_GROUP": "bench-dashboard.metrics",
        "PULSE_INGEST_PORT": str(ports["ingest"]),
        "PULSE_METRICS_PORT": str(ports["metrics"]),
        "PULSE_GATEWAY_PORT": str(ports["gateway"]),
        "PULSE_LOG_LEVEL": "warning",
    }
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    logs = logs / "dashboard"
    logs.mkdir(exist_ok=True)
    today = datetime.now(UTC).date()
    span = {"start": str(today - timedelta(days=29)), "stop": str(today)}
    with (
        process([str(BIN / "pulse-ingest")], service_env, url["ingest"], logs / "ingest.log"),
        process([str(BIN / "pulse-metrics")], service_env, url["metrics"], logs / "metrics.log"),
        process([str(BIN / "pulse-gateway")], service_env, url["gateway"], logs / "gateway.log"),
    ):
        keys = []
        for i in range(PROJECTS):
            project = create_project(url["gateway"], ADMIN, f"bench-dashboard-{i}", "UTC")
            time.sleep(2.5)  # the ingest key cache
            events = list(Generator(DemoConfig(days=45, signups_per_day=12, seed=i)).events())
            send_all(url["ingest"], project["write_key"], events)
            wait_applied(url["gateway"], project["read_key"], len(events))
            keys.append(project["read_key"])
        # Let PostgreSQL's autovacuum of the freshly loaded tables not run during the measure.
        asyncio.run(vacuum(env["DATABASE_URL"]))
        print(f"  {PROJECTS} projects with demo data; {POLLERS} pollers", flush=True)
        pages = [
            [
                (path.format(**span), {"Authorization": f"Bearer {keys[i % PROJECTS]}"})
                for path in PAGE_ENDPOINTS
            ]
            for i in range(POLLERS)
        ]
        gateway = asyncio.run(poll(ports["gateway"], pages, WARMUP_SECONDS, MEASURE_SECONDS))

    size = int(sum(gateway.full_bodies) / max(1, len(gateway.full_bodies)))
    static_env = {**os.environ, "PULSE_BIND_HOST": "127.0.0.1"}
    static = [str(BIN / "python"), "-m", "bench.dashboard", "serve-static"]
    with process(
        [*static, str(ports["static"]), str(size)], static_env, url["static"], logs / "static.log"
    ):
        bare = [[("/static", {})] * len(PAGE_ENDPOINTS) for _ in range(POLLERS)]
        baseline = asyncio.run(poll(ports["static"], bare, WARMUP_SECONDS, MEASURE_SECONDS))

    # Endpoints of later features answer 404 for now; the share is over those that exist.
    answered = [s for s in gateway.statuses if s != 404]
    not_modified = answered.count(304) / max(1, len(answered))
    counts = {s: gateway.statuses.count(s) for s in sorted(set(gateway.statuses))}
    print(
        f"  gateway: {len(gateway.seconds) / MEASURE_SECONDS:.0f} requests/s, statuses {counts},"
        f" p95 {gateway.p95() * 1000:.1f} ms, errors {gateway.errors}\n"
        f"  static:  {len(baseline.seconds) / MEASURE_SECONDS:.0f} requests/s of {size} bytes,"
        f" p95 {baseline.p95() * 1000:.1f} ms, errors {baseline.errors}",
        flush=True,
    )
    for path in sorted(set(gateway.paths)):
        took = sorted(t for t, p in zip(gateway.seconds, gateway.paths, strict=True) if p == path)
        p50, p95 = took[len(took) // 2], took[int(0.95 * (len(took) - 1))]
        print(f"    {path:<16} p50 {p50 * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms")
    return [
        Figure("dashboard_poll_p95_ratio", gateway.p95(), baseline.p95(), "s", "<= 3"),
        Figure("dashboard_poll_304_share", not_modified, 1.0, "share of 200/304 answers"),
    ]


def serve_static(port: int, size: int) -> None:
    """The baseline: a bare FastAPI endpoint returning a static JSON of `size` bytes."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    filler = max(0, size - len('{"data":""}'))
    body = ('{"data":"' + "x" * filler + '"}').encode()
    app = FastAPI()

    @app.get("/static")
    async def static() -> Response:
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve-static"]:
        serve_static(int(sys.argv[2]), int(sys.argv[3]))
