"""The per-person funnel evaluation (services/metrics/funnels/evaluate.py) on hand-made cases,
each one a rule of docs/funnels.md that a greedy shortcut would get wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.common.funnels import FunnelDefinition
from services.metrics.funnels.evaluate import FunnelEvent, best_attempts, sort_events

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def _funnel(
    steps: list[Any], order: str = "ordered", window: int = 3600, **extra: Any
) -> FunnelDefinition:
    return FunnelDefinition.model_validate(
        {
            "name": "f",
            "steps": [s if isinstance(s, dict) else {"event": s} for s in steps],
            "window_seconds": window,
            "order": order,
            **extra,
        }
    )


def _events(
    *spec: tuple[int, str] | tuple[int, str, dict[str, Any]], strict: bool = False
) -> list[FunnelEvent]:
    out = [
        FunnelEvent(T0 + timedelta(seconds=s[0]), s[1], s[2] if len(s) > 2 else {}) for s in spec
    ]
    sort_events(out, strict)
    return out


def _depths(funnel: FunnelDefinition, events: list[FunnelEvent]) -> tuple[int, list[int]]:
    [attempt] = best_attempts(funnel, events, UTC_ZONE).values()
    return attempt.depth, attempt.seconds


def test_same_second_events_match_steps_in_either_order() -> None:
    # Step 2 is any A, step 3 an A over 5: the two same-second A's must be matched crosswise.
    f = _funnel(["x", "A", {"event": "A", "where": [{"property": "p", "op": "gt", "value": 5}]}])
    events = _events((0, "x"), (7, "A", {"p": 10}), (7, "A", {"p": 1}))
    assert _depths(f, events) == (3, [0, 7, 0])


def test_ordered_takes_the_earliest_times_that_reach_deepest() -> None:
    f = _funnel(["a", "b", "c"])
    events = _events((0, "a"), (5, "b"), (6, "b"), (9, "c"), (20, "c"))
    assert _depths(f, events) == (3, [0, 5, 4])


def test_the_window_end_is_inclusive() -> None:
    f = _funnel(["a", "b"], window=60)
    assert _depths(f, _events((0, "a"), (60, "b"))) == (2, [0, 60])
    assert _depths(f, _events((0, "a"), (61, "b"))) == (1, [0])


def test_strict_breaks_on_any_event_in_between_and_orders_a_second_by_name() -> None:
    f = _funnel(["a", "b"], order="strict")
    assert _depths(f, _events((0, "a"), (3, "z"), (5, "b"), strict=True))[0] == 1
    assert _depths(f, _events((0, "a"), (5, "b"), strict=True))[0] == 2
    # Same second: a < b by name, so a's next event is b...
    assert _depths(f, _events((0, "b"), (0, "a"), strict=True))[0] == 2
    # ...and b -> a in the same second is not a strict sequence.
    assert (
        _depths(_funnel(["b", "a"], order="strict"), _events((0, "b"), (0, "a"), strict=True))[0]
        == 1
    )


def test_any_order_needs_distinct_events_and_reports_when_each_prefix_completed() -> None:
    f = _funnel(["a", "b", "c"], order="any")
    # c before b: reached step 2 (b) only at 9, step 3 at 9 too (c was there since 4).
    assert _depths(f, _events((0, "a"), (4, "c"), (9, "b"))) == (3, [0, 9, 0])
    g = _funnel(
        ["a", "b", {"event": "b", "where": [{"property": "k", "op": "eq", "value": 1}]}],
        order="any",
    )
    # One b with k=1 cannot be both steps 2 and 3; a second b makes it.
    assert _depths(g, _events((0, "a"), (2, "b", {"k": 1})))[0] == 2
    # Step 2 was done at 2 (by that b), steps 2..3 together only at 3.
    assert _depths(g, _events((0, "a"), (2, "b", {"k": 1}), (3, "b"))) == (3, [0, 2, 1])


def test_an_exclusion_between_the_steps_voids_the_attempt() -> None:
    f = _funnel(["a", "b"], exclusions=[{"event": "x"}])
    assert best_attempts(f, _events((0, "a"), (3, "x"), (5, "b")), UTC_ZONE) == {}
    # After the last step, or in the same second as a step: not between.
    assert _depths(f, _events((0, "a"), (5, "b"), (6, "x")))[0] == 2
    assert _depths(f, _events((0, "a"), (0, "x"), (5, "b")))[0] == 2
    # Not reaching to_step: an exclusion anywhere in the window voids it.
    assert best_attempts(f, _events((0, "a"), (3000, "x")), UTC_ZONE) == {}


def test_the_best_attempt_of_a_day_is_the_deepest_then_the_earliest() -> None:
    f = _funnel(["a", "b"], window=60)
    found = best_attempts(
        f, _events((0, "a"), (100, "a"), (130, "b"), (200, "a"), (210, "b")), UTC_ZONE
    )
    assert [(d, a.entry_ts, a.depth) for d, a in found.items()] == [
        (date(2026, 3, 2), T0 + timedelta(seconds=100), 2)
    ]
