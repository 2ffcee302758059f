"""Text PostgreSQL can store: neither `text` nor `jsonb` holds the NUL character (U+0000), so a
NUL in what the gateway stores or looks up would fail the statement, a 500. Refused instead: a
422 naming the field. (The ingest replaces NULs in event bodies by U+FFFD, as PostHog does:
services/ingest/body.py.)"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StrictStr

NUL = "\x00"
NUL_MESSAGE = "must not contain the NUL character (\\u0000), which PostgreSQL cannot store"


def without_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(NUL_MESSAGE)
    return value


StoredStr = Annotated[str, AfterValidator(without_nul)]
StrictStoredStr = Annotated[StrictStr, AfterValidator(without_nul)]
