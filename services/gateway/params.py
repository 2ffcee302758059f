"""Query parameters shared by the read endpoints, validated with messages naming the parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Query, Request

from services.common.http import ApiError
from services.gateway.render import Format

MAX_RANGE_DAYS = 731


@dataclass(frozen=True)
class DateRange:
    start: date
    stop: date
    format: Format


def date_range(
    from_: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
    to: Annotated[date, Query(description="last day, YYYY-MM-DD, inclusive")],
    format: Annotated[Format, Query(description="json (default) or csv")] = "json",
) -> DateRange:
    if to < from_:
        raise ApiError(422, "invalid_parameter", "to: must be on or after `from`")
    if (to - from_).days >= MAX_RANGE_DAYS:
        raise ApiError(422, "invalid_parameter", f"to: a range spans at most {MAX_RANGE_DAYS} days")
    return DateRange(from_, to, format)


def tracked_breakdown(
    request: Request,
    breakdown: Annotated[
        str | None,
        Query(
            description="split by this event property / trait (one of PULSE_BREAKDOWN_KEYS: the "
            "metrics service keeps values only for those)"
        ),
    ] = None,
) -> str | None:
    keys: list[str] = request.app.state.pulse.settings.breakdown_key_list
    if breakdown is not None and breakdown not in keys:
        tracked = ", ".join(keys) or "none"
        raise ApiError(
            422,
            "invalid_parameter",
            f"breakdown: {breakdown!r} is not tracked (tracked: {tracked}; "
            "set PULSE_BREAKDOWN_KEYS on the metrics service and the gateway)",
        )
    return breakdown
