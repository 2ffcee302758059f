"""`make demo`: a realistic product's last 90 days, sent through the ingest API of a running stack.

The product: visitors land on the site (anonymous page views); some sign up (`identify` merges
their anonymous history into the user) on the free plan; some free users start a 14-day VIP
trial and some of those buy. Weekdays are busier than weekends, sign-ups grow over the period,
users churn (free more than VIP) and a few come back. Events are generated day by day from a
seeded random generator, so a run is reproducible, then sent as Segment `/v1/batch` requests with
the write key, showing a progress bar. Then it defines a few funnels through the API (visit ->
sign-up -> purchase, free -> VIP upgrade, sign-up -> trial -> purchase without a lapsed trial,
activation), waits until the metrics service has evaluated them over the history (a progress
line), and prints the dashboard URL, the keys and the funnels' URLs.

Only the standard library: it talks to Pulse over HTTP like any client.

    make run     # in one terminal
    make demo    # in another

Env: PULSE_INGEST_URL, PULSE_GATEWAY_URL, PULSE_ADMIN_TOKEN (defaults: the `make run` stack),
PULSE_DEMO_DAYS (90), PULSE_DEMO_SIGNUPS (sign-ups a day, 40), PULSE_DEMO_SEED, PULSE_DEMO_TIMEZONE.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from threading import Lock
from typing import Any
from zoneinfo import ZoneInfo

DEV_ADMIN_TOKEN = "pulse-dev-admin-token"
BATCH_EVENTS = 400
SENDERS = 4

# Busier on weekdays (Monday = 0).
WEEKDAY_FACTOR = (1.0, 1.05, 1.05, 1.0, 0.9, 0.55, 0.5)
FEATURE_EVENTS = (
    ("Dashboard Viewed", 5),
    ("Report Created", 3),
    ("Report Shared", 1),
    ("Invite Sent", 1),
    ("Export Downloaded", 1),
    ("Search Performed", 3),
)
DAY = 86400
# Funnels over the generator's events. A purchase ends a 14-day trial that starts within 21 days
# of sign-up, so the funnels ending in one allow 35 days (7 would show no purchase at all).
FUNNELS: tuple[dict[str, Any], ...] = (
    {
        "name": "Visit to purchase",
        "steps": [{"event": "Home"}, {"event": "Signed Up"}, {"event": "Order Completed"}],
        "window_seconds": 35 * DAY,
    },
    {
        "name": "Free to VIP upgrade",
        "steps": [
            {"event": "Trial Started"},
            {
                "event": "Order Completed",
                "where": [{"property": "plan", "op": "eq", "value": "vip"}],
            },
        ],
        "window_seconds": 15 * DAY,
    },
    {
        # Persons whose trial lapsed before they bought are left out (exclusion).
        "name": "Sign-up, trial, purchase (no lapsed trial)",
        "steps": [{"event": "Signed Up"}, {"event": "Trial Started"}, {"event": "Order Completed"}],
        "window_seconds": 35 * DAY,
        "exclusions": [{"event": "Trial Ended", "from_step": 2, "to_step": 3}],
    },
    {
        "name": "Activation",
        "steps": [{"event": "Signed Up"}, {"event": "Report Created"}, {"event": "Report Shared"}],
        "window_seconds": 7 * DAY,
    },
)


@dataclass
class User:
    user_id: str
    anonymous_id: str
    signed_up: date
    propensity: float  # how engaged this person is, around 1
    plan: str = "free"
    trial_ends: date | None = None
    churned: bool = False


@dataclass(frozen=True)
class DemoConfig:
    days: int = 90
    signups_per_day: int = 40
    seed: int = 7
    timezone: str = "UTC"
    end: datetime = field(default_factory=lambda: datetime.now(UTC))


class Generator:
    """Day-by-day simulation; `events()` yields Segment messages in time order within a day."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.zone = ZoneInfo(config.timezone)
        self.users: list[User] = []

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _at(self, day: date, hour_from: float = 7, hour_to: float = 23) -> datetime:
        seconds = self.rng.uniform(hour_from * 3600, hour_to * 3600)
        local = datetime(day.year, day.month, day.day, tzinfo=self.zone) + timedelta(
            seconds=seconds
        )
        return local.astimezone(UTC)

    def _message(self, kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "messageId": self._id(),
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            **fields,
        }

    def events(self) -> Iterator[dict[str, Any]]:
        last_day = self.config.end.astimezone(self.zone).date()
        first_day = last_day - timedelta(days=self.config.days - 1)
        for offset in range(self.config.days):
            day = first_day + timedelta(days=offset)
            growth = 1 + 0.6 * offset / max(1, self.config.days - 1)
            todays = list(self._visitors(day, growth)) + list(self._returning(day))
            todays.sort(key=lambda e: e["timestamp"])
            end = self.config.end.isoformat().replace("+00:00", "Z")
            yield from (e for e in todays if e["timestamp"] <= end)

    def _visitors(self, day: date, growth: float) -> Iterator[dict[str, Any]]:
        factor = WEEKDAY_FACTOR[day.weekday()] * growth
        visitors = int(self.config.signups_per_day * 2.5 * factor * self.rng.uniform(0.85, 1.15))
        for _ in range(visitors):
            anonymous_id = self._id()
            at = self._at(day)
            source = self.rng.choice(("search", "ads", "referral", "direct"))
            yield self._message(
                "page", at, anonymousId=anonymous_id, name="Home", properties={"source": source}
            )
            if self.rng.random() < 0.5:
                at += timedelta(seconds=self.rng.uniform(10, 300))
                yield self._message("page", at, anonymousId=anonymous_id, name="Pricing")
            if self.rng.random() >= 0.4:
                continue
            user = User(
                user_id=f"user-{len(self.users) + 1}",
                anonymous_id=anonymous_id,
                signed_up=day,
                propensity=self.rng.lognormvariate(0, 0.5),
            )
            self.users.append(user)
            at += timedelta(seconds=self.rng.uniform(30, 600))
            ids = {"userId": user.user_id, "anonymousId": anonymous_id}
            yield self._message("identify", at, **ids, traits={"plan": "free"})
            yield self._message(
                "track", at, **ids, event="Signed Up", properties={"plan": "free", "source": source}
            )
            yield from self._session(user, day, at)

    def _returning(self, day: date) -> Iterator[dict[str, Any]]:
        weekday = WEEKDAY_FACTOR[day.weekday()]
        for user in self.users:
            if user.signed_up >= day:
                continue
            if user.churned:
                if self.rng.random() < 0.004:  # a few come back
                    user.churned = False
                else:
                    continue
            yield from self._plan_changes(user, day)
            age = (day - user.signed_up).days
            novelty = 1.6 if age < 7 else 1.0
            base = 0.55 if user.plan != "free" else 0.3
            if self.rng.random() < min(0.95, base * weekday * novelty * user.propensity):
                yield from self._session(user, day, self._at(day))
            if self.rng.random() < (0.004 if user.plan == "vip" else 0.02):
                user.churned = True

    def _plan_changes(self, user: User, day: date) -> Iterator[dict[str, Any]]:
        ids = {"userId": user.user_id}
        if user.plan == "free" and (day - user.signed_up).days < 21 and self.rng.random() < 0.025:
            user.plan, user.trial_ends = "trial", day + timedelta(days=14)
            yield self._message(
                "track", self._at(day), **ids, event="Trial Started", properties={"plan": "vip"}
            )
        elif user.plan == "trial" and user.trial_ends is not None and day >= user.trial_ends:
            at = self._at(day)
            if self.rng.random() < 0.4 * min(1.5, user.propensity):
                user.plan = "vip"
                price = self.rng.choice((29.0, 29.0, 290.0))
                yield self._message("identify", at, **ids, traits={"plan": "vip"})
                yield self._message(
                    "track",
                    at,
                    **ids,
                    event="Order Completed",
                    properties={"plan": "vip", "revenue": price, "currency": "USD"},
                )
            else:
                user.plan = "free"
                yield self._message("track", at, **ids, event="Trial Ended", properties={})

    def _session(self, user: User, day: date, start: datetime) -> Iterator[dict[str, Any]]:
        at = start
        plan = "vip" if user.plan != "free" else "free"
        yield self._message("track", at, userId=user.user_id, event="App Opened", properties={})
        names = [name for name, _ in FEATURE_EVENTS]
        weights = [w for _, w in FEATURE_EVENTS]
        for _ in range(self.rng.randint(1, 4 if plan == "free" else 9)):
            at += timedelta(seconds=self.rng.uniform(5, 240))
            yield self._message(
                "track",
                at,
                userId=user.user_id,
                event=self.rng.choices(names, weights)[0],
                properties={"plan": plan},
            )


# ---- HTTP ---------------------------------------------------------------------------------


def _request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    gzipped: bool = False,
) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if data is not None and gzipped:
        data = gzip.compress(data, compresslevel=5)
        all_headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return exc.code, parsed, dict(exc.headers)


def create_project(gateway: str, admin_token: str, name: str, timezone: str) -> dict[str, Any]:
    status, body, _ = _request(
        "POST",
        f"{gateway}/v1/projects",
        {"name": name, "timezone": timezone},
        {"Authorization": f"Bearer {admin_token}"},
    )
    if status != 201:
        raise RuntimeError(f"creating the project failed: {status} {body}")
    return dict(body)


def send_batch(ingest: str, write_key: str, events: list[dict[str, Any]]) -> None:
    """POST one Segment batch, retrying while the gateway says 429/503 (with Retry-After)."""
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    for _attempt in range(30):
        status, body, headers = _request(
            "POST",
            f"{ingest}/v1/batch",
            {"batch": events},
            {"Authorization": f"Basic {auth}"},
            gzipped=True,
        )
        if status == 200:
            return
        if status not in (429, 503):
            raise RuntimeError(f"ingest refused a batch: {status} {body}")
        time.sleep(float(headers.get("Retry-After", "1")))
    raise RuntimeError("ingest kept answering 429/503; is Kafka up?")


def send_all(
    ingest: str,
    write_key: str,
    events: list[dict[str, Any]],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    batches = [events[i : i + BATCH_EVENTS] for i in range(0, len(events), BATCH_EVENTS)]
    done = 0
    lock = Lock()

    def one(batch: list[dict[str, Any]]) -> None:
        nonlocal done
        send_batch(ingest, write_key, batch)
        with lock:
            done += len(batch)
            if progress:
                progress(done, len(events))

    with ThreadPoolExecutor(SENDERS) as pool:
        for future in [pool.submit(one, b) for b in batches]:
            future.result()


def wait_applied(gateway: str, read_key: str, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    status: Any = {}
    while time.monotonic() < deadline:
        code, status, _ = _request(
            "GET", f"{gateway}/v1/status", headers={"Authorization": f"Bearer {read_key}"}
        )
        if code == 200 and status["events_processed"] >= expected and status["lag"] == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"only {status} applied after {timeout:.0f}s, expected {expected}")


def define_funnels(gateway: str, read_key: str) -> list[dict[str, Any]]:
    """Create the demo funnels; returns them as the API answered (with their ids)."""
    created = []
    for funnel in FUNNELS:
        status, body, _ = _request(
            "POST", f"{gateway}/v1/funnels", funnel, {"Authorization": f"Bearer {read_key}"}
        )
        if status != 201:
            raise RuntimeError(f"defining funnel {funnel['name']!r} failed: {status} {body}")
        created.append(dict(body))
    return created


def wait_backfilled(gateway: str, read_key: str, ids: list[int], timeout: float = 600) -> bool:
    """Wait until the metrics service has evaluated the funnels over the whole history, with a
    progress line; False when that takes longer than `timeout` (they keep filling meanwhile)."""
    started = time.monotonic()
    wanted = set(ids)
    done: set[int] = set()
    while True:
        code, body, _ = _request(
            "GET", f"{gateway}/v1/funnels", headers={"Authorization": f"Bearer {read_key}"}
        )
        if code != 200:
            raise RuntimeError(f"listing the funnels failed: {code} {body}")
        done = {
            f["id"] for f in body["funnels"] if f["id"] in wanted and f["backfill"] == "complete"
        }
        elapsed = time.monotonic() - started
        sys.stderr.write(
            f"\rbackfilling funnels over the history: {len(done)}/{len(wanted)} complete, "
            f"{elapsed:.0f} s"
        )
        sys.stderr.flush()
        if done == wanted or elapsed > timeout:
            sys.stderr.write("\n")
            return done == wanted
        time.sleep(0.5)


class ProgressBar:
    def __init__(self, label: str, width: int = 32) -> None:
        self.label = label
        self.width = width
        self.started = time.monotonic()
        self.drawn = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.drawn < 0.2:
            return
        self.drawn = now
        share = done / total if total else 1
        filled = int(self.width * share)
        rate = done / max(1e-6, time.monotonic() - self.started)
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {share:6.1%} "
            f"{done:,}/{total:,} events, {rate:,.0f}/s"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def main() -> int:
    gateway = os.environ.get("PULSE_GATEWAY_URL", "http://127.0.0.1:8002").rstrip("/")
    ingest = os.environ.get("PULSE_INGEST_URL", "http://127.0.0.1:8001").rstrip("/")
    admin = os.environ.get("PULSE_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    config = DemoConfig(
        days=int(os.environ.get("PULSE_DEMO_DAYS", "90")),
        signups_per_day=int(os.environ.get("PULSE_DEMO_SIGNUPS", "40")),
        seed=int(os.environ.get("PULSE_DEMO_SEED", "7")),
        timezone=os.environ.get("PULSE_DEMO_TIMEZONE", "UTC"),
    )
    try:
        project = create_project(
            gateway, admin, f"demo {datetime.now(UTC):%Y-%m-%d %H:%M:%S}", config.timezone
        )
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        print(f"error: cannot create a project at {gateway}: {exc}", file=sys.stderr)
        print("Is the stack running (`make run`)? Is PULSE_ADMIN_TOKEN right?", file=sys.stderr)
        return 1
    print(f"Generating {config.days} days of a product ...", file=sys.stderr)
    events = list(Generator(config).events())
    try:
        send_all(ingest, project["write_key"], events, ProgressBar("sending"))
        print("Waiting for the metrics service to apply everything ...", file=sys.stderr)
        wait_applied(gateway, project["read_key"], len(events))
        funnels = define_funnels(gateway, project["read_key"])
        complete = wait_backfilled(gateway, project["read_key"], [f["id"] for f in funnels])
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    last = config.end.astimezone(ZoneInfo(config.timezone)).date()
    first = last - timedelta(days=29)
    span = f"from={first}&to={last}"
    width = max(len(f["name"]) for f in funnels)
    funnel_lines = "\n".join(
        f"  #{f['id']:<4} {f['name']:<{width}}  {gateway}/v1/funnels/{f['id']}?{span}"
        for f in funnels
    )
    state = "" if complete else " (still backfilling: the dashboard shows it)"
    print(
        f"""
Demo project "{project["name"]}" (id {project["id"]}): {len(events):,} events, {config.days} days.

  dashboard   {gateway}/
  read key    {project["read_key"]}
  write key   {project["write_key"]}

Funnels{state}, last 30 days (send the read key as a Bearer token; the dashboard's Funnels
panel has a picker):
{funnel_lines}

  curl -H "Authorization: Bearer {project["read_key"]}" \\
       "{gateway}/v1/funnels/{funnels[0]["id"]}?{span}"
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
