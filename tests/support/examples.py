"""How many examples the property-based tests try.

Each test names the count that `make test` runs, sized to keep the suite within its time.
PULSE_EXAMPLES_SCALE (a whole number, default 1) multiplies all of them: a soak run such as
`PULSE_EXAMPLES_SCALE=20 make test` searches many more histories and deliveries."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = int(os.environ.get("PULSE_EXAMPLES_SCALE", "1"))


def scaled(examples: int) -> int:
    return examples * SCALE


def database_examples(examples: int) -> settings:
    """Settings of a property test whose examples each write to the real database: no deadline
    (a shared, busy machine), and the function-scoped fixtures (the database) are meant to be
    shared across examples, each of which uses a project of its own."""
    return settings(
        max_examples=scaled(examples),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
