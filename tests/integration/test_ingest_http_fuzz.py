"""The ingest over real HTTP, sent anything on any of its routes: messages of every shape (the
generators of tests/support/wire_messages.py), any key in any of the places a key may be, bodies
as JSON, text, gzip, deflate or bytes that are none of those. Every answer is a 200
`{"success": true}` or a refusal with its status and `{"code","message"}`; never a 500.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.examples import scaled
from tests.support.services import Pipeline
from tests.support.wire_messages import json_values, posthog_events, segment_messages, times

SEGMENT_ROUTES = ["/v1/batch", "/v1/import", "/v1/track", "/v1/t", "/v1/identify", "/v1/page",
                  "/v1/screen", "/v1/group", "/v1/alias", "/v1/a"]  # fmt: skip
POSTHOG_ROUTES = ["/batch/", "/capture/", "/e/", "/i/v0/e/", "/batch", "/e"]


@pytest.fixture(scope="module")
def write_key(pipeline: Pipeline) -> str:
    return pipeline.create_project("ingest-http-fuzz")["write_key"]


def _keys(write_key: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(write_key), st.just(write_key), st.just("pw_unknown"), json_values)


# What a header value may hold on the wire (no control characters), as bytes: Latin-1 too.
header_texts = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=16
)


@settings(max_examples=scaled(200), deadline=None)
@given(st.data())
def test_anything_sent_is_accepted_or_refused_with_a_reason(
    pipeline: Pipeline, write_key: str, data: st.DataObject
) -> None:
    posthog = data.draw(st.booleans(), label="posthog")
    route = data.draw(st.sampled_from(POSTHOG_ROUTES if posthog else SEGMENT_ROUTES))
    messages = data.draw(st.lists(posthog_events if posthog else segment_messages, max_size=3))
    key_field = "api_key" if posthog else "writeKey"
    shape = data.draw(st.sampled_from(["batch", "one", "bare list", "any"]), label="shape")
    key = data.draw(st.fixed_dictionaries({}, optional={key_field: _keys(write_key)}))
    body: Any
    if shape == "batch":
        sent_at = data.draw(st.fixed_dictionaries({}, optional={"sentAt": times, "sent_at": times}))
        body = {"batch": messages, **key, **sent_at}
    elif shape == "one":
        one = messages[0] if messages else {}
        body = {**one, **key} if isinstance(one, dict) else one
    elif shape == "bare list":
        body = messages
    else:
        body = data.draw(json_values, label="any body")
    raw = orjson.dumps(body)
    headers: dict[str, str | bytes] = {}
    auth = data.draw(st.sampled_from(["none", "basic", "bearer", "basic garbage", "scheme"]))
    if auth == "basic":
        user = data.draw(_keys(write_key).map(str), label="basic user")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:".encode()).decode()
    elif auth == "bearer":
        token = data.draw(st.one_of(_keys(write_key).map(str), header_texts), label="bearer")
        headers["Authorization"] = b"Bearer " + token.encode("latin-1", "replace")
    elif auth == "basic garbage":
        headers["Authorization"] = b"Basic " + data.draw(header_texts).encode("latin-1")
    elif auth == "scheme":
        headers["Authorization"] = data.draw(header_texts).encode("latin-1")
    content_type = data.draw(
        st.sampled_from(
            [
                "application/json",
                "text/plain;charset=UTF-8",
                "application/x-www-form-urlencoded",
                None,
            ]
        )
    )
    if content_type is not None:
        headers["Content-Type"] = content_type
    encoding = data.draw(st.sampled_from([None, "gzip", "deflate", "br", "gzip-but-plain"]))
    if encoding == "gzip":
        raw = gzip.compress(raw)
    elif encoding == "deflate":
        raw = zlib.compress(raw)
    if encoding is not None:
        headers["Content-Encoding"] = encoding.removesuffix("-but-plain")
    if data.draw(st.integers(0, 9), label="garbage body") == 0:
        raw = data.draw(st.binary(max_size=64))
    params = {}
    if posthog and data.draw(st.booleans(), label="compression param"):
        params["compression"] = data.draw(st.sampled_from(["gzip-js", "gzip", "lz64", "none", ""]))

    # h11 sends no header value with whitespace at either end
    headers = {name: value.strip() for name, value in headers.items()}
    response = httpx.post(
        f"{pipeline.ingest.url}{route}", content=raw, headers=headers, params=params, timeout=30
    )
    assert response.status_code < 500, (route, headers, raw[:300], response.text)
    answer = response.json()
    if response.status_code == 200:
        assert answer == {"success": True}
    else:
        assert response.status_code in (400, 401, 413, 415, 422, 429), response.status_code
        assert {"code", "message"} <= set(answer), answer
