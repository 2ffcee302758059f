"""The funnel oracle itself, against numbers worked out by hand from docs/funnels.md."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.common.funnels import FunnelDefinition
from tests.support.funnel_oracle import (
    FunnelEvent,
    condition_holds,
    entry_days,
    funnel_breakdown,
    funnel_steps,
)

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = T0.date()
_ids = itertools.count()


def ev(
    name: str | None,
    seconds: float,
    person: str = "u",
    kind: str = "track",
    props: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
) -> FunnelEvent:
    return FunnelEvent(
        f"m{next(_ids)}",
        kind,
        person,
        T0 + timedelta(seconds=seconds),
        event=name,
        properties=props or {},
        traits=traits or {},
    )


def link(kind: str, person: str, other: str) -> FunnelEvent:
    return FunnelEvent(f"m{next(_ids)}", kind, person, T0, linked=other)


def funnel(
    *steps: Any, window: int = 3600, order: str = "ordered", **more: Any
) -> FunnelDefinition:
    return FunnelDefinition.model_validate(
        {
            "name": "f",
            "steps": [{"event": s} if isinstance(s, str) else s for s in steps],
            "window_seconds": window,
            "order": order,
            **more,
        }
    )


def users(events: list[FunnelEvent], f: FunnelDefinition, start: date = DAY) -> list[int]:
    return [s["users"] for s in funnel_steps(events, f, start, start)]


def medians(events: list[FunnelEvent], f: FunnelDefinition) -> list[float | None]:
    return [s["median_seconds_to_convert"] for s in funnel_steps(events, f, DAY, DAY)]


# ordered ----------------------------------------------------------------------------------------


def test_ordered_counts_steps_conversions_and_seconds() -> None:
    f = funnel("a", "b", "c", window=300)
    events = [ev("a", 0), ev("b", 60), ev("c", 200), ev("a", 0, "v"), ev("b", 30, "v")]
    assert funnel_steps(events, f, DAY, DAY) == [
        {
            "event": "a",
            "users": 2,
            "conversion_from_start": 1.0,
            "conversion_from_previous": 1.0,
            "median_seconds_to_convert": None,
        },
        {
            "event": "b",
            "users": 2,
            "conversion_from_start": 1.0,
            "conversion_from_previous": 1.0,
            "median_seconds_to_convert": 45.0,
        },
        {
            "event": "c",
            "users": 1,
            "conversion_from_start": 0.5,
            "conversion_from_previous": 0.5,
            "median_seconds_to_convert": 140.0,
        },
    ]


def test_no_users_gives_nulls() -> None:
    steps = funnel_steps([ev("b", 0)], funnel("a", "b"), DAY, DAY)
    assert [
        (s["users"], s["conversion_from_start"], s["conversion_from_previous"]) for s in steps
    ] == [
        (0, None, None),
        (0, None, None),
    ]


def test_conversions_round_to_four_places() -> None:
    events = [ev("a", 0, p) for p in "xyz"] + [ev("b", 5, "x"), ev("b", 5, "y")]
    steps = funnel_steps(events, funnel("a", "b", "c"), DAY, DAY)
    assert [s["conversion_from_start"] for s in steps] == [1.0, 0.6667, 0.0]
    assert [s["conversion_from_previous"] for s in steps] == [1.0, 0.6667, 0.0]
    # Nobody reached b from the second funnel's start: divisor 0 from there on.
    steps = funnel_steps(events, funnel("a", "c", "b"), DAY, DAY)
    assert [s["conversion_from_previous"] for s in steps] == [1.0, 0.0, None]


def test_window_edge_is_inclusive_after_rounding() -> None:
    f = funnel("a", "b", window=60)
    assert users([ev("a", 0), ev("b", 60)], f) == [1, 1]
    assert users([ev("a", 0), ev("b", 61)], f) == [1, 0]
    # Times are rounded to the second, half up, before anything is compared.
    assert users([ev("a", 0), ev("b", 60.499)], f) == [1, 1]
    assert users([ev("a", 0), ev("b", 60.5)], f) == [1, 0]
    assert users([ev("a", 0.5), ev("b", 61.4)], f) == [1, 1]


def test_ordered_needs_time_order_but_not_within_a_second() -> None:
    f = funnel("a", "b")
    assert users([ev("b", 0), ev("a", 1)], f) == [1, 0]
    assert users([ev("b", 0), ev("a", 0)], f) == [1, 1]  # same second: simultaneous
    assert users([ev("b", 0.2), ev("a", 0.4)], f) == [1, 1]  # both round to 0
    assert medians([ev("b", 0), ev("a", 0)], f) == [None, 0.0]


def test_a_repeated_step_needs_another_event() -> None:
    f = funnel("a", "a", "a")
    assert users([ev("a", 0)], f) == [1, 0, 0]
    assert users([ev("a", 0), ev("a", 0)], f) == [1, 1, 0]
    assert users([ev("a", 0), ev("a", 5), ev("a", 9)], f) == [1, 1, 1]
    assert medians([ev("a", 0), ev("a", 5), ev("a", 9)], f) == [None, 5.0, 4.0]


def test_ordered_takes_the_earliest_step_events() -> None:
    f = funnel("a", "b", "c")
    events = [ev("a", 0), ev("b", 10), ev("b", 20), ev("c", 15), ev("c", 30)]
    # b at 10, then the c at 15 is the earliest at or after it.
    assert medians(events, f) == [None, 10.0, 5.0]


def test_same_second_candidates_pick_the_one_that_goes_deeper() -> None:
    # Two b's in one second; only the vip one can be step 3, so step 2 must take the free one.
    f = funnel("a", "b", {"event": "b", "where": [{"property": "plan", "value": "vip"}]})
    events = [ev("a", 0), ev("b", 5, props={"plan": "vip"}), ev("b", 5, props={"plan": "free"})]
    assert users(events, f) == [1, 1, 1]
    assert medians(events, f) == [None, 5.0, 0.0]


def test_page_and_screen_names() -> None:
    f = funnel("$page", "Home", "$screen")
    events = [
        ev(None, 0, kind="page"),
        ev("Home", 1, kind="screen"),
        ev(None, 2, kind="screen"),
        ev("x", 3, kind="identify"),  # not an active event
    ]
    assert users(events, f) == [1, 1, 1]
    assert users([ev("$page", 0, kind="track"), ev("Home", 1, kind="identify")], f) == [1, 0, 0]


def test_dedup_and_identity_merges() -> None:
    f = funnel("a", "b", "c")
    a = ev("a", 0, "anon")
    events = [a, a, ev("b", 10, "user"), ev("c", 20, "other"), link("identify", "user", "anon")]
    assert users(events, f) == [1, 1, 0]
    # A merge arriving in any position joins the histories; alias too.
    events += [link("alias", "other", "user")]
    assert users(events, f) == [1, 1, 1]
    # A duplicate delivered twice is one event: a -> a needs two.
    assert users([a, a], funnel("a", "a")) == [1, 0]


# strict -----------------------------------------------------------------------------------------


def test_strict_breaks_on_any_event_in_between() -> None:
    f = funnel("a", "b", order="strict")
    assert users([ev("a", 0), ev("x", 5), ev("b", 10)], f) == [1, 0]
    assert users([ev("a", 0), ev("b", 10), ev("x", 11)], f) == [1, 1]
    assert users([ev("a", 0), ev("x", 5, kind="page"), ev("b", 10)], f) == [1, 0]
    # Not active: no break.
    assert users([ev("a", 0), ev("x", 5, kind="identify"), ev("b", 10)], f) == [1, 1]
    # A later a opens its own attempt, which has nothing in between.
    assert users([ev("a", 0), ev("x", 5), ev("a", 6), ev("b", 10)], f) == [1, 1]


def test_strict_orders_a_second_by_name_then_properties() -> None:
    f = funnel("a", "b", order="strict")
    # In one second: a, b, x by name.
    assert users([ev("x", 0), ev("b", 0), ev("a", 0)], f) == [1, 1]
    assert users([ev("a", 0), ev("x", 10), ev("b", 10)], f) == [1, 1]  # b sorts before x
    assert users([ev("a", 0), ev("aa", 0), ev("b", 10)], f) == [1, 0]  # aa sorts between
    assert users([ev("b", 0), ev("a", 0)], funnel("b", "a", order="strict")) == [1, 0]
    # Same second and name: by the properties as sorted JSON ({"k":1} before {"k":2}).
    g = funnel({"event": "a", "where": [{"property": "k", "value": 1}]}, "b", order="strict")
    assert users([ev("a", 0, props={"k": 2}), ev("a", 0, props={"k": 1}), ev("b", 0)], g) == [1, 0]
    h = funnel({"event": "a", "where": [{"property": "k", "value": 2}]}, "b", order="strict")
    assert users([ev("a", 0, props={"k": 1}), ev("a", 0, props={"k": 2}), ev("b", 0)], h) == [1, 1]


def test_strict_identical_events_each_open_their_own_attempt() -> None:
    # a, a, b in one second: the first a is followed by the other a, the second by b.
    f = funnel("a", "b", "a", order="strict")
    assert users([ev("a", 0), ev("b", 0), ev("a", 0)], f) == [1, 1, 0]


def test_strict_a_same_step_event_in_between_breaks_too() -> None:
    f = funnel("a", "b", "c", order="strict")
    assert users([ev("a", 0), ev("b", 5), ev("b", 7), ev("c", 10)], f) == [1, 1, 0]
    # The b in a's second comes right after a; the later b is then between it and c.
    events = [ev("a", 0), ev("b", 0), ev("b", 5), ev("c", 10)]
    found = funnel_steps(events, f, DAY, DAY)
    assert [(s["users"], s["median_seconds_to_convert"]) for s in found] == [
        (1, None),
        (1, 0.0),
        (0, None),
    ]


# any --------------------------------------------------------------------------------------------


def test_any_order_after_step_one() -> None:
    f = funnel("a", "b", "c", order="any")
    events = [ev("a", 0), ev("c", 10), ev("b", 20)]
    assert users(events, f) == [1, 1, 1]
    # T2: b by 20; T3: b and c by 20.
    assert medians(events, f) == [None, 20.0, 0.0]
    # Before step 1 does not count; the same second does.
    assert users([ev("c", -1), ev("a", 0), ev("b", 20)], f) == [1, 1, 0]
    assert users([ev("c", 0), ev("a", 0), ev("b", 20)], f) == [1, 1, 1]
    # Window inclusive.
    assert users([ev("a", 0), ev("b", 3600), ev("c", 3601)], f) == [1, 1, 0]


def test_any_needs_distinct_events_and_not_step_one() -> None:
    f = funnel("a", "a", "b", order="any")
    events = [ev("a", 0), ev("b", 10), ev("a", 20)]
    assert users(events, f) == [1, 1, 1]
    assert medians(events, f) == [None, 20.0, 0.0]
    assert users([ev("a", 0), ev("b", 10)], f) == [1, 0, 0]
    # One event cannot be two steps: b(vip) matches both b and b(vip).
    vip = {"event": "b", "where": [{"property": "plan", "value": "vip"}]}
    f = funnel("a", "b", vip, order="any")
    assert users([ev("a", 0), ev("b", 5, props={"plan": "vip"})], f) == [1, 1, 0]
    events = [ev("a", 0), ev("b", 5, props={"plan": "vip"}), ev("b", 9, props={"plan": "free"})]
    assert users(events, f) == [1, 1, 1]
    assert medians(events, f) == [None, 5.0, 4.0]  # T2 = 5 (vip as b), T3 = 9 (free b, vip)


# conditions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "props", "holds"),
    [
        ("eq", "vip", {"plan": "vip"}, True),
        ("eq", "vip", {"plan": "free"}, False),
        ("eq", "vip", {}, False),
        ("eq", 1, {"plan": 1.0}, True),
        ("eq", 1.0, {"plan": 1}, True),
        ("eq", 1, {"plan": True}, False),
        ("eq", True, {"plan": 1}, False),
        ("eq", True, {"plan": True}, True),
        ("eq", False, {"plan": 0}, False),
        ("eq", "1", {"plan": 1}, False),
        ("eq", 1, {"plan": "1"}, False),
        ("eq", 1, {"plan": [1]}, False),
        ("eq", "vip", {"plan": None}, False),
        ("neq", "vip", {}, True),
        ("neq", "vip", {"plan": "vip"}, False),
        ("neq", 1, {"plan": 1.0}, False),
        ("neq", 1, {"plan": True}, True),
        ("neq", "vip", {"plan": None}, True),
        ("in", ["free", "vip"], {"plan": "vip"}, True),
        ("in", [1.0, "x"], {"plan": 1}, True),
        ("in", [1], {"plan": True}, False),
        ("in", ["vip"], {}, False),
        ("gt", 10, {"plan": 10.5}, True),
        ("gt", 10, {"plan": 10}, False),
        ("gte", 10, {"plan": 10.0}, True),
        ("gte", 10.5, {"plan": 10}, False),
        ("lt", 10, {"plan": 9}, True),
        ("lt", 10, {"plan": 10.0}, False),
        ("lte", 10, {"plan": 10}, True),
        ("lte", -1, {"plan": 0}, False),
        ("gt", 0, {"plan": "5"}, False),
        ("gt", 0, {"plan": True}, False),
        ("lte", 5, {"plan": None}, False),
        ("lt", 5, {}, False),
    ],
)
def test_conditions(op: str, value: Any, props: dict[str, Any], holds: bool) -> None:
    assert condition_holds("plan", op, value, props) is holds


def test_conditions_in_a_funnel_see_properties_over_traits() -> None:
    vip = {"event": "b", "where": [{"property": "plan", "value": "vip"}]}
    cheap = {"event": "b", "where": [{"property": "price", "op": "lt", "value": 10}]}
    f = funnel("a", vip, cheap)
    events = [
        ev("a", 0),
        ev("b", 1, traits={"plan": "vip"}),  # the trait counts
        ev("b", 2, props={"plan": "free"}, traits={"plan": "vip", "price": 3}),  # property wins
    ]
    assert users(events, f) == [1, 1, 1]
    assert medians(events, f) == [None, 1.0, 1.0]
    # Every condition of a step must hold.
    both = {"event": "b", "where": vip["where"] + cheap["where"]}  # type: ignore[operator]
    assert users(events, funnel("a", both)) == [1, 0]
    assert users(
        [ev("a", 0), ev("b", 1, props={"plan": "vip", "price": 9.5})], funnel("a", both)
    ) == [
        1,
        1,
    ]


# exclusions -------------------------------------------------------------------------------------


def _excluding(a: int = 1, b: int | None = 2, order: str = "ordered") -> FunnelDefinition:
    return funnel(
        "a",
        "b",
        "c",
        window=100,
        order=order,
        exclusions=[{"event": "x", "from_step": a, "to_step": b}],
    )


def test_exclusion_between_its_steps_voids_the_attempt() -> None:
    f = _excluding()
    base = [ev("a", 0), ev("b", 10), ev("c", 20)]
    assert users(base, f) == [1, 1, 1]
    assert users([*base, ev("x", 5)], f) == [0, 0, 0]  # voided: not counted at all
    assert users([*base, ev("x", 0)], f) == [1, 1, 1]  # not strictly after T1
    assert users([*base, ev("x", 10)], f) == [1, 1, 1]  # not strictly before T2
    assert users([*base, ev("x", 15)], f) == [1, 1, 1]  # after to_step
    assert users([*base, ev("x", -5)], f) == [1, 1, 1]
    # from_step 2 to the end (to_step default n = 3).
    f = _excluding(2, None)
    assert users([*base, ev("x", 5)], f) == [1, 1, 1]
    assert users([*base, ev("x", 15)], f) == [0, 0, 0]
    assert users([*base, ev("x", 20)], f) == [1, 1, 1]


def test_exclusion_before_reaching_to_step_voids_up_to_the_window_end() -> None:
    f = _excluding(1, 3)
    shallow = [ev("a", 0), ev("b", 10)]  # depth 2 < to_step 3
    assert users([*shallow, ev("x", 50)], f) == [0, 0, 0]
    assert users([*shallow, ev("x", 100)], f) == [0, 0, 0]  # t1 + W: no later than, inclusive
    assert users([*shallow, ev("x", 101)], f) == [1, 1, 0]
    assert users([*shallow, ev("x", 0)], f) == [1, 1, 0]
    # An attempt that did not reach from_step is never voided.
    f = _excluding(2, 3)
    assert users([ev("a", 0), ev("x", 5)], f) == [1, 0, 0]
    assert users([ev("a", 0), ev("b", 10), ev("x", 5)], f) == [1, 1, 0]
    assert users([ev("a", 0), ev("b", 10), ev("x", 11)], f) == [0, 0, 0]


def test_a_voided_attempt_gives_way_to_another() -> None:
    f = _excluding()
    # The first attempt (b at 40, too late for c) is voided by x; the second, at 30, is not.
    events = [ev("a", 0), ev("x", 5), ev("a", 30), ev("b", 40), ev("c", 20)]
    assert users(events, f) == [1, 1, 0]


def test_exclusions_with_strict_and_any() -> None:
    # Strict: x ends the attempt at depth 1, then voids it (after T1, within the window).
    f = _excluding(1, 2, "strict")
    assert users([ev("a", 0), ev("x", 5), ev("b", 10), ev("c", 20)], f) == [0, 0, 0]
    f = _excluding(2, 3, "strict")
    assert users([ev("a", 0), ev("x", 5), ev("b", 10), ev("c", 20)], f) == [1, 0, 0]
    # Any: T2 is when b happened, wherever c is.
    f = _excluding(1, 2, "any")
    assert users([ev("a", 0), ev("c", 3), ev("x", 5), ev("b", 10)], f) == [0, 0, 0]
    assert users([ev("a", 0), ev("c", 3), ev("b", 4), ev("x", 5)], f) == [1, 1, 1]


# best attempt, medians, breakdown, entry days ---------------------------------------------------


def test_best_attempt_is_the_deepest_then_the_earliest() -> None:
    f = funnel("a", "b", "c", window=100)
    events = [ev("a", 0), ev("b", 10), ev("a", 200), ev("b", 230), ev("c", 240), ev("a", 400)]
    assert users(events, f) == [1, 1, 1]
    assert medians(events, f) == [None, 30.0, 10.0]  # the deeper attempt at 200
    events = [ev("a", 0), ev("b", 10), ev("a", 200), ev("b", 250)]
    assert medians(events, f) == [None, 10.0, None]  # equally deep: the earlier
    # The range decides which attempts compete (the second day's is deeper).
    events = [ev("a", 0), ev("b", 10), ev("a", 86400), ev("b", 86401), ev("c", 86402)]
    assert users(events, f) == [1, 1, 0]
    steps = funnel_steps(events, f, DAY, DAY + timedelta(days=1))
    assert [s["users"] for s in steps] == [1, 1, 1]
    assert [s["median_seconds_to_convert"] for s in steps] == [None, 1.0, 1.0]
    # A step-1 event before the range opens nothing in it, even if its steps fall inside.
    assert users(events, f, DAY + timedelta(days=2)) == [0, 0, 0]


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    f = funnel("a", "b")
    gaps = {"p": 10, "q": 20, "r": 31, "s": 90}
    events = [e for p, g in gaps.items() for e in (ev("a", 0, p), ev("b", g, p))]
    assert medians(events, f) == [None, 25.5]
    assert medians(events[:4], f) == [None, 15.0]
    assert medians(events[:6], f) == [None, 20.0]


def test_entry_days_count_each_day_once_and_the_range_once() -> None:
    f = funnel("a", "b", window=100)
    events = [
        ev("a", 0, "p"),
        ev("a", 86400, "p"),
        ev("b", 86410, "p"),
        ev("a", 86400, "q"),
        ev("a", 86401, "q"),  # a second attempt the same day: counted once
    ]
    start, stop = DAY - timedelta(days=1), DAY + timedelta(days=2)
    assert entry_days(events, f, start, stop) == [
        {"date": "2026-03-01", "users": [0, 0]},
        {"date": "2026-03-02", "users": [1, 0]},
        {"date": "2026-03-03", "users": [2, 1]},
        {"date": "2026-03-04", "users": [0, 0]},
    ]
    assert [s["users"] for s in funnel_steps(events, f, start, stop)] == [2, 1]


def test_days_are_in_the_project_timezone() -> None:
    f = funnel("a", "b")
    # 20:00 UTC on Mar 2 is 01:30 on Mar 3 in Kolkata.
    events = [ev("a", 10 * 3600), ev("b", 10 * 3600 + 5)]
    assert entry_days(events, f, DAY, DAY + timedelta(days=1), "Asia/Kolkata") == [
        {"date": "2026-03-02", "users": [0, 0]},
        {"date": "2026-03-03", "users": [1, 1]},
    ]
    assert [s["users"] for s in funnel_steps(events, f, DAY, DAY, "Asia/Kolkata")] == [0, 0]


def test_breakdown_by_the_best_attempts_step_one_value() -> None:
    f = funnel("a", "b", window=100)
    events = [
        ev("a", 0, "p", props={"plan": "free"}),
        ev("a", 200, "p", props={"plan": "vip"}),  # p's best: this one reaches b
        ev("b", 210, "p"),
        ev("a", 0, "q", traits={"plan": "vip"}),
        ev("a", 0, "r", props={"price": 10}),
        ev("a", 0, "s", props={"plan": 10}),
        ev("a", 0, "t", props={"plan": 9.5}),
        ev("a", 0, "w", props={"plan": True}),
        ev("a", 0, "y", props={"plan": ["vip"]}),
        ev("b", 50, "y"),
    ]
    groups = funnel_breakdown(events, f, DAY, DAY, "plan")
    assert [(g["value"], [s["users"] for s in g["steps"]]) for g in groups] == [
        ("vip", [2, 1]),
        (None, [2, 1]),  # missing (r) and non-scalar (y); after the value it ties with
        ("10", [1, 0]),
        ("9.5", [1, 0]),
        ("true", [1, 0]),
    ]
    vip = groups[0]["steps"]
    assert (vip[1]["conversion_from_start"], vip[1]["median_seconds_to_convert"]) == (0.5, 10.0)
    # Values by step-1 users, descending, then value; null after the values it ties with.
    events = [ev("a", 0, p, props={"k": v}) for p, v in [("p", "b"), ("q", "a"), ("r", None)]]
    assert [g["value"] for g in funnel_breakdown(events, f, DAY, DAY, "k")] == ["a", "b", None]
    assert funnel_breakdown([], f, DAY, DAY, "k") == []


def test_equal_attempts_in_one_second_are_ranked_by_times_then_properties() -> None:
    vip = {"event": "a", "where": [{"property": "plan", "value": "vip"}]}
    f = funnel("a", vip)
    events = [
        ev("a", 0, props={"plan": "free"}),
        ev("a", 0, props={"plan": "vip"}),
        ev("a", 10, props={"plan": "vip"}),
    ]
    # From the free a: step 2 is the vip a at 0 (0 s); from the vip a: the one at 10 (10 s).
    # Equally deep, same entry: the earlier step times win, so the free a's attempt.
    assert medians(events, f) == [None, 0.0]
    assert [g["value"] for g in funnel_breakdown(events, f, DAY, DAY, "plan")] == ["free"]
    assert entry_days(events, f, DAY, DAY) == [{"date": "2026-03-02", "users": [1, 1]}]
    # Same depth and times: the step-1 properties that sort first as JSON ("free" < "x").
    events = [ev("a", 0, props={"plan": "x"}), ev("a", 0, props={"plan": "free"}), ev("b", 5)]
    assert users(events, funnel("a", "b")) == [1, 1]
    assert [g["value"] for g in funnel_breakdown(events, funnel("a", "b"), DAY, DAY, "plan")] == [
        "free"
    ]
