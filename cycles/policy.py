"""The default decision policy of DESIGN.md: first rule that applies wins, every decision explained.

1. hold      a data check failed, or the result has no value for the period
2. achieved  target met in the period and each of the `sustain - 1` periods before
3. keep      target met, or an improvement signal
   hold      deployment gap (the approach was not carried out as planned: an action failed,
             or a deployment driver is short of `deployment_gap` of its target)
4. switch    deterioration signal, `max_adjustments` adjustments in a row without a keep, or
             no parameter left to adjust, and another approach is declared: the next approach
             not tried yet; once all were tried, a Thompson draw from each approach's measured
             effect (`policy.choice: evidence`, cycles.choice; the current one drawn again
             stays: hold), or `hold` with "every approach tried" (`policy.choice: order`)
5. adjust    otherwise: each adjustable parameter one step toward its bound (nothing can move
             and no other approach: hold)

Signals come from `PolicyInput.evidence` (`cycles.signals.detect` with the declaration's
`policy.signals`); without it, from DESIGN.md's single-point rule on `limits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from cycles import choice as evidence_choice
from cycles.choice import Choice, PhaseEffect
from cycles.declaration.model import ApproachSpec
from cycles.drivers import DriverState, gap_text, movement_reasons, percent
from cycles.numbers import better_sign, fmt, is_increase, met, target_sign
from cycles.signals import Evidence, single_point
from cycles.values import ApproachRef, DecisionKind, Limits, SignalKind, Value


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
    # how a switch chooses once every approach was tried (issue 14): on evidence, from each
    # approach's phases (cycles.choice.phase_effects, oldest first), seeded by outcome and period
    outcome: str = ""
    choice: Choice = Choice.evidence
    phases: list[PhaseEffect] = Field(default_factory=list)


class Decision(Value):
    kind: DecisionKind
    reasons: list[str]
    next_approach: ApproachRef
    signal: SignalKind = SignalKind.none
    summary: str = ""  # the reasons in a few words, for one-line displays


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
    cmp = target_sign(inp.direction)
    miss = "<" if is_increase(inp.direction) else ">"

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

    # 4. switch: a deterioration, max_adjustments without a keep, or nothing left to adjust
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
    params, moves, stuck = _step(inp.approaches, same)
    no_signal = "no signal" if evidence.limits is not None else "too little baseline for a signal"
    nothing = f"nothing left to adjust: {stuck}"
    if not why_switch and not moves:  # an adjust that moves nothing is no adjustment
        why_switch = [*signal_reasons, nothing]
        why_short = [no_signal, "nothing left to adjust"]
    if why_switch and others:
        # hold: every approach was tried and, by order, none is left, or on evidence the
        # current one was drawn again
        kind, nxt, how, short = _next_approach(inp)
        return Decision(
            kind=kind,
            reasons=[target_reason, *why_switch, *how],
            next_approach=nxt,
            signal=signal,
            summary="; ".join([", ".join(why_short), *short]),
        )

    # 5. adjust: the parameters that can move, one step each
    reasons = [target_reason, *signal_reasons]
    if why_switch:
        reasons += [*why_switch, "no other approach is declared to switch to"]
    if not moves:
        return Decision(
            kind=DecisionKind.hold,
            reasons=[*reasons, nothing, f"{same.name} runs again unchanged"],
            next_approach=same,
            signal=signal,
            summary=", ".join([*why_short, "nothing left to adjust"]),
        )
    return Decision(
        kind=DecisionKind.adjust,
        reasons=[*reasons, *moves],
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


def _next_approach(inp: PolicyInput) -> tuple[DecisionKind, ApproachRef, list[str], list[str]]:
    """Where a switch goes (issue 14): (decision, next approach, reasons, summary).

    The next approach not tried yet, in declared order; once every approach was tried, a
    Thompson draw from all of them (`policy.choice: evidence`: the current one may be drawn
    again, and then stays: `hold`), or none (`order`: `hold`, "every approach tried").
    """
    current = inp.approach.name
    names = [a.name for a in inp.approaches]
    i = names.index(current) if current in names else -1
    ring = [inp.approaches[(i + k) % len(names)] for k in range(1, len(names) + 1)]
    tried = {p.approach for p in inp.phases} | {current}
    untried = [a for a in ring if a.name not in tried]
    if untried:
        nxt = untried[0]
        ref = ApproachRef(name=nxt.name, params=dict(nxt.params))
        return DecisionKind.switch, ref, [f"switching to {nxt.name} (not tried yet)"], []
    if inp.choice is Choice.order:
        why = (
            "every approach tried: with policy.choice order the approach stays as it is "
            "(declare another approach, or let evidence choose: policy.choice evidence)"
        )
        return DecisionKind.hold, inp.approach, [why], ["every approach tried"]
    return _by_evidence(inp)


def _by_evidence(inp: PolicyInput) -> tuple[DecisionKind, ApproachRef, list[str], list[str]]:
    """A Thompson draw among every approach from its posterior effect; one that returns comes
    back with the parameters of its best phase, the current one stays as it is."""
    current = inp.approach.name
    better = better_sign(inp.direction)
    posts = evidence_choice.posteriors([a.name for a in inp.approaches], inp.phases)
    ranked = [posts[a.name] for a in inp.approaches]
    best = evidence_choice.probability_best(ranked, better)
    seed = f"{inp.outcome}/{inp.period}"
    draw = evidence_choice.seed_of(inp.outcome, inp.period)
    pick = evidence_choice.thompson(ranked, better, draw)
    reasons = [
        f"every approach tried: choosing on evidence, each approach's effect on {inp.metric} "
        "against its phases' own baselines (posterior mean ± sd, probability of being best)"
    ]
    for post in ranked:
        measured = (
            f"{evidence_choice.signed(post.mean)} ± {post.sd:.2g} over "
            f"{_count(post.phases, 'phase')}, {_count(post.periods, 'period')}"
            if post.phases
            else f"no measured effect yet (prior 0 ± {post.sd:.2g})"
        )
        mark = " (current)" if post.approach == current else ""
        reasons.append(f"{post.approach}{mark}: {measured}; P(best) {best[post.approach]:.2f}")
    reasons.append(f"Thompson draw (seed {seed}) picks {pick}")
    if pick == current:
        reasons.append(f"{current} stays as it is")
        return DecisionKind.hold, inp.approach, reasons, [f"{current} stays on evidence"]
    spec = next(a for a in inp.approaches if a.name == pick)
    phase = evidence_choice.best_phase(inp.phases, pick, better)
    params = dict(spec.params)
    if phase is None:
        reasons.append(f"switching to {pick} with its declared parameters")
    else:
        params |= {k: v for k, v in phase.params.items() if k in spec.params}
        shown = ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in params.items())
        span = phase.first if phase.first == phase.last else f"{phase.first} … {phase.last}"
        assert phase.effect is not None
        reasons.append(
            f"switching to {pick} with the parameters of its best phase ({span}, effect "
            f"{evidence_choice.signed(phase.effect)}){': ' + shown if shown else ''}"
        )
    nxt = ApproachRef(name=pick, params=params)
    return DecisionKind.switch, nxt, reasons, [f"{pick} on evidence"]


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _step(
    approaches: Sequence[ApproachSpec], current: ApproachRef
) -> tuple[dict[str, Any], list[str], str]:
    """The parameters one step on, the moves ("usd 20 → 30"), and why nothing else moved
    ("usd already at its bound 40", "nudge has no adjustable parameters")."""
    spec = next((a for a in approaches if a.name == current.name), None)
    params = dict(current.params)
    if spec is None or not spec.adjust:
        return params, [], f"{current.name} has no adjustable parameters"
    moves, stuck = [], []
    for name, rule in spec.adjust.items():
        current_value = params.get(name, spec.params[name])
        value = float(current_value)
        if rule.at_bound(value):
            bound = rule.max if rule.max is not None else rule.min
            stuck.append(f"{name} already at its bound {fmt(bound)}")
            continue
        new = rule.next_value(value)
        params[name] = int(new) if isinstance(current_value, int) and new.is_integer() else new
        moves.append(f"{name} {fmt(value)} → {fmt(params[name])}")
    return params, moves, ", ".join(stuck)
