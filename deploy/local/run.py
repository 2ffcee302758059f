"""`make run`: the whole stack in the foreground: Kafka, PostgreSQL, migrations, three services.

Creates (or reuses) a dev project, prints the URLs and its keys, and on Ctrl-C stops everything it
started, in reverse order. A service that exits is started again, after a delay that doubles, as
docker-compose.yml's `restart: unless-stopped` does: the services are crash-only (the metrics
service exits when its database lost commits or stays unreachable for a minute, or another
consumer took its partitions, and resumes from PostgreSQL's offsets when started), so a restart
is their recovery. Honours DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, PULSE_INGEST_PORT,
PULSE_GATEWAY_PORT, PULSE_METRICS_PORT and PULSE_ADMIN_TOKEN.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from deploy.local.stack import ROOT, StackError, local_stack, port_is_free
from services.common.settings import DEV_ADMIN_TOKEN

BIN = Path(sys.executable).parent
SERVICES = {
    "ingest": ("pulse-ingest", "PULSE_INGEST_PORT", 8001),
    "metrics": ("pulse-metrics", "PULSE_METRICS_PORT", 8003),
    "gateway": ("pulse-gateway", "PULSE_GATEWAY_PORT", 8002),
}
DEV_PROJECT = "dev"

# A service that exits is started again after RESTART_DELAY seconds, doubled for each exit
# within RESTART_WINDOW (as Docker's restart policy does), so a database that restarts has time
# to come back. One that exits more than RESTART_LIMIT times within the window (about half a
# minute of failing) fails for a reason a restart does not fix (a bad setting, a port taken, a
# dependency gone for good): the stack stops instead.
RESTART_DELAY = 1.0
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
WATCH_SECONDS = 0.5


def _http(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _wait_ready(name: str, url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode} (its log is above)")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise StackError(f"{name} not ready at {url}/readyz after {timeout:.0f}s")


def main() -> int:
    started = time.monotonic()
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    # Ctrl-C reaches the whole foreground process group; we stop children ourselves, in order.
    # SIGINT is set explicitly: a shell starting us in the background may have ignored it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with local_stack(ROOT / ".local") as stack_env:
            # The services stop before the stack does (leaving this block stops Kafka and
            # PostgreSQL): the metrics service's SIGTERM finishes and commits its batch.
            try:
                return _serve(started, {**os.environ, **stack_env}, procs)
            finally:
                _stop(procs)
    except KeyboardInterrupt:
        print("\nStopping ...", file=sys.stderr)
        return 0
    except (StackError, subprocess.CalledProcessError, urllib.error.URLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _serve(
    started: float, env: dict[str, str], procs: list[tuple[str, subprocess.Popen[bytes]]]
) -> int:
    """Migrate, start the services (appended to `procs`), print where they are, and keep them
    running until Ctrl-C (`_watch`)."""
    env.setdefault("PULSE_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    # No load balancer polls /readyz here: Ctrl-C stops at once (compose keeps the default).
    env.setdefault("PULSE_DRAIN_SECONDS", "0")
    subprocess.run([str(BIN / "pulse"), "migrate"], env=env, check=True)
    urls = {}
    for name, (_, port_var, default) in SERVICES.items():
        port = int(env.get(port_var, default))
        if not port_is_free(port):
            raise StackError(f"{name}: port {port} is in use; set {port_var} to another")
        urls[name] = f"http://127.0.0.1:{port}"
        procs.append((name, _start(name, env)))
    for name, proc in procs:
        _wait_ready(name, urls[name], proc)
    admin = env["PULSE_ADMIN_TOKEN"]
    existing = [
        p for p in _http("GET", f"{urls['gateway']}/v1/projects", admin) if p["name"] == DEV_PROJECT
    ]
    project = (
        existing[0]
        if existing
        else _http("POST", f"{urls['gateway']}/v1/projects", admin, {"name": DEV_PROJECT})
    )
    print(
        f"""
Pulse is running (ready in {time.monotonic() - started:.1f}s). Ctrl-C stops everything.

  ingest   {urls["ingest"]}     (Segment: POST /v1/batch, PostHog: POST /batch/)
  gateway  {urls["gateway"]}     (dashboard /, API docs /docs)
  metrics  {urls["metrics"]}/metrics

  dev project   id {project["id"]}
  write key     {project["write_key"]}
  read key      {project["read_key"]}
  admin token   {admin}
  Kafka         {env["KAFKA_BOOTSTRAP_SERVERS"]}
  PostgreSQL    {env["DATABASE_URL"]}

  curl -H "Authorization: Bearer {project["read_key"]}" \\
       "{urls["gateway"]}/v1/activity?from=$(date -u +%F)&to=$(date -u +%F)"

  A web page sends with posthog-js (the README shows Segment's and RudderStack's):
  posthog.init("{project["write_key"]}", {{ api_host: "{urls["ingest"]}" }})
""",
        flush=True,
    )
    return _watch(procs, env)


def _start(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(BIN / SERVICES[name][0])], env=env, start_new_session=True)


def _watch(procs: list[tuple[str, subprocess.Popen[bytes]]], env: dict[str, str]) -> int:
    """Start again each service that exits (replacing its entry in `procs`), until Ctrl-C; 1 when
    one keeps exiting (RESTART_LIMIT)."""
    exits: dict[str, list[float]] = {name: [] for name, _ in procs}
    due: dict[int, float] = {}  # index in `procs` -> when to start that service again
    while True:
        time.sleep(WATCH_SECONDS)
        now = time.monotonic()
        for i, (name, proc) in enumerate(procs):
            if i in due:
                if now >= due[i]:
                    del due[i]
                    procs[i] = (name, _start(name, env))
                continue
            if proc.poll() is None:
                continue
            exits[name] = [t for t in exits[name] if now - t < RESTART_WINDOW] + [now]
            if len(exits[name]) > RESTART_LIMIT:
                print(
                    f"error: {name} exited {len(exits[name])} times within "
                    f"{RESTART_WINDOW:.0f}s (last code {proc.returncode}); stopping the stack",
                    file=sys.stderr,
                )
                return 1
            delay = RESTART_DELAY * 2 ** (len(exits[name]) - 1)
            print(
                f"{name} exited with code {proc.returncode}; starting it again in {delay:g}s",
                file=sys.stderr,
            )
            due[i] = now + delay


def _stop(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM the services in reverse start order, then wait for each (killed after 20 s)."""
    for _, proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _, proc in reversed(procs):
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
