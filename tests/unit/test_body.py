"""Request bodies: JSON, text/plain JSON, gzip (by header or by its first bytes) with the
decompressed size capped, and the form bodies of PostHog's routes."""

from __future__ import annotations

import base64
import gzip
from urllib.parse import urlencode

import pytest

from services.common.http import ApiError
from services.ingest.body import read_body, read_json_body
from tests.support.asgi_request import asgi_request


async def test_plain_and_text_plain_json() -> None:
    assert await read_json_body(
        asgi_request(b'{"a":1}', {"content-type": "application/json"}), 100
    ) == {"a": 1}
    assert await read_json_body(
        asgi_request(b"[1]", {"content-type": "text/plain;charset=UTF-8"}), 100
    ) == [1]


async def test_gzip_is_inflated() -> None:
    body = gzip.compress(b'{"batch": []}')
    got = await read_json_body(
        asgi_request(body, {"content-type": "application/json", "content-encoding": "gzip"}), 100
    )
    assert got == {"batch": []}


async def test_gzip_bomb_is_refused_after_the_limit() -> None:
    # 64 MB of zeros compress to ~64 KB; refused once 1 MB has been inflated.
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024))
    assert len(bomb) < 100 * 1024
    with pytest.raises(ApiError) as caught:
        await read_json_body(
            asgi_request(bomb, {"content-type": "application/json", "content-encoding": "gzip"}),
            1024 * 1024,
        )
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"x" * 2000, {"content-type": "application/json"}, 413, "payload_too_large"),
        (b"{nope", {"content-type": "application/json"}, 400, "invalid_json"),
        (b"{}", {"content-type": "application/xml"}, 415, "unsupported_media_type"),
        (
            b"{}",
            {"content-type": "application/json", "content-encoding": "gzip"},
            400,
            "invalid_gzip",
        ),
        (
            b"{}",
            {"content-type": "application/json", "content-encoding": "br"},
            415,
            "unsupported_encoding",
        ),
        (gzip.compress(b"{}")[:-6], {"content-encoding": "gzip"}, 400, "invalid_gzip"),
    ],
)
async def test_bad_bodies_get_a_clear_error(
    body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await read_json_body(asgi_request(body, headers), 1000)
    assert (caught.value.status, caught.value.code) == (status, code)


@pytest.mark.parametrize("chunk", [1, 2, 65536])
async def test_gzip_is_known_by_its_first_bytes_without_a_header(chunk: int) -> None:
    # posthog-js: gzip as text/plain, no Content-Encoding, no `compression` parameter.
    body = gzip.compress(b'[{"event": "x"}]')
    read = await read_body(asgi_request(body, {"content-type": "text/plain"}, chunk), 100)
    assert (read.data, read.size) == ([{"event": "x"}], 16)


async def test_a_sniffed_gzip_bomb_is_refused_after_the_limit_too() -> None:
    bomb = gzip.compress(b"0" * (8 * 1024 * 1024))
    with pytest.raises(ApiError) as caught:
        await read_json_body(asgi_request(bomb, {"content-type": "text/plain"}), 1024 * 1024)
    assert caught.value.status == 413


FORM = {"content-type": "application/x-www-form-urlencoded"}
EVENTS = b'[{"event":"$pageleave","properties":{"token":"k","emoji":"\xe2\x9c\x93"}}]'


@pytest.mark.parametrize(
    "data",
    [
        base64.b64encode(EVENTS).decode(),  # posthog-js's compression=base64
        base64.b64encode(EVENTS).decode().rstrip("="),  # padding left off
        base64.urlsafe_b64encode(EVENTS).decode(),
        EVENTS.decode(),  # JSON as is
    ],
)
async def test_a_form_body_carries_its_json_in_data(data: str) -> None:
    body = urlencode({"data": data, "ver": "1.449.2"}).encode()
    read = await read_body(asgi_request(body, FORM), 1000, form=True)
    assert read.data == [{"event": "$pageleave", "properties": {"token": "k", "emoji": "✓"}}]
    assert read.size == len(EVENTS)


@pytest.mark.parametrize("form", [False, True])
async def test_json_typed_as_a_form_is_json(form: bool) -> None:
    # RudderStack's Node SDK: gzipped JSON as application/x-www-form-urlencoded (axios's default).
    headers = {**FORM, "content-encoding": "gzip"}
    body = gzip.compress(b' {"batch": [{"type": "track"}]}')
    read = await read_body(asgi_request(body, headers), 1000, form=form)
    assert read.data == {"batch": [{"type": "track"}]}


async def test_a_base64_plus_sent_unescaped_still_decodes() -> None:
    encoded = base64.b64encode(b'{"a": ">>>"}').decode()
    assert "+" in encoded
    body = b"data=" + encoded.encode()  # a client that did not escape it: `+` reads as a space
    assert (await read_body(asgi_request(body, FORM), 1000, form=True)).data == {"a": ">>>"}


@pytest.mark.parametrize(
    ("body", "form", "status", "code"),
    [
        (b"data=e30", False, 415, "unsupported_media_type"),  # only PostHog's routes take forms
        (b"ver=1", True, 400, "invalid_form"),
        (b"data=e30&data=e30", True, 400, "invalid_form"),
        (b"data=%ZZ&=", True, 400, "invalid_form"),
        (b"data=not*base64", True, 400, "invalid_form"),
        (b"data=" + base64.b64encode(b"{nope"), True, 400, "invalid_json"),
        (b"data=e30&compression=lz64", True, 415, "unsupported_encoding"),
        (b"data=" + b"e30" * 400, True, 413, "payload_too_large"),
    ],
)
async def test_bad_form_bodies_get_a_clear_error(
    body: bytes, form: bool, status: int, code: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await read_body(asgi_request(body, FORM), 1000, form=form)
    assert (caught.value.status, caught.value.code) == (status, code)
