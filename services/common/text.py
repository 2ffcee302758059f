"""Text and JSON PostgreSQL can store.

Neither `text` nor `jsonb` holds the NUL character (U+0000): a NUL in what the gateway stores
or looks up would fail the statement, a 500. Refused instead, a 422 naming the field. (The
ingest replaces NULs in event bodies by U+FFFD, as PostHog does: services/ingest/body.py; the
consumer dead-letters a record holding one: services/metrics/parse.py.)"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, StrictStr

NUL = "\x00"
# The longest trait or breakdown key kept: a longer one, cut, could become another.
MAX_KEY_CHARS = 200
NUL_MESSAGE = "must not contain the NUL character (\\u0000), which PostgreSQL cannot store"


def without_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(NUL_MESSAGE)
    return value


StoredStr = Annotated[str, AfterValidator(without_nul)]
StrictStoredStr = Annotated[StrictStr, AfterValidator(without_nul)]


def storable_json(value: Any) -> str:
    """`value` as JSON text for a `jsonb` column. Integers beyond 64 bits, which orjson does not
    write (the ingest never sends one: it reads JSON numbers that large as floats, so a record
    holding one comes from another producer), are written as floats, as the ingest would have
    read them; infinities as null, as orjson writes them."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_with_float_giants(value)).decode()


def _with_float_giants(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, dict):
        return {k: _with_float_giants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_float_giants(v) for v in value]
    return value
