"""Typed values that flow between the stages. Plain pydantic, no I/O, no Prefect."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(StrEnum):
    result = "result"
    approach = "approach"
    deployment = "deployment"
    assessment = "assessment"
    review = "review"


STAGES: tuple[Stage, ...] = tuple(Stage)


class DecisionKind(StrEnum):
    keep = "keep"
    adjust = "adjust"
    switch = "switch"
    hold = "hold"
    achieved = "achieved"


class SignalKind(StrEnum):
    improvement = "improvement"
    deterioration = "deterioration"
    none = "none"


class ApproachRef(Value):
    """An approach and the parameters it runs with in one cycle."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class PeriodValue(Value):
    """A metric's value in one period: the mean of its rows, or sum(numerator)/sum(denominator)."""

    period: str
    value: float | None
    rows: int = 0
    numerator: float | None = None
    denominator: float | None = None


class CheckResult(Value):
    """The outcome of one data check (a Great Expectations expectation) on a period's rows."""

    metric: str
    expectation: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    observed_value: Any = None
    engine: str = "native"
    message: str | None = None


class Limits(Value):
    """XmR natural process limits computed from baseline periods."""

    centre: float
    lower: float
    upper: float
    baseline: list[str] = Field(default_factory=list)
    moving_range: float = 0.0


class Signal(Value):
    kind: SignalKind = SignalKind.none
    reasons: list[str] = Field(default_factory=list)


# an action in one of these states never runs again ("resent": it succeeded on an attempt that
# repeated one whose outcome is unknown, because its run was killed in between)
ACTION_FINAL = ("succeeded", "resent", "skipped")


class ActionRun(Value):
    """What the Deployment stage did with one action."""

    name: str
    type: str
    key: str
    status: str  # succeeded | resent | failed | skipped | pending | dry-run
    reach: float | None = None
    error: str | None = None
    attempts: int = 0


class StageRun(Value):
    stage: Stage
    status: str  # completed | failed
    started_at: datetime
    finished_at: datetime
    error: str | None = None
