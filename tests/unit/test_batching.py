"""When the consumer applies what it holds (services/metrics/runner.py: batch_is_due)."""

from __future__ import annotations

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
    assert not batch_is_due(settings, 0, 10.0, caught_up=True)


def test_a_full_batch_goes_at_once(settings: MetricsSettings) -> None:
    assert batch_is_due(settings, 1000, 0.0, caught_up=False)
    assert not batch_is_due(settings, 999, 0.0, caught_up=False)


def test_a_consumer_with_more_to_fetch_waits_up_to_the_maximum(settings: MetricsSettings) -> None:
    assert not batch_is_due(settings, 10, 0.19, caught_up=False)
    assert batch_is_due(settings, 10, 0.2, caught_up=False)


def test_a_caught_up_consumer_waits_only_the_minimum(settings: MetricsSettings) -> None:
    assert not batch_is_due(settings, 10, 0.04, caught_up=True)
    assert batch_is_due(settings, 10, 0.05, caught_up=True)


def test_a_zero_minimum_applies_whatever_a_caught_up_consumer_holds(
    monkeypatch: pytest.MonkeyPatch, settings: MetricsSettings
) -> None:
    monkeypatch.setenv("PULSE_BATCH_MIN_SECONDS", "0")
    assert batch_is_due(MetricsSettings(), 1, 0.0, caught_up=True)
    assert not batch_is_due(MetricsSettings(), 1, 0.0, caught_up=False)


def test_the_minimum_cannot_be_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_BATCH_MIN_SECONDS", "-1")
    with pytest.raises(ValueError, match="batch_min_seconds"):
        MetricsSettings()
