"""PostHog capture events -> Segment messages, which `normalize_segment` then validates.

A pure function: no I/O, the receive time is passed in. The mapping (also in README):

| PostHog | Segment |
|---|---|
| `uuid` | `messageId` (generated when absent) |
| `distinct_id` (or `properties.distinct_id`) | `userId` |
| `event` | `event` of a `track`, except the events below |
| `$identify` | `identify`; `properties.$anon_distinct_id` -> `anonymousId` |
| `$create_alias` | `alias`; `properties.alias` -> `previousId`, `distinct_id` -> `userId` |
| `$pageview` | `page` named by `$pathname` (else the path of `$current_url`) |
| `$screen` | `screen` named by `$screen_name` |
| `$set` | `identify` (a person-property update, not activity) |
| `$groupidentify` | `group`; `$group_key` -> `groupId`, `$group_set` -> `traits` |
| `properties.$set_once`, `$set` (merged, `$set` wins) | `traits` |
| `properties` | `properties`, without `token`, `$set`, `$set_once` |
| `properties.$lib`, `$lib_version`, `$ip` | `context.library.name/version`, `context.ip` |
| `timestamp`; else `offset` (ms before sending) | `timestamp` |
| `sent_at` of the event, else of the batch | `sentAt` (clock-skew correction) |

PostHog merges `$create_alias`'s `alias` into the person of `distinct_id`, and `$identify`'s
anonymous id into the identified one; Segment's alias (previousId -> userId) and identify say the
same. Every other `$`-event (`$autocapture`, `$pageleave`, `$exception`, ...) is a track event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from services.ingest.normalize import Invalid

KEY_PROPERTIES = frozenset({"token", "api_key"})
TRAIT_PROPERTIES = frozenset({"$set", "$set_once"})


def _dict(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("invalid_field", f"{field} must be an object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _page_name(properties: dict[str, Any]) -> str | None:
    path = _text(properties.get("$pathname"))
    if path is None and (url := _text(properties.get("$current_url"))):
        try:
            path = urlsplit(url).path or "/"
        except ValueError:  # e.g. "http://[::1": a page all the same, only not named by it
            return None
    return path


def posthog_to_segment(event: Any, received_at: datetime, sent_at: Any = None) -> dict[str, Any]:
    """One PostHog event -> one Segment message; raises Invalid with a reason a user can act on."""
    if not isinstance(event, dict):
        raise Invalid("not_an_object", "event must be a JSON object")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise Invalid("missing_event", "event needs an `event` name")
    raw_properties = _dict(event.get("properties"), "properties")

    distinct_id = event.get("distinct_id")
    if distinct_id is None or distinct_id == "":
        distinct_id = raw_properties.get("distinct_id")

    traits: dict[str, Any] = {}
    for field in ("$set_once", "$set"):  # later wins, as in PostHog
        traits.update(_dict(raw_properties.get(field), f"properties.{field}"))
        traits.update(_dict(event.get(field), field))
    properties = {
        k: v for k, v in raw_properties.items() if k not in KEY_PROPERTIES | TRAIT_PROPERTIES
    }

    message: dict[str, Any] = {
        "type": "track",
        "event": name,
        "userId": distinct_id,
        "properties": properties,
        "traits": traits,
    }
    if "uuid" in event:
        message["messageId"] = event["uuid"]

    if name in ("$identify", "$set"):
        message["type"] = "identify"
        if name == "$identify":
            message["anonymousId"] = raw_properties.get("$anon_distinct_id")
    elif name == "$create_alias":
        message["type"] = "alias"
        message["previousId"] = raw_properties.get("alias")
    elif name == "$pageview":
        message["type"] = "page"
        message["name"] = _page_name(raw_properties)
    elif name == "$screen":
        message["type"] = "screen"
        message["name"] = _text(raw_properties.get("$screen_name"))
    elif name == "$groupidentify":
        message["type"] = "group"
        message["groupId"] = raw_properties.get("$group_key")
        message["traits"] = {**traits, **_dict(raw_properties.get("$group_set"), "$group_set")}

    context: dict[str, Any] = {}
    if lib := _text(raw_properties.get("$lib")):
        context["library"] = {"name": lib, "version": raw_properties.get("$lib_version")}
    if ip := _text(raw_properties.get("$ip")):
        context["ip"] = ip
    message["context"] = context

    timestamp = event.get("timestamp")
    offset = event.get("offset")
    if timestamp is None and isinstance(offset, int | float) and not isinstance(offset, bool):
        # `offset` says how long before sending the event happened: no device clock involved.
        try:
            message["timestamp"] = (received_at - timedelta(milliseconds=offset)).isoformat()
        except OverflowError as exc:
            raise Invalid("timestamp_out_of_range", "offset is out of range") from exc
        message["sentAt"] = received_at.isoformat()
    else:
        message["timestamp"] = timestamp
        message["sentAt"] = event.get("sent_at") or sent_at
    return message
