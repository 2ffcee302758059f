"""What PostgreSQL can store (services/common/text.py): no NUL in text, JSON orjson can write."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from services.common.text import StoredStr, storable_json


class Named(BaseModel):
    name: StoredStr


def test_a_nul_is_refused_with_the_field_named() -> None:
    assert Named(name="a\ufffdb").name == "a\ufffdb"
    with pytest.raises(ValidationError) as caught:
        Named(name="a\x00b")
    assert caught.value.errors()[0]["loc"] == ("name",)
    assert "NUL" in caught.value.errors()[0]["msg"]


def test_integers_beyond_64_bits_are_written_as_floats_the_rest_as_they_are() -> None:
    value = {"n": 2**70, "m": [-(2**64), 2**64 - 1, -(2**63)], "ok": True, "f": 1.5, "s": "x"}
    assert orjson.loads(storable_json(value)) == {
        "n": float(2**70),
        "m": [float(-(2**64)), 2**64 - 1, -(2**63)],
        "ok": True,
        "f": 1.5,
        "s": "x",
    }
    assert storable_json({"a": 1}) == '{"a":1}'
