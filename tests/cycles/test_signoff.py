"""Applying a person's answer (or the deadline) to a proposed decision."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cycles.declaration import load
from cycles.policy import Decision
from cycles.signoff import Answer, SignOff, apply_sign_off, needs_sign_off
from cycles.values import ApproachRef, DecisionKind

from conftest import ROOT

OUTCOME = load(ROOT / "flows" / "referrals" / "referrals.yaml")
CURRENT = ApproachRef(name="referral-incentive", params={"incentive_usd": 40})
PROPOSED = Decision(
    kind=DecisionKind.switch,
    reasons=["3 adjustments in a row without a keep"],
    next_approach=ApproachRef(name="promoter-nudge", params={"asks_per_week": 2}),
)


def test_needs_sign_off_only_for_listed_decisions() -> None:
    signed = OUTCOME.model_copy(
        update={"policy": OUTCOME.policy.model_copy(update={"sign_off": [DecisionKind.switch]})}
    )
    assert needs_sign_off(signed, PROPOSED)
    assert not needs_sign_off(signed, PROPOSED.model_copy(update={"kind": DecisionKind.adjust}))
    assert not needs_sign_off(OUTCOME, PROPOSED)  # nothing listed by default


def test_approve_keeps_the_proposal() -> None:
    decided = apply_sign_off(OUTCOME, PROPOSED, CURRENT, SignOff(answer=Answer.approve, note="go"))
    assert decided.kind is DecisionKind.switch and decided.next_approach == PROPOSED.next_approach
    assert decided.reasons[-1] == "switch approved by operator (go)"


def test_choosing_an_approach() -> None:
    said = SignOff(answer=Answer.choose_approach, approach="referral-incentive")
    decided = apply_sign_off(OUTCOME, PROPOSED, CURRENT, said)
    assert decided.kind is DecisionKind.keep  # the current approach, with its declared params
    assert decided.next_approach == ApproachRef(
        name="referral-incentive", params={"incentive_usd": 20}
    )
    with pytest.raises(ValueError, match="not a declared approach"):
        apply_sign_off(
            OUTCOME, PROPOSED, CURRENT, SignOff(answer=Answer.choose_approach, approach="x")
        )


@pytest.mark.parametrize(
    ("by", "reason"),
    [("operator", "operator held switch"), ("timeout", "no sign-off of switch within 7 days")],
)
def test_hold(by: str, reason: str) -> None:
    decided = apply_sign_off(OUTCOME, PROPOSED, CURRENT, SignOff(answer=Answer.hold, by=by))
    assert decided.kind is DecisionKind.hold and decided.next_approach == CURRENT
    assert any(reason in r for r in decided.reasons)
    assert OUTCOME.policy.sign_off_timeout == timedelta(days=7)
