"""Hypothesis strategies for what senders put on the wire: Segment messages and PostHog events
built around the fields each format reads, with values of every JSON type, plausible and not
(times with odd offsets and years, ids of numbers and objects, URLs that do not parse)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from services.ingest.normalize import SEGMENT_TYPES

# What JSON can carry as orjson reads it: integers within 64 bits (larger ones come as
# floats), finite floats.
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _iso(moment: datetime, offset_minutes: int, zulu: bool) -> str:
    if zulu:
        return moment.replace(tzinfo=None).isoformat() + "Z"
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()


times = st.one_of(
    st.builds(
        _iso,
        # naive, as hypothesis takes its bounds; `_iso` gives each time its offset
        st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),  # noqa: DTZ001
        st.integers(min_value=-1439, max_value=1439),
        st.booleans(),
    ),
    st.sampled_from(["", "now", "2026-13-01", "2026-11-27T25:00:00Z", "9999-12-31T23:59:59+14:00"]),
    json_values,
)
ids = st.one_of(st.text(max_size=12), st.text(min_size=90, max_size=300), json_values)
names = st.one_of(st.sampled_from(["signup", "buy", ""]), st.text(max_size=300), json_values)
urls = st.one_of(
    st.sampled_from(["https://a.example/x?y=1", "http://[::1", "http://[", "not a url", "//h"]),
    st.text(max_size=30),
    json_values,
)


def _message(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """An object with any subset of `fields` and a few keys of its own; now and then not an
    object at all."""
    return st.one_of(
        st.fixed_dictionaries({}, optional=fields).flatmap(
            lambda known: st.dictionaries(st.text(max_size=6), json_values, max_size=2).map(
                lambda extra: {**extra, **known}
            )
        ),
        json_values,
    )


objects = st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=4), json_values)
segment_messages = _message(
    {
        "type": st.one_of(st.sampled_from(sorted(SEGMENT_TYPES)), json_values),
        "event": names,
        "name": names,
        "userId": ids,
        "anonymousId": ids,
        "previousId": ids,
        "groupId": ids,
        "messageId": ids,
        "timestamp": times,
        "originalTimestamp": times,
        "sentAt": times,
        "properties": objects,
        "traits": objects,
        "context": st.one_of(st.fixed_dictionaries({}, optional={"traits": objects}), json_values),
    }
)
posthog_properties = _message(
    {
        "$current_url": urls,
        "$pathname": urls,
        "$screen_name": names,
        "$anon_distinct_id": ids,
        "alias": ids,
        "distinct_id": ids,
        "$set": objects,
        "$set_once": objects,
        "$group_key": ids,
        "$group_set": objects,
        "$lib": names,
        "$lib_version": json_values,
        "$ip": names,
        "token": ids,
    }
)
posthog_events = _message(
    {
        "event": st.one_of(
            st.sampled_from(
                ["$pageview", "$screen", "$identify", "$create_alias", "$set", "$groupidentify"]
            ),
            names,
        ),
        "distinct_id": ids,
        "uuid": ids,
        "properties": posthog_properties,
        "$set": objects,
        "$set_once": objects,
        "timestamp": times,
        "offset": st.one_of(
            st.integers(min_value=-(2**63), max_value=2**64 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        "sent_at": times,
    }
)
