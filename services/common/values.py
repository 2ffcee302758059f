"""How `person_day_values` keeps the active events that carry no value for a tracked key.

They are rows like any value's, under `NO_VALUE`: the splits' `null` group ("(none)" in
Amplitude, "undefined" in Mixpanel, "none" in PostHog) is then kept exactly by the same writes
and triggers as every value, and a split's groups add up to the whole. A breakdown value is
never the empty string (services/metrics/aggregates/traits.py `value_of` takes an empty string
for no value), so `NO_VALUE` meets no real one. Readers show it as `null`.
"""

from __future__ import annotations

NO_VALUE = ""


def stored(value: str | None) -> str:
    """An event's value as `person_day_values` keeps it: none is `NO_VALUE`."""
    return NO_VALUE if value is None else value


def shown(value: str) -> str | None:
    """A stored value as the API reports it: `NO_VALUE` is `null`."""
    return None if value == NO_VALUE else value


def null_last(values: list[str]) -> list[str]:
    """The values in their order, the null group (if there) moved last, as every split lists it."""
    return [v for v in values if v != NO_VALUE] + [v for v in values if v == NO_VALUE]
