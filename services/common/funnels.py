"""A funnel's definition (SPEC §4, §5), shared by the gateway that stores it and the metrics
service that evaluates it. The semantics are written out in docs/funnels.md.

A step is an event name with optional conditions on the event's properties. An event's
properties here are its own `properties` over the traits its SDK attached (`context.traits`),
the same "property, else trait as of the event" rule as breakdowns; the event archive keeps
them merged like that (`active_events.props`).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from services.common.text import StoredStr, StrictStoredStr

MAX_STEPS = 10
MAX_WINDOW_SECONDS = 90 * 86400

Scalar = StrictStoredStr | StrictInt | StrictFloat | StrictBool
Order = Literal["ordered", "strict", "any"]
Operator = Literal["eq", "neq", "in", "gt", "gte", "lt", "lte"]


class Condition(BaseModel):
    """`property` compared with `value`: eq/neq with a scalar, `in` with a list of scalars,
    gt/gte/lt/lte with a number (only numeric properties can pass those)."""

    property: StoredStr = Field(min_length=1, max_length=200)
    op: Operator = "eq"
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _value_fits_op(self) -> Self:
        if self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("`in` takes a non-empty list of values")
        elif isinstance(self.value, list):
            raise ValueError(f"`{self.op}` takes a single value, not a list")
        elif self.op in ("gt", "gte", "lt", "lte") and not _is_number(self.value):
            raise ValueError(f"`{self.op}` takes a number")
        return self

    def holds(self, props: dict[str, Any]) -> bool:
        if self.property not in props:
            return self.op == "neq"  # a missing property is "not equal" to anything
        actual = props[self.property]
        if self.op == "eq":
            return _equal(actual, self.value)
        if self.op == "neq":
            return not _equal(actual, self.value)
        if self.op == "in":
            assert isinstance(self.value, list)
            return any(_equal(actual, v) for v in self.value)
        if not _is_number(actual):
            return False
        limit = float(self.value)  # type: ignore[arg-type]  # validated: a number
        number = float(actual)
        if self.op == "gt":
            return number > limit
        if self.op == "gte":
            return number >= limit
        if self.op == "lt":
            return number < limit
        return number <= limit


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(actual: object, expected: object) -> bool:
    """JSON equality, with 1 == 1.0 but never true == 1."""
    if _is_number(actual) and _is_number(expected):
        return float(actual) == float(expected)  # type: ignore[arg-type]
    return type(actual) is type(expected) and actual == expected


class Step(BaseModel):
    event: StoredStr = Field(min_length=1, max_length=200)
    where: list[Condition] = Field(default_factory=list, max_length=20)

    def matches(self, event: str, props: dict[str, Any]) -> bool:
        return event == self.event and all(c.holds(props) for c in self.where)


class Exclusion(Step):
    """An attempt in which this event happens after step `from_step` and before step `to_step`
    (1-based; default: the whole funnel) does not count."""

    from_step: int = Field(default=1, ge=1)
    to_step: int | None = Field(default=None, ge=2)


class FunnelDefinition(BaseModel):
    name: StoredStr = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(min_length=2, max_length=MAX_STEPS)
    window_seconds: int = Field(ge=1, le=MAX_WINDOW_SECONDS)
    order: Order = "ordered"
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _exclusion_steps_exist(self) -> Self:
        n = len(self.steps)
        for i, ex in enumerate(self.exclusions):
            to_step = ex.to_step if ex.to_step is not None else n
            if not ex.from_step < to_step <= n:
                raise ValueError(
                    f"exclusions[{i}]: from_step < to_step <= {n} (the number of steps) must hold"
                )
        return self

    def exclusion_span(self, ex: Exclusion) -> tuple[int, int]:
        """(from_step, to_step) with the default filled in."""
        return ex.from_step, ex.to_step if ex.to_step is not None else len(self.steps)

    def event_names(self) -> set[str] | None:
        """The event names evaluating this funnel needs; None when it needs every event (strict
        order: any other event between two steps breaks the attempt)."""
        if self.order == "strict":
            return None
        return {s.event for s in self.steps} | {e.event for e in self.exclusions}
