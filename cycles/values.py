"""Typed values that flow between the stages. Plain pydantic, no I/O, no Prefect."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

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


# -- what the Assessment and the Review find (kept in CycleRecord.extra) --------------------------

Moved = Literal["improved", "worsened", "flat"]


class DriverLimits(Value):
    centre: float
    lower: float
    upper: float


class DriverState(Value):
    """One driver node as the Assessment found it (cycles.drivers)."""

    metric: str
    parent: str | None  # the parent driver's metric; None under the result
    depth: int  # 1 under the result, 2 under a driver, ...
    target: float
    direction: str
    deployment: bool = False
    value: float | None = None
    share_of_target: float | None = None  # value / target
    met: bool | None = None
    moved: Moved | None = None
    moved_vs: Literal["baseline limits", "previous period"] | None = None
    limits: DriverLimits | None = None


class Answer(StrEnum):
    approve = "approve"
    choose_approach = "choose_approach"
    hold = "hold"


class SignOff(Value):
    """What a person (or the clock) said about a proposed decision (cycles.signoff)."""

    answer: Answer
    approach: str | None = None  # with choose_approach
    note: str = ""
    by: str = "operator"  # or "timeout"


LEVEL = 0.90  # of an effect's interval


class Effect(Value):
    """The current approach's estimated effect (cycles.effects): what a record keeps as
    `extra.effect` and the JSON's `effect` holds."""

    estimate: float  # metric units: the approach's mean less the baseline's centre line
    lower: float
    upper: float
    periods: int  # the approach's periods with a value
    approach: str | None = None
    level: float = LEVEL
    se: float = 0.0
    df: int = 0
    baseline_periods: int = 0
    probability: float | None = None  # P(improvement), beta-binomial: proportions with counts
    line: str = "mean"  # the centre line it is measured against

    def text(self) -> str:
        """ "+0.11 (90 % interval +0.09 to +0.13) over 6 periods"."""
        d = _decimals(self.upper - self.lower, self.estimate)
        span = f"{self.level:.0%}".replace("%", " %")
        many = "s" if self.periods != 1 else ""
        est, low, high = (_signed(x, d) for x in (self.estimate, self.lower, self.upper))
        text = f"{est} ({span} interval {low} to {high}) over {self.periods} period{many}"
        if self.probability is not None:
            text += f", probability of improvement {self.probability:.2f} (beta-binomial)"
        return text

    def reason(self) -> str:
        return f"{self.approach or 'approach'}: {self.text()}"


def _decimals(width: float, estimate: float) -> int:
    """Decimals that show an interval `width` wide to about two digits (4 significant digits of
    the estimate when the interval has no width: a constant series)."""
    scale = width / 4 if width > 1e-12 * max(1.0, abs(estimate)) else abs(estimate) / 1000
    if not scale > 1e-12 or not math.isfinite(scale):
        return 4
    return max(0, min(12, -math.floor(math.log10(scale))))


def _signed(x: float, decimals: int) -> str:
    """+0.11, -0.02; never -0.00."""
    text = f"{x:+.{decimals}f}"
    return "+" + text[1:] if text.startswith("-") and float(text) == 0 else text
