"""The five RADAR stages as plain functions over typed values (no I/O, no Prefect).

The engine (`cycles.engine`) fetches data, runs actions and writes history; these functions
decide what that data means.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import Window
from cycles.declaration.model import Outcome
from cycles.drivers import DriverState, from_extra, is_gap
from cycles.periods import Period
from cycles.policy import Decision, PolicyInput, decide
from cycles.record import CycleRecord
from cycles.secrets import MASK
from cycles.signals import Counts, Evidence, detect
from cycles.stats import xmr_limits
from cycles.values import ActionRun, ApproachRef, DecisionKind, Limits, PeriodValue

# -- Result -----------------------------------------------------------------------------------


def standing(values: Sequence[PeriodValue], period: Period) -> float | None:
    """Where the result stood when the period opened: its last known value before it."""
    before = [v.value for v in values if v.period < str(period) and v.value is not None]
    return before[-1] if before else None


# -- Approach ---------------------------------------------------------------------------------


def choose_approach(outcome: Outcome, previous: CycleRecord | None) -> tuple[ApproachRef, str]:
    """This cycle's approach: what the last review planned, else the first declared one."""
    first = outcome.approaches[0]
    if previous is None or previous.next_approach is None:
        return ApproachRef(name=first.name, params=dict(first.params)), (
            f"first cycle of {outcome.outcome}: the first declared approach, {first.name}"
        )
    planned = previous.next_approach
    spec = outcome.approach(planned.name)
    if spec is None:
        return ApproachRef(name=first.name, params=dict(first.params)), (
            f"{planned.name} (planned by the {previous.period} review) is no longer declared; "
            f"using {first.name}"
        )
    # parameters the review planned win; parameters declared since then join with their value,
    # and so do secrets (the history keeps them as ***)
    params = {
        **spec.params,
        **{k: v for k, v in planned.params.items() if k in spec.params and v != MASK},
    }
    return ApproachRef(name=spec.name, params=params), (
        f"planned by the {previous.period} review ({previous.decision})"
    )


def approach_start(history: Sequence[CycleRecord], approach: str, period: Period) -> Period:
    """The first period of the current, unbroken run of `approach` (this period if new)."""
    start = period
    for cycle in reversed(history):
        if cycle.approach is None or cycle.approach.name != approach:
            break
        start = Period.parse(cycle.period, period.cadence)
    return start


def adjustments_in_row(history: Sequence[CycleRecord], approach: str) -> int:
    """`adjust` decisions of the current approach since its last keep (holds do not count)."""
    count = 0
    for cycle in reversed(history):
        if cycle.approach is None or cycle.approach.name != approach:
            break
        if cycle.decision in (DecisionKind.keep, DecisionKind.achieved):
            break
        if cycle.decision is DecisionKind.adjust:
            count += 1
    return count


# -- Deployment -------------------------------------------------------------------------------


def action_key(outcome: str, period: str, approach: str, action: str) -> str:
    return f"{outcome}/{period}/{approach}/{action}"


def deployment_gaps(
    actions: Sequence[ActionRun],
    drivers: Sequence[DriverState] = (),
    threshold: float = 0.5,
) -> list[str | DriverState]:
    """Why the approach was not tried as planned: actions that were due but did not succeed
    (as text), and deployment drivers far short of their target (`drivers.is_gap`)."""
    failed: list[str | DriverState] = [
        f"action {a.name} {a.status}" + (f" ({a.error})" if a.error else "")
        for a in actions
        if a.status in ("failed", "pending")
    ]
    return failed + [d for d in drivers if is_gap(d, threshold)]


# -- Assessment -------------------------------------------------------------------------------


def assessment_window(outcome: Outcome, period: Period, start: Period) -> Window:
    """Baseline periods before the approach started, the approach's periods, and this one."""
    policy = outcome.policy
    first = min(start - policy.baseline_periods, period - max(policy.sustain - 1, 0))
    periods = tuple(first + i for i in range(period.index - first.index + 1))
    return Window(periods, outcome.timezone)


def baseline_limits(
    values: Sequence[PeriodValue], start: Period, baseline_periods: int
) -> tuple[Limits | None, int]:
    """XmR limits over up to `baseline_periods` periods before `start`, and how many had values."""
    first = str(start - baseline_periods)
    baseline = [v for v in values if first <= v.period < str(start) and v.value is not None]
    limits = xmr_limits([v.value for v in baseline], [v.period for v in baseline])
    return limits, len(baseline)


def signal_evidence(
    outcome: Outcome, values: Sequence[PeriodValue], period: str, start: Period
) -> Evidence | None:
    """The signal at `period` (cycles.signals): the approach's periods since `start` against
    the baseline before it, the one `baseline_limits` uses; counts for a proportion."""
    first = str(start - outcome.policy.baseline_periods)
    series = [v for v in values if first <= v.period <= period]
    if not series or series[-1].period != period:
        return None
    counts: list[Counts | None] | None = None
    if outcome.result_metric.is_proportion:
        counts = [
            (v.numerator, v.denominator)
            if v.value is not None and v.numerator is not None and v.denominator is not None
            else None
            for v in series
        ]
    return detect(
        [v.value for v in series],
        [v.period for v in series],
        baseline_end=sum(v.period < str(start) for v in series),
        direction=outcome.result.direction.value,
        rules=outcome.policy.signals,
        counts=counts,
    )


# -- Review -----------------------------------------------------------------------------------


def review(
    outcome: Outcome,
    record: CycleRecord,
    history: Sequence[CycleRecord],
    baseline_count: int,
) -> Decision:
    """Apply the decision policy to an assessed cycle."""
    assert record.approach is not None
    values = record.metrics.get(outcome.result.metric, [])
    previous = [v.value for v in values if v.period < record.period]
    failed = [
        f"{c.expectation} on {c.metric}" + (f": {c.message}" if c.message else "")
        for c in record.checks.results
        if not c.success
    ]
    drivers = from_extra(record.extra.get("drivers"))
    start = approach_start(
        history, record.approach.name, Period.parse(record.period, outcome.cadence)
    )
    return decide(
        PolicyInput(
            metric=outcome.result.metric,
            period=record.period,
            direction=outcome.result.direction.value,
            target=outcome.result.target,
            value=record.result_value,
            previous_values=previous,
            failed_checks=failed,
            limits=record.limits,
            baseline_count=baseline_count,
            evidence=signal_evidence(outcome, values, record.period, start),
            approach=record.approach,
            approaches=list(outcome.approaches),
            adjustments_in_row=adjustments_in_row(history, record.approach.name),
            deployment_gaps=deployment_gaps(record.actions, drivers, outcome.policy.deployment_gap),
            drivers=drivers,
            sustain=outcome.policy.sustain,
            max_adjustments=outcome.policy.max_adjustments,
        )
    )
