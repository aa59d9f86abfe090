"""The default decision policy of DESIGN.md: first rule that applies wins, every decision explained.

1. hold      a data check failed, or the result has no value for the period
2. achieved  target met in the period and each of the `sustain - 1` periods before
3. keep      target met, or an improvement signal
   hold      deployment gap (the approach was not carried out as planned)
4. switch    deterioration signal, or `max_adjustments` adjustments in a row without a keep,
             and another approach is declared
5. adjust    otherwise: each adjustable parameter one step toward its bound
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from cycles.declaration.model import ApproachSpec
from cycles.stats import MIN_BASELINE, point_signal
from cycles.values import ApproachRef, DecisionKind, Limits, SignalKind, Value


def fmt(x: float | None) -> str:
    """A number as people read it in a reason: 0.214, 20, 1.5e+06."""
    if x is None:
        return "none"
    return f"{x:.4g}"


class PolicyInput(Value):
    """Everything the policy looks at; built by the Review stage from the Assessment."""

    metric: str
    period: str
    direction: str
    target: float
    value: float | None
    previous_values: list[float | None] = Field(default_factory=list)  # oldest first
    failed_checks: list[str] = Field(default_factory=list)
    limits: Limits | None = None
    baseline_count: int = 0
    approach: ApproachRef
    approaches: list[ApproachSpec]
    adjustments_in_row: int = 0
    deployment_gaps: list[str] = Field(default_factory=list)
    sustain: int = 3
    max_adjustments: int = 3


class Decision(Value):
    kind: DecisionKind
    reasons: list[str]
    next_approach: ApproachRef
    signal: SignalKind = SignalKind.none
    summary: str = ""  # the reasons in a few words, for one-line displays


def met(value: float | None, target: float, direction: str) -> bool:
    if value is None:
        return False
    return value >= target if direction == "increase" else value <= target


def decide(inp: PolicyInput) -> Decision:
    """Apply the default policy to one reviewed period."""
    same = inp.approach
    cmp = "≥" if inp.direction == "increase" else "≤"
    miss = "<" if inp.direction == "increase" else ">"

    # 1. hold on bad or missing data
    if inp.failed_checks or inp.value is None:
        reasons = [f"data check failed: {c}" for c in inp.failed_checks]
        if inp.value is None:
            reasons.append(f"no value of {inp.metric} for {inp.period}")
        reasons.append("approach unchanged on bad or missing data")
        summary = (
            f"data check failed: {inp.failed_checks[0].split(': ')[0]}"
            if inp.failed_checks
            else "no value for the period"
        )
        return Decision(
            kind=DecisionKind.hold, reasons=reasons, next_approach=same, summary=summary
        )

    signal = point_signal(inp.value, inp.limits, inp.direction)
    signal_reason = _signal_reason(inp, signal)
    is_met = met(inp.value, inp.target, inp.direction)

    # 2. achieved: met now and in each of the sustain - 1 periods before
    window = inp.previous_values[-(inp.sustain - 1) :] if inp.sustain > 1 else []
    if (
        is_met
        and len(window) == inp.sustain - 1
        and all(met(v, inp.target, inp.direction) for v in window)
    ):
        values = ", ".join(fmt(v) for v in [*window, inp.value])
        return Decision(
            kind=DecisionKind.achieved,
            reasons=[f"target {fmt(inp.target)} met for {inp.sustain} periods in a row ({values})"],
            next_approach=same,
            signal=signal,
            summary=f"target met {inp.sustain} periods in a row",
        )

    # 3. keep: met, or an improvement signal
    if is_met or signal is SignalKind.improvement:
        reasons = []
        if is_met:
            reasons.append(f"target met: {fmt(inp.value)} {cmp} {fmt(inp.target)}")
        if signal is SignalKind.improvement:
            reasons.append(signal_reason)
        summary = " and ".join(
            part
            for part, present in (
                ("target met", is_met),
                ("improvement signal", signal is SignalKind.improvement),
            )
            if present
        )
        return Decision(
            kind=DecisionKind.keep,
            reasons=reasons,
            next_approach=same,
            signal=signal,
            summary=summary,
        )

    target_reason = f"target not met: {fmt(inp.value)} {miss} {fmt(inp.target)}"

    # deployment gap: the approach was not tried as planned, so it is not judged
    if inp.deployment_gaps:
        return Decision(
            kind=DecisionKind.hold,
            reasons=[
                target_reason,
                *(f"deployment gap: {g}" for g in inp.deployment_gaps),
                "approach not judged: it was not carried out as planned",
            ],
            next_approach=same,
            signal=signal,
            summary="deployment gap: approach not judged",
        )

    # 4. switch
    others = [a for a in inp.approaches if a.name != same.name]
    why_switch, why_short = [], []
    if signal is SignalKind.deterioration:
        why_switch.append(signal_reason)
        why_short.append("deterioration signal")
    if inp.adjustments_in_row >= inp.max_adjustments:
        why_short.append(f"{inp.adjustments_in_row} adjustments without a keep")
        why_switch.append(
            f"{inp.adjustments_in_row} adjustments in a row without a keep "
            f"(max_adjustments {inp.max_adjustments})"
        )
    if why_switch and others:
        nxt = _next_approach(inp.approaches, same.name)
        return Decision(
            kind=DecisionKind.switch,
            reasons=[target_reason, *why_switch, f"switching to {nxt.name}"],
            next_approach=ApproachRef(name=nxt.name, params=dict(nxt.params)),
            signal=signal,
            summary=", ".join(why_short),
        )

    # 5. adjust
    reasons = [target_reason, signal_reason]
    if why_switch:
        reasons += [*why_switch, "no other approach is declared to switch to"]
    params, moves = _step(inp.approaches, same)
    reasons += moves
    no_signal = "no signal" if inp.limits is not None else "too little baseline for a signal"
    return Decision(
        kind=DecisionKind.adjust,
        reasons=reasons,
        next_approach=ApproachRef(name=same.name, params=params),
        signal=signal,
        summary="; ".join([", ".join([*why_short, no_signal]), *moves]),
    )


def _signal_reason(inp: PolicyInput, signal: SignalKind) -> str:
    if inp.limits is None:
        return (
            f"no signal can be claimed: {inp.baseline_count} baseline periods "
            f"({MIN_BASELINE} needed for XmR limits)"
        )
    lim = inp.limits
    span = f"[{fmt(lim.lower)}, {fmt(lim.upper)}]"
    if signal is SignalKind.none:
        return f"no signal: {fmt(inp.value)} within the natural process limits {span}"
    side = (
        "above the upper" if inp.value is not None and inp.value > lim.upper else "below the lower"
    )
    return f"{signal.value} signal: {fmt(inp.value)} {side} limit {span}"


def _next_approach(approaches: Sequence[ApproachSpec], current: str) -> ApproachSpec:
    names = [a.name for a in approaches]
    i = names.index(current) if current in names else -1
    return approaches[(i + 1) % len(approaches)]


def _step(
    approaches: Sequence[ApproachSpec], current: ApproachRef
) -> tuple[dict[str, Any], list[str]]:
    spec = next((a for a in approaches if a.name == current.name), None)
    params = dict(current.params)
    if spec is None or not spec.adjust:
        return params, [f"{current.name} has no adjustable parameters; it runs again unchanged"]
    moves = []
    for name, rule in spec.adjust.items():
        current_value = params.get(name, spec.params[name])
        value = float(current_value)
        if rule.at_bound(value):
            bound = rule.max if rule.max is not None else rule.min
            moves.append(f"{name} already at its bound {fmt(bound)}")
            continue
        new = rule.next_value(value)
        params[name] = int(new) if isinstance(current_value, int) and new.is_integer() else new
        moves.append(f"{name} {fmt(value)} → {fmt(params[name])}")
    return params, moves
