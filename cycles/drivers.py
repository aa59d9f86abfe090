"""Driver metrics under the result: each node measured against its own target and baseline.

A driver moved when its period is beyond its own XmR limits (baseline before the current
approach, like the result's); with too little baseline for limits, when it changed by more than
`FLAT_SHARE` of its previous period's value. A deployment driver short of `deployment_gap` of its
target (policy, default 0.5) is a deployment gap: the approach was not carried out as planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from cycles.declaration.model import Outcome
from cycles.numbers import better, fmt, is_increase, met
from cycles.periods import Period
from cycles.stats import point_signal, xmr_limits
from cycles.values import DriverLimits, DriverState, Moved, PeriodValue, SignalKind

FLAT_SHARE = 0.05  # without limits: a change within 5 % of the previous value is flat

MOVED: dict[SignalKind, Moved] = {
    SignalKind.improvement: "improved",
    SignalKind.deterioration: "worsened",
    SignalKind.none: "flat",
}


def evaluate(
    outcome: Outcome,
    metrics: Mapping[str, Sequence[PeriodValue]],
    period: Period,
    start: Period,
) -> list[DriverState]:
    """Every declared driver, depth-first, measured for `period` (approach started at `start`)."""
    first = str(start - outcome.policy.baseline_periods)
    states = []
    for _, spec, parent, depth in outcome.result.driver_nodes():
        values = list(metrics.get(spec.metric, []))
        value = next((v.value for v in values if v.period == str(period)), None)
        known = [v for v in values if v.value is not None]
        baseline = [v for v in known if first <= v.period < str(start)]
        limits = xmr_limits([v.value for v in baseline])
        direction = spec.direction.value
        moved: Moved | None = None
        moved_vs: Literal["baseline limits", "previous period"] | None = None
        if value is not None and limits is not None:
            moved, moved_vs = MOVED[point_signal(value, limits, direction)], "baseline limits"
        elif value is not None:
            before = [v.value for v in known if v.period < str(period)]
            if before:
                moved, moved_vs = _step(value, before[-1], direction), "previous period"
        states.append(
            DriverState(
                metric=spec.metric,
                parent=parent,
                depth=depth,
                target=spec.target,
                direction=direction,
                deployment=spec.deployment,
                value=value,
                share_of_target=None if value is None or spec.target == 0 else value / spec.target,
                met=None if value is None else met(value, spec.target, direction),
                moved=moved,
                moved_vs=moved_vs,
                limits=None
                if limits is None
                else DriverLimits(centre=limits.centre, lower=limits.lower, upper=limits.upper),
            )
        )
    return states


def _step(value: float, previous: float | None, direction: str) -> Moved:
    assert previous is not None
    if abs(value - previous) <= FLAT_SHARE * abs(previous):
        return "flat"
    return "improved" if better(value, previous, direction) else "worsened"


def is_gap(driver: DriverState, threshold: float) -> bool:
    """A deployment driver far short of its target: below `threshold` × target (increase), above
    target / `threshold` (decrease); with a target of 0 or less, any miss."""
    if not driver.deployment or driver.value is None or driver.met:
        return False
    if driver.target <= 0:
        return True
    if is_increase(driver.direction):
        return driver.value < threshold * driver.target
    return driver.value > driver.target / threshold


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f} %"


def gap_text(driver: DriverState) -> str:
    """driver `asks_sent` reached 40 % of its target"""
    if driver.share_of_target is None:
        return f"driver `{driver.metric}` missed its target {driver.target:g}"
    return f"driver `{driver.metric}` reached {percent(driver.share_of_target)} of its target"


def movement_reasons(drivers: Sequence[DriverState]) -> list[str]:
    """Which drivers moved this period and which did not, each with its evidence."""
    moved, still, unknown = [], [], []
    for d in drivers:
        if d.value is None:
            unknown.append(f"`{d.metric}`")
            continue
        evidence = f"{fmt(d.value)}, {percent(d.share_of_target)} of target {fmt(d.target)}"
        if d.moved_vs == "baseline limits" and d.limits is not None:
            span = f"its baseline limits [{fmt(d.limits.lower)}, {fmt(d.limits.upper)}]"
            beyond, within = f"beyond {span}", f"within {span}"
        else:
            beyond = f"more than {FLAT_SHARE:.0%} off the previous period"
            within = f"within {FLAT_SHARE:.0%} of the previous period"
        if d.moved in ("improved", "worsened"):
            moved.append(f"`{d.metric}` {d.moved} ({evidence}; {beyond})")
        elif d.moved == "flat":
            still.append(f"`{d.metric}` ({evidence}; {within})")
        else:
            still.append(f"`{d.metric}` ({evidence}; nothing before it to compare with)")
    reasons = []
    if moved:
        reasons.append("drivers that moved: " + "; ".join(moved))
    if still:
        reasons.append("drivers that did not move: " + "; ".join(still))
    if unknown:
        reasons.append("drivers without a value: " + ", ".join(unknown))
    return reasons
