"""The five RADAR stages as plain functions over typed values (no I/O, no Prefect).

The engine (`cycles.engine`) fetches data, runs actions and writes history; these functions
decide what that data means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cycles.baseline import fit, spec_of
from cycles.choice import phase_effects
from cycles.declaration.model import Outcome
from cycles.drivers import DriverState, is_gap
from cycles.effects import Effect, estimate
from cycles.periods import Period, Window
from cycles.policy import Decision, PolicyInput, decide
from cycles.record import BaselineModel, CycleRecord
from cycles.secrets import MASK
from cycles.signals import Counts, Evidence, detect
from cycles.stats import xmr_limits
from cycles.turn import pending_text, reviewed
from cycles.values import ActionRun, ApproachRef, DecisionKind, Limits, PeriodValue

# -- Result -----------------------------------------------------------------------------------


def standing(values: Sequence[PeriodValue], period: Period) -> float | None:
    """Where the result stood when the period opened: its last known value before it."""
    before = [v.value for v in values if v.period < str(period) and v.value is not None]
    return before[-1] if before else None


# -- Approach ---------------------------------------------------------------------------------


def choose_approach(outcome: Outcome, history: Sequence[CycleRecord]) -> tuple[ApproachRef, str]:
    """This cycle's approach (and why): the plan of the latest review before it.

    `history` holds the cycles before this one, oldest first. Cycles opened after that review
    whose own review is still pending (an event, a delay, a sign-off) do not change the plan:
    it is carried over, and the reason says which reviews are pending. Before any review, the
    approach the latest cycle ran with stays; before any cycle, the first declared one.
    """
    first = outcome.approaches[0]
    last_reviewed = next((c for c in reversed(history) if c.next_approach), None)
    pending = [
        pending_text(outcome, c)
        for c in history
        if (last_reviewed is None or c.period > last_reviewed.period) and not reviewed(c)
    ]
    carried = f"; {'; '.join(pending)}" if pending else ""
    if last_reviewed is None:
        ran = next((c.approach for c in reversed(history) if c.approach), None)
        if ran is not None and outcome.approach(ran.name) is not None:
            return _declared(outcome, ran), f"the approach in force, carried over{carried}"
        return ApproachRef(name=first.name, params=dict(first.params)), (
            f"first cycle of {outcome.outcome}: the first declared approach, {first.name}" + carried
        )
    planned = last_reviewed.next_approach
    assert planned is not None
    if outcome.approach(planned.name) is None:
        return ApproachRef(name=first.name, params=dict(first.params)), (
            f"{planned.name} (planned by the {last_reviewed.period} review) is no longer "
            f"declared; using {first.name}{carried}"
        )
    return _declared(outcome, planned), (
        f"planned by the {last_reviewed.period} review ({last_reviewed.decision}){carried}"
    )


def _declared(outcome: Outcome, ref: ApproachRef) -> ApproachRef:
    """`ref` with its declared parameters: the ones it carries win; parameters declared since
    join with their value, and so do secrets (the history keeps them masked): a secret comes
    from the declaration, never from the history."""
    spec = outcome.approach(ref.name)
    assert spec is not None
    secret = outcome.secret_params(spec.name)
    carried = {
        k: v
        for k, v in ref.params.items()
        if k in spec.params and k not in secret and not (isinstance(v, str) and MASK in v)
    }
    params = {**spec.params, **carried}
    return ApproachRef(name=spec.name, params=params)


def masked(outcome: Outcome, ref: ApproachRef) -> ApproachRef:
    """`ref` as the history keeps it: parameters read from the environment as ***."""
    secret = outcome.secret_params(ref.name)
    if not secret:
        return ref
    return ApproachRef(
        name=ref.name, params={k: MASK if k in secret else v for k, v in ref.params.items()}
    )


def unmasked(outcome: Outcome, ref: ApproachRef) -> dict[str, Any]:
    """The parameters an approach's actions run with: secrets from the declaration."""
    spec = outcome.approach(ref.name)
    params = dict(ref.params)
    if spec is not None:
        params |= {k: spec.params[k] for k in outcome.secret_params(ref.name) if k in spec.params}
    return params


def keep_plan_in_force(
    decision: Decision, record: CycleRecord, later: Sequence[CycleRecord]
) -> Decision:
    """A review that lands after later periods opened never undoes what they run.

    When a later cycle already runs another approach than the reviewed one (an earlier review
    changed it while this review was pending), this review judges its own period but plans
    that approach on, with the reason, so the plan does not flip back.
    """
    newer = next((c for c in reversed(later) if c.approach is not None), None)
    if newer is None or newer.approach is None or newer.approach == record.approach:
        return decision
    if decision.next_approach == newer.approach:
        return decision
    shown = record.approach.name if record.approach else "this approach"
    why = (
        f"{newer.approach.name} already runs in {newer.period}, planned while this review was "
        f"pending: it stays planned (this review judged {shown} in {record.period})"
    )
    return decision.model_copy(
        update={"next_approach": newer.approach, "reasons": [*decision.reasons, why]}
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


def baseline_chart(
    outcome: Outcome, values: Sequence[PeriodValue], period: Period, start: Period
) -> tuple[Limits | None, int, BaselineModel | None]:
    """`baseline_limits`, or with `policy.seasonality`/`policy.trend` the limits around the
    fitted line at `period` (cycles.baseline), and the line for the record (`baseline_model`)."""
    policy = outcome.policy
    if policy.seasonality is None and not policy.trend:
        return (*baseline_limits(values, start, policy.baseline_periods), None)
    first = str(start - policy.baseline_periods)
    base = [v for v in values if first <= v.period < str(start) and v.value is not None]
    index = [Period.parse(v.period, outcome.cadence).index for v in base]
    spec = spec_of(policy.seasonality, policy.trend, outcome.cadence.value)
    line, notes = fit(index, [float(v.value) for v in base if v.value is not None], spec)
    if line is None:
        return None, len(base), None
    shown = [Period.parse(v.period, outcome.cadence) for v in values if v.period >= first]
    model = BaselineModel(
        line=line.describe(),
        seasonality=line.season,
        additive=True,
        trend=line.trend,
        level=line.level,
        moving_range=line.moving_range(),
        factors=[line.factor(i) for i in range(line.season or 0)],
        centre={str(p): line.centre(p.index) for p in [*shown, period]},
        notes=notes,
    )
    return line.limits(period.index, [v.period for v in base]), len(base), model


def _series(
    outcome: Outcome, values: Sequence[PeriodValue], period: str, start: Period
) -> tuple[list[PeriodValue], list[Counts | None] | None]:
    """The baseline before `start` and the approach's periods up to `period`; counts for a
    proportion."""
    first = str(start - outcome.policy.baseline_periods)
    series = [v for v in values if first <= v.period <= period]
    counts: list[Counts | None] | None = None
    if outcome.result_metric.is_proportion:
        counts = [
            (v.numerator, v.denominator)
            if v.value is not None and v.numerator is not None and v.denominator is not None
            else None
            for v in series
        ]
    return series, counts


def signal_evidence(
    outcome: Outcome, values: Sequence[PeriodValue], period: str, start: Period
) -> Evidence | None:
    """The signal at `period` (cycles.signals): the approach's periods since `start` against
    the baseline before it, the one `baseline_limits` uses; counts for a proportion."""
    series, counts = _series(outcome, values, period, start)
    if not series or series[-1].period != period:
        return None
    policy = outcome.policy
    return detect(
        [v.value for v in series],
        [v.period for v in series],
        baseline_end=sum(v.period < str(start) for v in series),
        direction=outcome.result.direction.value,
        rules=policy.signals,
        counts=counts,
        index=[Period.parse(v.period, outcome.cadence).index for v in series],
        model=spec_of(policy.seasonality, policy.trend, outcome.cadence.value),
    )


def approach_effect(outcome: Outcome, record: CycleRecord, start: Period) -> Effect | None:
    """The current approach's effect (cycles.effects) over its periods up to this one (this one
    left out when a data check failed on it), against the baseline the signals use."""
    values = record.metrics.get(outcome.result.metric, [])
    series, counts = _series(outcome, values, record.period, start)
    if record.checks.failed and series and series[-1].period == record.period:
        series, counts = series[:-1], None if counts is None else counts[:-1]
    policy = outcome.policy
    return estimate(
        [v.value for v in series],
        baseline_end=sum(v.period < str(start) for v in series),
        direction=outcome.result.direction.value,
        counts=counts,
        index=[Period.parse(v.period, outcome.cadence).index for v in series],
        model=spec_of(policy.seasonality, policy.trend, outcome.cadence.value),
        approach=record.approach.name if record.approach else None,
    )


def named(decision: Decision, evidence: Evidence | None, effect: Effect | None) -> Decision:
    """The decision with what every review names (DESIGN.md): a period beyond a natural process
    limit as a special cause, if no reason says so yet, and the approach's effect so far."""
    extra = []
    points = [f.reason for f in evidence.findings if f.rule == "point"] if evidence else []
    cause = evidence.special_cause if evidence else None
    if cause and not any(r in decision.reasons for r in [cause, *points]):
        extra.append(cause)
    if effect is not None:
        extra.append(effect.reason())
    if not extra:
        return decision
    return decision.model_copy(update={"reasons": [*decision.reasons, *extra]})


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
    drivers = record.extra.drivers
    start = approach_start(
        history, record.approach.name, Period.parse(record.period, outcome.cadence)
    )
    evidence = signal_evidence(outcome, values, record.period, start)
    decision = decide(
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
            evidence=evidence,
            approach=record.approach,
            approaches=list(outcome.approaches),
            adjustments_in_row=adjustments_in_row(history, record.approach.name),
            deployment_gaps=deployment_gaps(record.actions, drivers, outcome.policy.deployment_gap),
            drivers=drivers,
            sustain=outcome.policy.sustain,
            max_adjustments=outcome.policy.max_adjustments,
            outcome=outcome.outcome,
            choice=outcome.policy.choice,
            phases=phase_effects(
                [*history, record],
                outcome.result.metric,
                proportion=outcome.result_metric.is_proportion,
                judged=lambda c: (
                    not deployment_gaps(c.actions, c.extra.drivers, outcome.policy.deployment_gap)
                ),
            ),
        )
    )
    return named(decision, evidence, approach_effect(outcome, record, start))
