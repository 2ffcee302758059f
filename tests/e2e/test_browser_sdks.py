"""The official browser SDKs, unmodified, in a real browser against the real ingest.

posthog-js, Segment's analytics-next and RudderStack's JavaScript SDK come from npm as
`tests/js_sdks/package-lock.json` pins them (`make test-deps`) and run in Debian's headless
Chromium. A page served from 127.0.0.1 loads all three, pointed at the ingest the way an app
points them, and sends through each what apps send: a page view, a track with a `plan`, an
identify that turns the anonymous browser into a user with a plan, another track, and
(posthog-js) an event by beacon.

Every request the browser makes to the ingest is recorded. Each must be answered 200 (posthog-js's
remote config and feature flags requests too) and the browser must log no error. Then every
event those requests carried is counted once; each SDK's browser and user are one person; the
tracks are there by name; and the `plan` split has each SDK's user under the plan of each event.
Segment's and RudderStack's SDKs take their settings inline (`cdnSettings`, `getSourceConfig`),
as an app pointed at Pulse configures them; posthog-js asks the ingest for its config.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from playwright.async_api import Browser, Request

from tests.support.sent_events import events_of
from tests.support.services import Pipeline

SDKS = Path(__file__).resolve().parents[1] / "js_sdks" / "node_modules"
POSTHOG_JS = SDKS / "posthog-js" / "dist" / "array.full.js"
ANALYTICS_NEXT = SDKS / "@segment" / "analytics-next" / "dist" / "umd"
RUDDERSTACK = SDKS / "@rudderstack" / "analytics-js" / "dist" / "npm" / "modern" / "bundled"

# The tracks the page sends: by which SDK, and the plan each carries.
TRACKS = {
    "Signed Up": ("posthog-js", "free"),  # anonymous, with a plan property
    "Paid": ("posthog-js", "vip"),  # after identify set plan=vip
    "Left": ("posthog-js", "vip"),  # the same, by beacon
    "Viewed": ("analytics-next", "free"),  # anonymous, with a plan property
    "Bought": ("analytics-next", "vip"),  # after identify set plan=vip
    "Browsed": ("rudderstack", "free"),  # anonymous, with a plan property
    "Ordered": ("rudderstack", "vip"),  # after identify set plan=vip
}


def page(ingest: str, key: str) -> str:
    """The app: both SDKs loaded as their docs show, then what an app sends."""
    return f"""<!doctype html>
<html><head><link rel="icon" href="data:,"></head><body>
<script>{KEEP_BEACONS}</script>
<script src="/posthog.js"></script>
<script src="/ajs/index.js"></script>
<script src="/rudderstack.js"></script>
<script>
window.sent = false;
posthog.init({orjson.dumps(key).decode()}, {{
  api_host: {orjson.dumps(ingest).decode()},
  bootstrap: {{distinctID: 'ph-browser'}},
  persistence: 'memory',
  autocapture: false,
  capture_dead_clicks: false,
  capture_pageleave: false,  // sent on unload, which the test cannot read: it counts exactly
  disable_surveys: true,
  opt_out_useragent_filter: true,  // headless Chromium looks like a bot to posthog-js
}});
posthog.capture('Signed Up', {{plan: 'free'}});
posthog.identify('ph-user', {{plan: 'vip'}});
posthog.capture('Paid', {{amount: 3}});
AnalyticsNext.AnalyticsBrowser.load({{
  writeKey: {orjson.dumps(key).decode()},
  cdnSettings: {{integrations: {{'Segment.io': {{
    apiKey: {orjson.dumps(key).decode()},
    apiHost: {orjson.dumps(urlsplit(ingest).netloc + "/v1").decode()},
    protocol: 'http',
  }}}}}},
}}).then(async ([analytics]) => {{
  analytics.setAnonymousId('ajs-browser');
  await analytics.page();
  await analytics.track('Viewed', {{plan: 'free'}});
  await analytics.identify('ajs-user', {{plan: 'vip'}});
  await analytics.track('Bought');
  window.sent = true;
}});
const rudder = new rudderanalytics.RudderAnalytics();
rudder.load({orjson.dumps(key).decode()}, {orjson.dumps(ingest).decode()}, {{
  getSourceConfig: () => ({{source: {{
    id: 'pulse', name: 'Pulse', workspaceId: 'pulse', enabled: true, destinations: [],
    writeKey: {orjson.dumps(key).decode()},
    config: {{statsCollection: {{errorReports: {{enabled: false}}, metrics: {{enabled: false}}}}}},
  }}}}),
}});
rudder.page();
rudder.track('Browsed', {{plan: 'free'}});
rudder.identify('rudder-user', {{plan: 'vip'}});
rudder.track('Ordered');
</script></body></html>"""


@pytest.fixture
def site(pipeline: Pipeline) -> Iterator[tuple[str, dict[str, str]]]:
    """An app's origin on 127.0.0.1 (a page from elsewhere may not reach a loopback address)
    serving the page and the SDKs' files; its project."""
    project = pipeline.create_project("browser-sdks")
    html = page(pipeline.ingest.url, project["write_key"]).encode()

    class Files(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlsplit(self.path).path
            if path == "/":
                self._send(html, "text/html")
            elif path == "/rudderstack.js":
                self._send(
                    (RUDDERSTACK / "umd" / "index.js").read_bytes(), "application/javascript"
                )
            elif path == "/posthog.js":
                self._send(POSTHOG_JS.read_bytes(), "application/javascript")
            elif path.startswith("/ajs/") and (file := ANALYTICS_NEXT / path[5:]).is_file():
                self._send(file.read_bytes(), "application/javascript")
            else:
                self.send_error(404)

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", project
    server.shutdown()
    server.server_close()
    thread.join()


# Playwright shows no body of a beacon: the page keeps what it hands navigator.sendBeacon.
KEEP_BEACONS = """
window.beacons = [];
const sendBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, data) => { window.beacons.push(data); return sendBeacon(url, data); };
"""
BEACON_BODIES = """Promise.all(window.beacons.map(async b => {
  const bytes = new Uint8Array(await new Response(b).arrayBuffer());
  return btoa(Array.from(bytes, c => String.fromCharCode(c)).join(''));
}))"""


async def test_the_browser_sdks_are_counted_exactly(
    pipeline: Pipeline, browser: Browser, site: tuple[str, dict[str, str]]
) -> None:
    url, project = site
    context = await browser.new_context()
    to_ingest: list[Request] = []
    context.on(
        "request", lambda r: to_ingest.append(r) if r.url.startswith(pipeline.ingest.url) else None
    )
    problems: list[str] = []
    app = await context.new_page()
    app.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    app.on("pageerror", lambda e: problems.append(str(e)))
    await app.goto(url)
    await app.wait_for_function("window.sent", timeout=15_000)
    await app.evaluate("posthog.capture('Left', {}, {transport: 'sendBeacon'})")

    def carried() -> list[dict[str, Any]]:
        capture = ("/e/", "/i/v0/e/", "/batch", "/v1/")
        bodies = [
            r.post_data_buffer or b"" for r in list(to_ingest)
            if urlsplit(r.url).path.startswith(capture) and r.resource_type != "ping"
        ]  # fmt: skip
        return [e for body in bodies for e in events_of(body)]

    async def beacons() -> list[dict[str, Any]]:
        sent = await app.evaluate(BEACON_BODIES)
        return [e for body in sent for e in events_of(base64.b64decode(body))]

    deadline = time.monotonic() + 15  # posthog-js sends what it queued every few seconds
    while not set(TRACKS) <= {e.get("event") for e in carried() + await beacons()}:
        events = carried() + await beacons()
        assert time.monotonic() < deadline, " ".join(sorted(str(e.get("event")) for e in events))
        await asyncio.sleep(0.2)
    beaconed = await beacons()
    events = carried() + beaconed
    answers = [await r.response() for r in list(to_ingest)]
    await context.close()
    assert [e.get("event") for e in beaconed] == ["Left"]

    assert [(a.status if a else None) for a in answers] == [200] * len(answers), [
        (r.url, a.status if a else None) for r, a in zip(to_ingest, answers, strict=False)
    ]
    paths = {urlsplit(r.url).path for r in to_ingest}
    assert {"/e/", "/v1/t", "/v1/i", "/v1/p", "/v1/track", "/v1/identify", "/v1/page"} <= paths
    assert any(p.startswith("/array/") for p in paths)  # posthog-js's remote config
    assert problems == []

    ids = {e.get("uuid") or e.get("messageId") for e in events}
    assert None not in ids
    status = await asyncio.to_thread(pipeline.wait_processed, project["read_key"], len(ids))
    assert (status["events_processed"], status["rejected"]) == (len(ids), 0)

    today = datetime.now(UTC).date().isoformat()
    span = {"from": today, "to": today}
    counted = await asyncio.to_thread(pipeline.read, "/v1/events", project["read_key"], **span)
    by_name = {e["event"]: (e["count"], e["persons"]) for e in counted["events"]}
    for name in TRACKS:
        assert by_name[name] == (1, 1), (name, by_name)
    # Each SDK's browser and user are one person; each counts under the plans its tracks had.
    split = await asyncio.to_thread(
        pipeline.read, "/v1/activity", project["read_key"], breakdown="plan", **span
    )
    assert split["days"][0]["dau"] == len({sdk for sdk, _ in TRACKS.values()})
    by_plan = {b["value"]: b["days"][0]["dau"] for b in split["breakdown"]}
    for plan in ("free", "vip"):
        assert by_plan[plan] == len({sdk for sdk, p in TRACKS.values() if p == plan}), by_plan
