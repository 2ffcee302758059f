"""The per-write-key token bucket, on a fake clock."""

from __future__ import annotations

from services.ingest.quota import Quota


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_steady_rate_then_retry_after() -> None:
    clock = Clock()
    quota = Quota(events_per_second=100, burst_events=200, clock=clock)
    assert quota.take(1, 150) is None
    assert quota.take(1, 150) is None  # admitted while not in debt: 200 - 300 = -100
    wait = quota.take(1, 1)
    assert wait == 2  # 100 tokens of debt at 100/s, and one more to admit
    clock.now += 1.0
    assert quota.take(1, 1) == 1  # still at 0 tokens
    clock.now += 0.02
    assert quota.take(1, 1) is None


def test_projects_do_not_share_a_bucket() -> None:
    clock = Clock()
    quota = Quota(events_per_second=10, burst_events=10, clock=clock)
    assert quota.take(1, 50) is None
    assert quota.take(1, 1) is not None
    assert quota.take(2, 10) is None


def test_refused_requests_take_nothing() -> None:
    clock = Clock()
    quota = Quota(events_per_second=10, burst_events=10, clock=clock)
    assert quota.take(1, 20) is None  # -10
    for _ in range(100):
        assert quota.take(1, 20) is not None
    clock.now += 1.1  # +11 tokens: out of debt
    assert quota.take(1, 20) is None


def test_a_long_run_never_exceeds_burst_plus_rate_plus_one_request() -> None:
    clock = Clock()
    quota = Quota(events_per_second=50, burst_events=100, clock=clock)
    admitted = 0
    for _ in range(1000):  # 10 s, a request of 7 events every 10 ms (700/s offered)
        if quota.take(1, 7) is None:
            admitted += 7
        clock.now += 0.01
    assert 100 + 50 * 10 - 7 <= admitted <= 100 + 50 * 10 + 7


def test_zero_rate_turns_the_quota_off() -> None:
    quota = Quota(events_per_second=0, burst_events=0)
    assert not quota.enabled
    assert all(quota.take(1, 10_000) is None for _ in range(100))
