"""How a lifecycle split read groups the periods it must compute, and which values it lists
(services/gateway/queries/lifecycle.py): no database."""

from __future__ import annotations

from datetime import date

from services.common.values import NO_VALUE
from services.gateway.queries.breakdown import MAX_VALUES
from services.gateway.queries.lifecycle import _listed, _runs


def test_stale_periods_are_computed_as_runs_of_consecutive_ones() -> None:
    days = [date(2026, 3, d) for d in (1, 2, 3, 5, 9, 10)]
    assert _runs(days, "day") == [
        (date(2026, 3, 1), date(2026, 3, 3)),
        (date(2026, 3, 5), date(2026, 3, 5)),
        (date(2026, 3, 9), date(2026, 3, 10)),
    ]
    months = [date(2025, 12, 1), date(2026, 1, 1), date(2026, 3, 1)]
    assert _runs(months, "month") == [
        (date(2025, 12, 1), date(2026, 1, 1)),
        (date(2026, 3, 1), date(2026, 3, 1)),
    ]
    assert _runs([], "week") == []


def test_values_listed_by_persons_counted_then_bytes_and_the_null_group_last() -> None:
    day1, day2 = date(2026, 3, 1), date(2026, 3, 2)

    def counted(persons: int) -> dict[date, list[int]]:
        # new, returning, resurrecting and dormant (negative, as the read keeps it)
        return {day1: [persons, 0, 0, 0], day2: [0, 0, 0, -persons]}

    counts = {f"v{n:02}": counted(n + 1) for n in range(MAX_VALUES + 5)}
    counts["Z"] = counted(11)  # ties with v10: "Z" < "v" in bytes
    counts[NO_VALUE] = counted(1)
    listed = _listed(counts)
    assert len(listed) == MAX_VALUES + 1
    assert listed[-1] == NO_VALUE
    assert listed[:3] == [f"v{MAX_VALUES + 4:02}", f"v{MAX_VALUES + 3:02}", f"v{MAX_VALUES + 2:02}"]
    assert listed.index("Z") == listed.index("v10") - 1
    # Z pushed the 50th value out: v06 is the last listed, v05 and fewer are not.
    assert listed[-2] == "v06" and "v05" not in listed
