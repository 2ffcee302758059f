"""Path edges, batch by batch: the change `replace_suffix` adds is exactly the difference between
the edges of the whole history as it is and as it was (services/metrics/aggregates/paths.py).

The integration property tests compare the stored edges with a recomputation after whole
deliveries; this one checks the step itself on many more histories, in memory."""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.aggregates import paths
from tests.support.examples import scaled

UTC = ZoneInfo("UTC")
HOUR = 3600

# (gap in hours from the previous event, event): few names, so runs and repeats are common, and
# gaps from 0 to two days, so runs span days and prev days differ from last days.
steps = st.lists(st.tuples(st.integers(0, 48), st.sampled_from("abc")), max_size=14)


def _timed(start: int, gaps: list[tuple[int, str]]) -> list[tuple[int, str]]:
    out, second = [], start
    for gap, name in gaps:
        second += gap * HOUR
        out.append((second, name))
    return out


def _edges(events: list[tuple[int, str]]) -> Counter[paths.EdgeKey]:
    counts: Counter[paths.EdgeKey] = Counter()
    paths.history_edges(counts, 1, paths.in_order(events, UTC), 1)
    return counts


@settings(max_examples=scaled(400), deadline=None)
@given(prefix=steps, old=steps, new=steps)
def test_replace_suffix_adds_the_difference_of_whole_histories(
    prefix: list[tuple[int, str]], old: list[tuple[int, str]], new: list[tuple[int, str]]
) -> None:
    before = _timed(0, prefix)
    start = before[-1][0] + 1 if before else 0  # the continuation comes after the prefix
    was, now = _timed(start, old), _timed(start, new)

    history = paths.Tail()
    history.extend(paths.in_order(before, UTC))
    delta: Counter[paths.EdgeKey] = Counter()
    tail = paths.replace_suffix(
        delta, 1, history, paths.in_order(was, UTC), paths.in_order(now, UTC)
    )

    expected = _edges(before + now)
    expected.subtract(_edges(before + was))
    assert {k: n for k, n in delta.items() if n} == {k: n for k, n in expected.items() if n}
    whole = paths.Tail()
    whole.extend(paths.in_order(before + now, UTC))
    assert tail.encode() == whole.last_runs().encode()
