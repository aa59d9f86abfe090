"""The default decision policy of DESIGN.md: first rule that applies wins, every decision explained.

1. hold      a data check failed, or the result has no value for the period
2. achieved  target met in the period and each of the `sustain - 1` periods before
3. keep      target met, or an improvement signal
   hold      deployment gap (the approach was not carried out as planned: an action failed,
             or a deployment driver is short of `deployment_gap` of its target)
4. switch    deterioration signal, or `max_adjustments` adjustments in a row without a keep,
             and another approach is declared
5. adjust    otherwise: each adjustable parameter one step toward its bound

Signals come from `PolicyInput.evidence` (`cycles.signals.detect` with the declaration's
`policy.signals`); without it, from DESIGN.md's single-point rule on `limits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from cycles.declaration.model import ApproachSpec
from cycles.drivers import DriverState, gap_text, movement_reasons, percent
from cycles.signals import Evidence, single_point
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
    # the signal at this period (cycles.signals.detect); None: the single-point rule on limits
    evidence: Evidence | None = None
    approach: ApproachRef
    approaches: list[ApproachSpec]
    adjustments_in_row: int = 0
    # failed actions (text) and deployment drivers far short of their target
    deployment_gaps: list[str | DriverState] = Field(default_factory=list)
    drivers: list[DriverState] = Field(default_factory=list)  # every driver node, depth-first
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
    """Apply the default policy to one reviewed period; the reasons say which drivers moved."""
    decision = _rules(inp)
    judged = not inp.failed_checks and inp.value is not None  # rule 1 judges nothing
    if not inp.drivers or not judged:
        return decision
    reasons = [*decision.reasons, *movement_reasons(inp.drivers)]
    return decision.model_copy(update={"reasons": reasons})


def _rules(inp: PolicyInput) -> Decision:
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

    evidence = inp.evidence or single_point(
        inp.value, inp.period, inp.limits, inp.direction, inp.baseline_count
    )
    signal, signal_reasons = evidence.kind, evidence.reasons
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
            reasons += signal_reasons
        summary = " and ".join(
            part
            for part, present in (
                ("target met", is_met),
                (_signal_summary(evidence), signal is SignalKind.improvement),
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
                *(_gap_reason(g, inp, signal) for g in inp.deployment_gaps),
                "approach not judged: it was not carried out as planned",
            ],
            next_approach=same,
            signal=signal,
            summary=_gap_summary(inp.deployment_gaps[0]),
        )

    # 4. switch
    others = [a for a in inp.approaches if a.name != same.name]
    why_switch, why_short = [], []
    if signal is SignalKind.deterioration:
        why_switch += signal_reasons
        why_short.append(_signal_summary(evidence))
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
    reasons = [target_reason, *signal_reasons]
    if why_switch:
        reasons += [*why_switch, "no other approach is declared to switch to"]
    params, moves = _step(inp.approaches, same)
    reasons += moves
    no_signal = "no signal" if evidence.limits is not None else "too little baseline for a signal"
    return Decision(
        kind=DecisionKind.adjust,
        reasons=reasons,
        next_approach=ApproachRef(name=same.name, params=params),
        signal=signal,
        summary="; ".join([", ".join([*why_short, no_signal]), *moves]),
    )


def _gap_reason(gap: str | DriverState, inp: PolicyInput, signal: SignalKind) -> str:
    """A failed action as it was; a driver as "result flat; driver `x` reached 40 % of ..."."""
    if isinstance(gap, str):
        return f"deployment gap: {gap}"
    if signal is SignalKind.deterioration:
        result = "result deteriorated"
    else:
        result = "result flat" if inp.limits is not None else "result without a signal"
    return f"{result}; {gap_text(gap)}: deployment gap, not a failed approach"


def _gap_summary(gap: str | DriverState) -> str:
    if isinstance(gap, str):
        return "deployment gap: approach not judged"
    return f"deployment gap: {gap.metric} at {percent(gap.share_of_target)} of target"


def _signal_summary(evidence: Evidence) -> str:
    """The kind, and the rules that claimed it unless a point beyond a limit did (DESIGN.md):
    "improvement signal", "improvement signal (run_of_7, ewma)"."""
    rules = dict.fromkeys(f.rule for f in evidence.findings if f.kind is evidence.kind)
    named = "" if "point" in rules else f" ({', '.join(rules)})"
    return f"{evidence.kind.value} signal{named}"


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
