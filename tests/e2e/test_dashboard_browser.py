"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

Generates a small product with the `make demo` generator, sends it through ingest, signs in on
the page with the read key and checks that every chart drew exactly the numbers the API gives.
The screenshot lands in tests/artifacts/dashboard.png.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from deploy.demo import DemoConfig, Generator, send_all
from tests.support.services import ARTIFACTS, Pipeline

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LATER_FEATURES = {
    "retention": "/v1/retention",
    "funnels": "/v1/funnels",
    "sessions": "/v1/sessions",
    "live": "/v1/live",
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


async def points(page: Page, panel: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.eval_on_selector_all(
        f'[data-panel="{panel}"] .pt',
        "nodes => nodes.map(n => ({...n.dataset}))",
    )
    return result


def series(drawn: list[dict[str, str]], name: str) -> list[tuple[str, int]]:
    return [(p["x"], int(p["y"])) for p in drawn if p["series"] == name]


async def wait_until(page: Page, script: str, arg: Any = None, within: float = 15) -> None:
    """Poll `script` in the page until it is truthy (wait_for_function would need unsafe-eval,
    which the page's Content-Security-Policy rightly refuses)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await page.evaluate(script, arg):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {within}s: {script}")
        await asyncio.sleep(0.25)


async def sign_in(page: Page, key: str) -> None:
    await page.fill("#key", key)
    await page.click("#signin-form button[type=submit]")


async def test_dashboard_draws_what_the_api_says(pipeline: Pipeline, browser: Browser) -> None:
    project = pipeline.create_project("dashboard-browser")
    events = list(Generator(DemoConfig(days=35, signups_per_day=5, seed=11)).events())
    send_all(pipeline.ingest.url, project["write_key"], events)
    pipeline.wait_processed(project["read_key"], len(events), timeout=120)
    key = project["read_key"]

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

    weeks = pipeline.read("/v1/lifecycle", key, period="week", **span)["periods"]
    drawn = await points(page, "lifecycle")
    for field in ("new", "returning", "resurrecting", "dormant"):
        assert series(drawn, field) == [(p["start"], p[field]) for p in weeks], field
    assert any(p["dormant"] < 0 for p in weeks)

    drawn = await points(page, "stickiness")
    shown = {p["series"] for p in drawn}
    assert len(shown) == 1
    (start,) = shown
    histograms = pipeline.read("/v1/stickiness", key, period="week", **span)["periods"]
    (chosen,) = [p for p in histograms if p["start"] == start]
    assert series(drawn, start) == [(str(i + 1), n) for i, n in enumerate(chosen["histogram"])]
    assert sum(chosen["histogram"]) > 0

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
        assert [(p["series"], int(p["x"]), int(p["y"])) for p in drawn] == [
            (c["date"], k, n) for c in cohorts for k, n in enumerate(c["retained"])
        ]

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
