"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

Generates a small product with the `make demo` generator, sends it through ingest, defines two
funnels on it (and waits for their backfill), signs in on the page with the read key and checks
that every chart drew exactly the numbers the API gives — the funnel bars and the paths after
the picked start event included, also after switching the pickers. The screenshot lands in
tests/artifacts/dashboard.png.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Route

from deploy.demo import DemoConfig, Generator, send_all
from tests.support.services import ARTIFACTS, Pipeline

LATER_FEATURES = {
    "retention": "/v1/retention",
    "funnels": "/v1/funnels",
    "sessions": "/v1/sessions",
    "live": "/v1/live",
}


async def points(page: Page, panel: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.eval_on_selector_all(
        f'[data-panel="{panel}"] .pt',
        "nodes => nodes.map(n => ({...n.dataset}))",
    )
    return result


def series(drawn: list[dict[str, str]], name: str) -> list[tuple[str, int]]:
    return [(p["x"], int(p["y"])) for p in drawn if p["series"] == name]


def group(split: dict[str, Any]) -> str:
    """A split's group as the page keys its line: the value, "" for the null group (None)."""
    return split["value"] if split["value"] is not None else ""


async def wait_until(page: Page, script: str, arg: Any = None, within: float = 15) -> None:
    """Poll `script` in the page until it is truthy (wait_for_function would need unsafe-eval,
    which the page's Content-Security-Policy rightly refuses)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await page.evaluate(script, arg):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {within}s: {script}")
        await asyncio.sleep(0.25)


def answering_with(**fields: Any) -> Callable[[Route], Awaitable[None]]:
    """A route handler that answers with the API's real JSON, `fields` replaced."""

    async def handler(route: Route) -> None:
        headers = {k: v for k, v in route.request.headers.items() if k != "if-none-match"}
        response = await route.fetch(headers=headers)
        await route.fulfill(response=response, json={**await response.json(), **fields})

    return handler


async def sign_in(page: Page, key: str) -> None:
    await page.fill("#key", key)
    await page.click("#signin-form button[type=submit]")


# Steps the demo generator's visitors and users really do (deploy/demo.py).
FUNNELS = (
    {
        "name": "Visit to first report",
        "steps": [{"event": "Home"}, {"event": "Signed Up"}, {"event": "Report Created"}],
        "window_seconds": 86400,
    },
    {
        "name": "Free sign-up to trial",
        "steps": [
            {"event": "Signed Up", "where": [{"property": "plan", "op": "eq", "value": "free"}]},
            {"event": "Trial Started"},
        ],
        "window_seconds": 21 * 86400,
    },
)


def define_funnels(pipeline: Pipeline, key: str) -> list[int]:
    """POST the funnels, then wait until the metrics service has walked the history for them."""
    ids = []
    for definition in FUNNELS:
        response = httpx.post(
            f"{pipeline.gateway.url}/v1/funnels",
            json=definition,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201, response.text
        ids.append(int(response.json()["id"]))
    deadline = time.monotonic() + 120
    while True:
        listed = pipeline.read("/v1/funnels", key)["funnels"]
        if {f["id"]: f["backfill"] for f in listed} == dict.fromkeys(ids, "complete"):
            return ids
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)


def _number(value: str | None) -> float | None:
    return None if value is None else float(value)


async def funnel_bars(page: Page) -> list[tuple[Any, ...]]:
    """(series, step, event, users, from start, from previous, median) of each drawn bar."""
    return [
        (
            p["series"],
            int(p["x"]),
            p["event"],
            int(p["y"]),
            _number(p.get("fromStart")),
            _number(p.get("fromPrevious")),
            _number(p.get("median")),
        )
        for p in await points(page, "funnels")
    ]


def funnel_numbers(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            f"funnel-{report['id']}",
            i,
            s["event"],
            s["users"],
            s["conversion_from_start"],
            s["conversion_from_previous"],
            s["median_seconds_to_convert"],
        )
        for i, s in enumerate(report["steps"], start=1)
    ]


async def path_bands(page: Page) -> list[tuple[int, str, str, int]]:
    return [(int(p["step"]), p["from"], p["to"], int(p["y"])) for p in await points(page, "paths")]


async def test_dashboard_draws_what_the_api_says(pipeline: Pipeline, browser: Browser) -> None:
    project = pipeline.create_project("dashboard-browser")
    events = list(Generator(DemoConfig(days=35, signups_per_day=5, seed=11)).events())
    send_all(pipeline.ingest.url, project["write_key"], events)
    pipeline.wait_processed(project["read_key"], len(events), timeout=120)
    key = project["read_key"]
    first_funnel, second_funnel = define_funnels(pipeline, key)

    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(pipeline.gateway.url + "/")

    # A wrong key is refused on the form, and nothing is stored.
    await sign_in(page, "pr_not-a-key")
    await wait_until(page, "document.querySelector('#signin-error').textContent !== ''")
    assert await page.text_content("#signin-error") == "That read key was not accepted."
    assert await page.evaluate("sessionStorage.length") == 0

    await sign_in(page, key)
    await page.wait_for_selector("body[data-refreshes]")
    assert await page.evaluate("sessionStorage.getItem('pulse.readKey')") == key
    assert await page.evaluate("localStorage.length") == 0

    span = {"from": await page.input_value("#from"), "to": await page.input_value("#to")}
    assert span["to"] == datetime.now(UTC).date().isoformat()  # the browser runs in UTC here
    assert span["from"] == (datetime.now(UTC).date() - timedelta(days=29)).isoformat()

    days = pipeline.read("/v1/activity", key, **span)["days"]
    drawn = await points(page, "activity")
    for field in ("dau", "wau", "mau"):
        assert series(drawn, field) == [(d["date"], d[field]) for d in days], field
    assert sum(d["dau"] for d in days) > 0  # the demo data is inside the range
    assert series(await points(page, "new-users"), "new_users") == [
        (d["date"], d["new_users"]) for d in days
    ]
    kpi = await page.get_attribute('[data-tile="mau"]', "data-value")
    assert kpi == str(days[-1]["mau"])

    # Active users by plan (the tracked key): DAU per value, the eight most active values.
    assert pipeline.read("/v1/breakdowns", key)["keys"] == [
        {"key": "plan", "backfill": "complete", "configured": True}
    ]
    assert await page.input_value("#breakdown-key") == "plan"
    split = pipeline.read("/v1/activity", key, breakdown="plan", **span)
    assert {"free", "vip"} <= {s["value"] for s in split["breakdown"]}
    # the null group (value None: events without a plan) is the line keyed "value-"
    assert None in {s["value"] for s in split["breakdown"]}
    top = sorted(split["breakdown"], key=lambda s: (-sum(d["events"] for d in s["days"]), group(s)))
    drawn = await points(page, "breakdown")
    assert {p["series"] for p in drawn} == {f"value-{group(s)}" for s in top[:8]}
    for values in top[:8]:
        assert series(drawn, f"value-{group(values)}") == [
            (d["date"], d["dau"]) for d in values["days"]
        ]

    weeks = pipeline.read("/v1/lifecycle", key, period="week", **span)["periods"]
    drawn = await points(page, "lifecycle")
    for field in ("new", "returning", "resurrecting", "dormant"):
        assert series(drawn, field) == [(p["start"], p[field]) for p in weeks], field
    assert any(p["dormant"] < 0 for p in weeks)
    # Split by plan: one group at a time, its persons with their own statuses.
    await page.select_option("#lifecycle-split", "plan")
    await wait_until(page, "() => !document.querySelector('#lifecycle-value').hidden")
    groups = pipeline.read("/v1/lifecycle", key, period="week", breakdown="plan", **span)
    options = await page.eval_on_selector_all(
        "#lifecycle-value option", "nodes => nodes.map(n => n.textContent)"
    )
    assert options == [g["value"] or "no plan" for g in groups["breakdown"]]
    await page.select_option("#lifecycle-value", label="vip")
    (vip,) = [g["periods"] for g in groups["breakdown"] if g["value"] == "vip"]
    statuses = ("new", "returning", "resurrecting", "dormant")
    want = sorted(f"{field}|{p['start']}|{p[field]}" for p in vip for field in statuses)
    await wait_until(
        page,
        """want => JSON.stringify([...document.querySelectorAll('[data-panel=lifecycle] .pt')]
            .map(n => `${n.dataset.series}|${n.dataset.x}|${+n.dataset.y}`).sort())
            === JSON.stringify(want)""",
        want,
    )
    assert 0 < sum(p["new"] for p in vip) < sum(p["new"] for p in weeks)  # a part
    await page.select_option("#lifecycle-split", "")
    await wait_until(page, "() => document.querySelector('#lifecycle-value').hidden")

    drawn = await points(page, "stickiness")
    shown = {p["series"] for p in drawn}
    assert len(shown) == 1
    (start,) = shown
    histograms = pipeline.read("/v1/stickiness", key, period="week", **span)["periods"]
    (chosen,) = [p for p in histograms if p["start"] == start]
    assert series(drawn, start) == [(str(i + 1), n) for i, n in enumerate(chosen["histogram"])]
    assert sum(chosen["histogram"]) > 0
    # Split by plan: a line per plan over the same period, as /v1/stickiness?breakdown= says.
    await page.select_option("#stickiness-split", "plan")
    await page.wait_for_selector('[data-panel="stickiness"] .pt[data-series^="value-"]')
    by_plan = pipeline.read("/v1/stickiness", key, period="week", breakdown="plan", **span)
    want = {}
    for values in by_plan["breakdown"]:
        (histogram,) = [p["histogram"] for p in values["periods"] if p["start"] == start]
        if sum(histogram):  # a line per plan with persons active that week
            want[f"value-{group(values)}"] = [(str(i + 1), n) for i, n in enumerate(histogram)]
    assert {"value-free", "value-vip"} <= set(want)
    drawn = await points(page, "stickiness")
    assert {name: series(drawn, name) for name in {p["series"] for p in drawn}} == want
    await page.select_option("#stickiness-split", "")
    await page.wait_for_selector(f'[data-panel="stickiness"] .pt[data-series="{start}"]')

    top = pipeline.read("/v1/events", key, **span)["events"][:12]
    drawn = await points(page, "events")
    assert [(p["x"], int(p["y"]), int(p["persons"])) for p in drawn] == [
        (e["event"], e["count"], e["persons"]) for e in top
    ]

    status = pipeline.read("/v1/status", key)
    for field in ("events_processed", "duplicates_dropped", "rejected", "lag"):
        value = await page.get_attribute(
            f'[data-panel="status"] [data-tile="{field}"]', "data-value"
        )
        assert value == str(status[field]), field

    # Views of later features say so until their endpoint answers, then draw.
    for panel, path in LATER_FEATURES.items():
        async with httpx.AsyncClient(base_url=pipeline.gateway.url) as http:
            answer = await http.get(path, params=span, headers={"Authorization": f"Bearer {key}"})
        exists = answer.status_code != 404
        state = await page.get_attribute(f'[data-panel="{panel}"]', "data-state")
        if exists:
            assert state in ("ready", "empty"), panel
        else:
            assert state == "unavailable", panel
            text = await page.text_content(f'[data-panel="{panel}"] .body')
            assert text == "not available yet"

    if (await page.get_attribute('[data-panel="retention"]', "data-state")) == "ready":
        query = {**span, "length": "14", "period": "day", "mode": "on"}
        cohorts = pipeline.read("/v1/retention", key, **query)["cohorts"][-30:]
        drawn = await points(page, "retention")
        today = date.fromisoformat(span["to"])
        cells = [
            (c["date"], k, n, date.fromisoformat(c["date"]) + timedelta(days=k) > today)
            for c in cohorts
            for k, n in enumerate(c["retained"])
        ]
        assert [(p["series"], int(p["x"]), int(p["y"])) for p in drawn] == [
            (d, k, n) for d, k, n, future in cells if not future
        ]
        # Days that have not happened are blank grey cells, not 0%.
        blank = await page.eval_on_selector_all(
            '[data-panel="retention"] .future',
            "nodes => nodes.map(n => [n.dataset.series, +n.dataset.x])",
        )
        assert blank == [[d, k] for d, k, _, future in cells if future]
        assert blank  # the last 14 cohorts reach past today
        # Each share as the page rounds it (Math.round); "–" for a cohort of no one, not 0%.
        sizes = {c["date"]: c["size"] for c in cohorts}
        shares = await page.eval_on_selector_all(
            '[data-panel="retention"] text.cell', "nodes => nodes.map(n => n.textContent)"
        )
        assert shares == [
            f"{math.floor(n / sizes[d] * 100 + 0.5)}%" if sizes[d] else "–"
            for d, _, n, future in cells
            if not future
        ]

        # Split by plan: a group picker of the API's groups; the heatmap is the picked group's.
        await page.select_option("#retention-split", "plan")
        await wait_until(page, "() => !document.querySelector('#retention-value').hidden")
        groups = pipeline.read("/v1/retention", key, breakdown="plan", **query)["breakdown"]
        options = await page.eval_on_selector_all(
            "#retention-value option", "nodes => nodes.map(n => n.textContent)"
        )
        assert options == [g["value"] or "no plan" for g in groups]
        # Cohorts go by the plan of their first day: the demo's users sign up free, visitors
        # carry none.
        assert options == ["free", "no plan"]
        await page.select_option("#retention-value", label="free")
        (free,) = [g["cohorts"][-30:] for g in groups if g["value"] == "free"]
        want = [
            (c["date"], k, n)
            for c in free
            for k, n in enumerate(c["retained"])
            if date.fromisoformat(c["date"]) + timedelta(days=k) <= today
        ]
        await wait_until(
            page,
            "n => document.querySelectorAll('[data-panel=retention] .pt').length === n",
            len(want),
        )
        drawn = await points(page, "retention")
        assert [(p["series"], int(p["x"]), int(p["y"])) for p in drawn] == want
        assert 0 < sum(c["size"] for c in free) < sum(c["size"] for c in cohorts)  # a part
        await page.select_option("#retention-split", "")
        await wait_until(page, "() => document.querySelector('#retention-value').hidden")

    # Funnels: the picker lists both, the first is drawn with the API's numbers.
    options = await page.eval_on_selector_all(
        "#funnel-picker option", "nodes => nodes.map(n => n.value)"
    )
    assert options == [str(first_funnel), str(second_funnel)]
    report = pipeline.read(f"/v1/funnels/{first_funnel}", key, **span)
    assert report["backfill"] == "complete"
    assert [s["users"] for s in report["steps"]][-1] > 0  # a funnel the demo data goes through
    assert await funnel_bars(page) == funnel_numbers(report)
    assert await page.is_hidden("#funnel-backfill")
    await page.select_option("#funnel-picker", str(second_funnel))
    await wait_until(
        page,
        "id => document.querySelector(`[data-panel=funnels] .pt[data-series=funnel-${id}]`)",
        second_funnel,
    )
    report = pipeline.read(f"/v1/funnels/{second_funnel}", key, **span)
    assert report["steps"][1]["users"] > 0
    assert await funnel_bars(page) == funnel_numbers(report)

    # Conversion split by plan: a row per group, as /v1/funnels/{id}?breakdown=plan counts.
    await page.select_option("#funnel-split", "plan")
    await page.wait_for_selector('[data-panel="funnels"] table.split tr[data-entered]')
    split = pipeline.read(f"/v1/funnels/{second_funnel}", key, breakdown="plan", **span)
    rows = await page.eval_on_selector_all(
        '[data-panel="funnels"] table.split tr[data-entered]',
        "rows => rows.map(r => [r.dataset.value, +r.dataset.entered, +r.dataset.converted])",
    )
    assert rows == [
        [g["value"] or "", g["steps"][0]["users"], g["steps"][-1]["users"]]
        for g in split["breakdown"]
    ]
    assert sum(r[1] for r in rows) == report["steps"][0]["users"]  # each person in one group
    assert await funnel_bars(page) == funnel_numbers(report)  # the funnel itself unchanged
    await page.select_option("#funnel-split", "")
    await wait_until(page, "() => !document.querySelector('[data-panel=funnels] table.split')")

    # Sessions per day and their median dwell time, everyone's, then split by plan.
    def dwell(drawn: list[dict[str, str]], name: str) -> list[tuple[str, float]]:
        return [(p["x"], float(p["y"])) for p in drawn if p["series"] == name]

    everyone = pipeline.read("/v1/sessions", key, **span)["days"]
    assert sum(d["sessions"] for d in everyone) > 0
    drawn = await points(page, "sessions")
    assert series(drawn, "sessions") == [(d["date"], d["sessions"]) for d in everyone]
    assert dwell(drawn, "median_seconds") == [
        (d["date"], d["median_seconds"]) for d in everyone if d["sessions"]
    ]
    await page.select_option("#sessions-split", "plan")
    await page.wait_for_selector('[data-panel="sessions"] .pt[data-series^="sessions-"]')
    by_plan = pipeline.read("/v1/sessions", key, breakdown="plan", **span)["breakdown"]
    assert {"free", "vip"} <= {s["value"] for s in by_plan}
    drawn = await points(page, "sessions")
    assert {p["series"] for p in drawn} == {
        f"{figure}-{group(s)}" for s in by_plan for figure in ("sessions", "median")
    }
    for values in by_plan:
        name = group(values)
        assert series(drawn, f"sessions-{name}") == [
            (d["date"], d["sessions"]) for d in values["days"]
        ]
        assert dwell(drawn, f"median-{name}") == [
            (d["date"], d["median_seconds"]) for d in values["days"] if d["sessions"]
        ]
    await page.select_option("#sessions-split", "")
    await page.wait_for_selector('[data-panel="sessions"] .pt[data-series="sessions"]')

    # While the API says the funnel's backfill, the sessions' rebuild after a change of the
    # project's session settings, or the backfill of a breakdown key tracked since recently, is
    # running, the panel says so; then the badge goes away.
    for badge, url, field, text in [
        ("#funnel-backfill", rf"/v1/funnels/{second_funnel}\?", "backfill", "backfilling…"),
        ("#sessions-rebuild", r"/v1/sessions\?", "rebuild", "rebuilding…"),
        (
            "#breakdown-backfill",
            r"/v1/activity\?.*breakdown=",
            "breakdown_backfill",
            "backfilling…",
        ),
    ]:
        assert await page.is_hidden(badge)
        pattern = re.compile(url)
        await page.route(pattern, answering_with(**{field: "running"}))
        await page.click("#refresh")
        await wait_until(page, "b => !document.querySelector(b).hidden", badge)
        assert await page.text_content(badge) == text
        await page.unroute(pattern)
        await page.click("#refresh")
        await wait_until(page, "b => document.querySelector(b).hidden", badge)

    # Tracking another key from the panel (POST /v1/breakdowns): the demo's visits carry a
    # `source`. The panel shows it once its history is filled in, then untracks it (DELETE).
    assert await page.is_hidden("#breakdown-untrack")  # plan is every project's
    await page.fill("#breakdown-new-key", "source")
    await page.click("#breakdown-track button[type=submit]")
    await wait_until(page, "() => document.querySelector('#breakdown-key').value === 'source'")
    for _ in range(150):  # 30 s
        by_source = pipeline.read("/v1/activity", key, breakdown="source", **span)
        if by_source["breakdown_backfill"] == "complete":
            break
        await asyncio.sleep(0.2)
    assert by_source["breakdown_backfill"] == "complete"
    assert [k["key"] for k in pipeline.read("/v1/breakdowns", key)["keys"]] == ["plan", "source"]
    await page.click("#refresh")
    await wait_until(page, "() => document.querySelector('#breakdown-backfill').hidden")
    want = {
        (f"value-{group(s)}", d["date"], d["dau"])
        for s in by_source["breakdown"]
        for d in s["days"]
    }
    assert len({series for series, _, _ in want}) > 1  # several sources
    drawn = await points(page, "breakdown")
    assert {(p["series"], p["x"], int(p["y"])) for p in drawn} == want
    assert await page.is_visible("#breakdown-untrack")
    await page.click("#breakdown-untrack")
    await wait_until(page, "() => document.querySelector('#breakdown-key').value === 'plan'")
    assert await page.is_hidden("#breakdown-untrack")
    assert [k["key"] for k in pipeline.read("/v1/breakdowns", key)["keys"]] == ["plan"]

    # Paths: the start-event picker offers the top events, the bands are /v1/paths' edges.
    top = pipeline.read("/v1/events", key, limit="12", **span)["events"]
    options = await page.eval_on_selector_all(
        "#paths-start option", "nodes => nodes.map(n => n.value)"
    )
    assert options == [e["event"] for e in top]
    assert await page.input_value("#paths-start") == top[0]["event"]
    assert "Signed Up" in options
    for start in (top[0]["event"], "Signed Up"):
        if start != top[0]["event"]:
            await page.select_option("#paths-start", start)
            await wait_until(
                page,
                "s => document.querySelector("
                "`[data-panel=paths] .pt[data-step='1'][data-from='${s}']`)",
                start,
            )
        edges = pipeline.read("/v1/paths", key, start_event=start, depth="3", limit="10", **span)[
            "edges"
        ]
        assert {e["step"] for e in edges} == {1, 2, 3}, start
        assert await path_bands(page) == [
            (e["step"], e["from"], e["to"], e["persons"]) for e in edges
        ], start

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # Auto-refresh: a new person active now shows up in today's DAU without a reload.
    before = days[-1]["dau"]
    now = datetime.now(UTC).isoformat()
    newcomer = {"type": "track", "event": "Hi", "userId": f"new-{uuid.uuid4()}", "timestamp": now}
    async with httpx.AsyncClient() as http:
        sent = await http.post(
            f"{pipeline.ingest.url}/v1/batch",
            json={"batch": [newcomer], "writeKey": project["write_key"]},
        )
    assert sent.status_code == 200
    pipeline.wait_processed(key, len(events) + 1)
    await wait_until(
        page,
        """([today, expected]) => [...document.querySelectorAll(
             '[data-panel="activity"] .pt[data-series="dau"]')]
           .some(p => p.dataset.x === today && Number(p.dataset.y) === expected)""",
        [span["to"], before + 1],
    )

    # Signing out forgets the key.
    await page.click("#signout")
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.is_visible("#signin")
    assert errors == []


def test_dashboard_files_are_served_with_a_strict_policy(pipeline: Pipeline) -> None:
    page = httpx.get(pipeline.gateway.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    script = httpx.get(pipeline.gateway.url + "/dashboard/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    again = httpx.get(
        pipeline.gateway.url + "/dashboard/app.js",
        headers={"If-None-Match": script.headers["etag"]},
    )
    assert again.status_code == 304
    missing = httpx.get(pipeline.gateway.url + "/dashboard/../app.py")
    assert missing.status_code == 404
    bodies: dict[str, Any] = {}
    for name in ("app.js", "charts.js", "style.css"):
        bodies[name] = httpx.get(f"{pipeline.gateway.url}/dashboard/{name}").text
    assert all("//cdn" not in body and "https://" not in body for body in bodies.values())


async def test_api_docs_render_without_the_internet(pipeline: Pipeline, browser: Browser) -> None:
    """/docs (Swagger UI) loads every asset from the gateway itself and renders every
    operation of the API; the test browser could not reach a CDN anyway."""
    origin = pipeline.gateway.url
    page = await browser.new_page()
    elsewhere: list[str] = []
    ours = (origin, "data:")
    page.on("request", lambda r: None if r.url.startswith(ours) else elsewhere.append(r.url))
    async with httpx.AsyncClient() as client:
        document = (await client.get(origin + "/openapi.json")).json()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    await page.goto(origin + "/docs")
    await wait_until(
        page, "n => document.querySelectorAll('.opblock').length >= n", len(operations)
    )
    drawn = await page.eval_on_selector_all(
        ".opblock-summary",
        """nodes => nodes.map(n => [n.querySelector('.opblock-summary-method').textContent,
                                    n.querySelector('.opblock-summary-path').dataset.path])""",
    )
    assert {tuple(d) for d in drawn} == operations
    assert elsewhere == []
