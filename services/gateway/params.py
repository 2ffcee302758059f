"""Query parameters shared by the read endpoints, validated with messages naming the parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.common.http import ApiError
from services.common.projects import Project
from services.common.text import MAX_KEY_CHARS, NUL, NUL_MESSAGE
from services.gateway.auth import read_project
from services.gateway.render import Format

MAX_RANGE_DAYS = 731
# The days a read may name. Beyond them, period arithmetic (the month before `from`, a
# retention cohort's 90 weeks after `to`) leaves the years Python's dates hold (1-9999): those
# reads answered 500. No event is older than 2000 (the ingest refuses them) or far ahead.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9997, 12, 31)

# A cache-buster, which clients that cannot turn their cache off add to every GET (jQuery's
# `cache: false`, some dashboard plugins): never a typo of a real parameter, so it is let by.
CACHE_BUSTER = "_"

# Per route, the query parameters it takes (its own and its dependencies'), found on first use.
_TAKEN: dict[str, frozenset[str]] = {}  # by APIRoute.unique_id


def _query_parameters(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_parameters(sub)
    return names


async def known_parameters(request: Request, _: Annotated[Project, Depends(read_project)]) -> None:
    """A query parameter the read route does not take is an error (422 naming it), not ignored:
    ignored, a typo (`interval=week` for `period=week`) or a breakdown the route does not offer
    (`/v1/paths?breakdown=plan`) answers with numbers the caller did not ask for, and nothing
    says so; only a cache-buster (`_`) is let by. Checked after the read key (FastAPI runs
    `read_project` once per request): an unknown key is a 401 whatever the parameters, as on
    every other read. A value holding a NUL is refused here too, for every parameter at once
    (services/common/text.py)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    taken = _TAKEN.get(route.unique_id)
    if taken is None:
        taken = frozenset(_query_parameters(route.dependant))
        _TAKEN[route.unique_id] = taken
    unknown = sorted(set(request.query_params) - taken - {CACHE_BUSTER})
    if unknown:
        takes = ", ".join(sorted(taken)) or "none"
        raise ApiError(
            422,
            "invalid_parameter",
            f"{unknown[0]}: not a parameter of {route.path} (it takes: {takes})",
        )
    for name, value in request.query_params.multi_items():
        if NUL in value:  # an event name to look up, say: the statement would fail
            raise ApiError(422, "invalid_parameter", f"{name}: {NUL_MESSAGE}")


@dataclass(frozen=True)
class DateRange:
    start: date
    stop: date
    format: Format


def date_range(
    from_: Annotated[
        date, Query(alias="from", description=f"first day, YYYY-MM-DD, {FIRST_DAY}..{LAST_DAY}")
    ],
    to: Annotated[
        date, Query(description=f"last day, YYYY-MM-DD, inclusive, {FIRST_DAY}..{LAST_DAY}")
    ],
    format: Annotated[Format, Query(description="json (default) or csv")] = "json",
) -> DateRange:
    if not FIRST_DAY <= from_ <= LAST_DAY:
        raise ApiError(422, "invalid_parameter", f"from: must be in {FIRST_DAY}..{LAST_DAY}")
    if not FIRST_DAY <= to <= LAST_DAY:
        raise ApiError(422, "invalid_parameter", f"to: must be in {FIRST_DAY}..{LAST_DAY}")
    if to < from_:
        raise ApiError(422, "invalid_parameter", "to: must be on or after `from`")
    if (to - from_).days >= MAX_RANGE_DAYS:
        raise ApiError(422, "invalid_parameter", f"to: a range spans at most {MAX_RANGE_DAYS} days")
    return DateRange(from_, to, format)


def tracked_breakdown(
    breakdown: Annotated[
        str | None,
        Query(
            description="split by this event property / trait: a key the project tracks "
            "(GET /v1/breakdowns lists them, POST /v1/breakdowns adds one)",
            max_length=MAX_KEY_CHARS,
        ),
    ] = None,
) -> str | None:
    """The key to split by; the route checks that the project tracks it
    (routes/breakdowns.py `require_tracked`), which takes a read of the project's keys."""
    return breakdown
