"""Human sign-off of a decision: which decisions need one, and applying the answer."""

from __future__ import annotations

from cycles.declaration.model import Outcome
from cycles.policy import Decision
from cycles.values import Answer, ApproachRef, DecisionKind, SignOff


def needs_sign_off(outcome: Outcome, decision: Decision) -> bool:
    return decision.kind in outcome.policy.sign_off


def apply_sign_off(
    outcome: Outcome, proposed: Decision, current: ApproachRef, said: SignOff
) -> Decision:
    """The decision after sign-off: approved as proposed, another approach, or hold."""
    note = f" ({said.note})" if said.note else ""
    if said.answer is Answer.approve:
        return proposed.model_copy(
            update={
                "reasons": [*proposed.reasons, f"{proposed.kind.value} approved by {said.by}{note}"]
            }
        )
    if said.answer is Answer.choose_approach:
        spec = outcome.approach(said.approach or "")
        if spec is None:
            raise ValueError(f"{said.approach!r} is not a declared approach")
        return Decision(
            kind=DecisionKind.switch if spec.name != current.name else DecisionKind.keep,
            reasons=[
                *proposed.reasons,
                f"{said.by} chose {spec.name} instead of {proposed.kind.value}{note}",
            ],
            next_approach=ApproachRef(name=spec.name, params=dict(spec.params)),
            signal=proposed.signal,
            summary=f"{said.by} chose {spec.name}",
        )
    why = (
        f"no sign-off of {proposed.kind.value} within {outcome.policy.sign_off_timeout}"
        if said.by == "timeout"
        else f"{said.by} held {proposed.kind.value}{note}"
    )
    return Decision(
        kind=DecisionKind.hold,
        reasons=[*proposed.reasons, why, "approach unchanged until a decision is signed off"],
        next_approach=current,
        signal=proposed.signal,
        summary=why,
    )
