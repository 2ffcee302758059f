"""When the consumer applies what it holds (services/metrics/runner.py: batch_is_due)."""

from __future__ import annotations

import math

import pytest

from services.common.settings import MetricsSettings
from services.metrics.runner import batch_is_due


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> MetricsSettings:
    monkeypatch.setenv("PULSE_BATCH_MAX_EVENTS", "1000")
    monkeypatch.setenv("PULSE_BATCH_MAX_SECONDS", "0.2")
    monkeypatch.setenv("PULSE_BATCH_MIN_SECONDS", "0.05")
    return MetricsSettings()


def test_nothing_pending_is_never_due(settings: MetricsSettings) -> None:
    assert not batch_is_due(settings, 0, 10.0, behind=0)


def test_a_full_batch_goes_at_once(settings: MetricsSettings) -> None:
    assert batch_is_due(settings, 1000, 0.0, behind=math.inf)
    assert not batch_is_due(settings, 999, 0.0, behind=math.inf)


def test_a_consumer_further_behind_than_it_holds_waits_up_to_the_maximum(
    settings: MetricsSettings,
) -> None:
    # A backlog: more left to fetch than the batch holds, so the batch keeps filling.
    assert not batch_is_due(settings, 10, 0.19, behind=11)
    assert batch_is_due(settings, 10, 0.2, behind=11)
    assert not batch_is_due(settings, 10, 0.19, behind=math.inf)  # ends not known yet


def test_a_consumer_that_keeps_up_waits_only_the_minimum(settings: MetricsSettings) -> None:
    assert not batch_is_due(settings, 10, 0.04, behind=0)
    assert batch_is_due(settings, 10, 0.05, behind=0)
    # A steady stream: the fetcher has seen a few records past those the consumer holds.
    assert batch_is_due(settings, 10, 0.05, behind=10)


def test_a_zero_minimum_applies_whatever_a_consumer_that_keeps_up_holds(
    monkeypatch: pytest.MonkeyPatch, settings: MetricsSettings
) -> None:
    monkeypatch.setenv("PULSE_BATCH_MIN_SECONDS", "0")
    assert batch_is_due(MetricsSettings(), 1, 0.0, behind=0)
    assert not batch_is_due(MetricsSettings(), 1, 0.0, behind=2)


def test_the_minimum_cannot_be_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_BATCH_MIN_SECONDS", "-1")
    with pytest.raises(ValueError, match="batch_min_seconds"):
        MetricsSettings()
