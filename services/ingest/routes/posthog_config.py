"""What posthog-js asks of its host besides capture: its remote config and its feature flags.

When it starts, posthog-js loads `/array/{token}/config.js` (else `/array/{token}/config`), then
`/flags/?v=2` unless that config says the project has no flags; PostHog's server SDKs ask
`/flags/` (older ones `/decide/`) when the app evaluates a flag. Unanswered, every page view of
the app logged 404s in the browser's console, and posthog-js, with no config to say gzip is
welcome, sent its events as plain JSON. Pulse keeps no feature flags and takes no recordings,
surveys or heatmaps, and these answers say so: the SDK sends its events, gzipped, and nothing
else.

They are the same for every token and hold nothing of a project: no key is checked, as nothing
is read or written.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from services.common.http import ApiError, JsonResponse

router = APIRouter(include_in_schema=False)

# Tokens are write keys; anything else is not echoed back, least of all into a script.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")

NO_FLAGS: dict[str, Any] = {
    "flags": {},  # /flags/?v=2
    "featureFlags": {},  # /decide/ and /flags/ before v2
    "featureFlagPayloads": {},
    "errorsWhileComputingFlags": False,
}


def remote_config(token: str) -> dict[str, Any]:
    """The config posthog-js reads at start (the fields PostHog's own config names)."""
    if not TOKEN.fullmatch(token):
        raise ApiError(404, "not_found", "Not Found")
    return {
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "sessionRecording": False,
        "heatmaps": False,
        "surveys": False,
        "siteApps": [],
    }


@router.get("/array/{token}/config")
async def config_json(token: str) -> Response:
    return JsonResponse(remote_config(token))


@router.get("/array/{token}/config.js")
async def config_script(token: str) -> Response:
    """The config as posthog-js's script loader expects it: kept in a global by token."""
    config = orjson.dumps(remote_config(token)).decode()
    script = (
        "(function(){var c=window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"c[{orjson.dumps(token).decode()}]={{config:{config},siteApps:[]}};}})();"
    )
    return Response(script, media_type="application/javascript")


@router.api_route("/flags", methods=["GET", "POST"])
@router.api_route("/flags/", methods=["GET", "POST"])
@router.api_route("/decide", methods=["GET", "POST"])
@router.api_route("/decide/", methods=["GET", "POST"])
async def flags() -> Response:
    return JsonResponse(NO_FLAGS)
