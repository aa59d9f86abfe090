"""Asking a person to sign off a decision, through a Prefect form.

A deployment run suspends (the worker is freed; the sign-off may take days) and re-runs from
the start when resumed: the stages before the review are already in radar's history, so they
are not repeated and no data is pulled again. A run at the deadline, scheduled when the
sign-off was asked for, records `hold` if nobody answered. A run without a deployment pauses
in its process until the answer or the timeout.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from pydantic import Field

from cycles import clock
from cycles.console import approach_text
from cycles.engine import Cycle
from cycles.policy import Decision
from cycles.record import SignOffRequest
from cycles.signoff import Answer, SignOff

PAUSE_KEY = "radar-sign-off"
GRACE = timedelta(minutes=10)  # the suspended run outlives the deadline run that records hold


class SignOffForm(RunInput):
    """The form the Prefect UI shows; no field is pre-filled, so resuming blank is refused."""

    answer: Answer = Field(description="approve the decision, choose another approach, or hold")
    approach: str | None = Field(default=None, description="with choose_approach: its name")
    note: str = Field(default="", description="why (kept with the decision)")


def ask_sign_off(cycle: Cycle, proposal: Decision) -> SignOff | None:
    """Wait for a person's answer about `proposal` (or the deadline)."""
    requested = cycle.record.extra.sign_off_requested
    now = clock.now()
    if requested and now >= datetime.fromisoformat(requested.deadline):
        return SignOff(answer=Answer.hold, by="timeout")
    timeout = cycle.outcome.policy.sign_off_timeout
    form = SignOffForm.with_initial_data(description=_describe(cycle, proposal))
    if deployment.id is None:  # nothing could run the flow again: wait here
        try:
            answer = pause_flow_run(
                wait_for_input=form,
                timeout=int(timeout.total_seconds()),
                poll_interval=min(10, max(1, int(timeout.total_seconds() // 10))),
                key=PAUSE_KEY,
            )
        except FlowPauseTimeout:
            return SignOff(answer=Answer.hold, by="timeout")
        return _signed(answer)
    if not requested:
        deadline = now + timeout
        cycle.record.extra.sign_off_requested = SignOffRequest(
            at=now.isoformat(),
            deadline=deadline.isoformat(),
            decision=proposal.kind.value,
            flow_run=str(flow_run.id),
        )
        cycle.save_waiting(new_row=False)
        _schedule_deadline_run(cycle, deadline)
    answer = suspend_flow_run(
        wait_for_input=form, timeout=int((timeout + GRACE).total_seconds()), key=PAUSE_KEY
    )
    return _signed(answer)


def defer_sign_off(cycle: Cycle, proposal: Decision) -> SignOff | None:
    """In a tick, a review that needs a sign-off does not hold up opening the next period: it
    gets a deployment run of its own, now, which asks (and suspends while it waits)."""
    from prefect.deployments import run_deployment

    from cycles.later_runs import outcome_deployment

    deployment_id = outcome_deployment(cycle.outcome)  # a shard's tick: the outcome's own
    if deployment_id is not None:
        run_deployment(
            name=deployment_id,
            parameters={"period": cycle.record.period, "review": True},
            idempotency_key=f"radar/{cycle.outcome.outcome}/{cycle.record.period}/sign-off",
            timeout=0,
            as_subflow=False,
            tags=["radar:sign-off"],
        )
    return None


def _signed(form: SignOffForm) -> SignOff:
    return SignOff(answer=form.answer, approach=form.approach, note=form.note)


def _schedule_deadline_run(cycle: Cycle, deadline: datetime) -> None:
    """A run of this deployment at the deadline: it records hold if nobody answered."""
    from prefect.deployments import run_deployment

    run_deployment(
        name=str(deployment.id),
        parameters={"period": cycle.record.period, "review": True},
        scheduled_time=clock.to_prefect(deadline),
        timeout=0,  # do not wait for it
        as_subflow=False,
        tags=["radar:sign-off-deadline"],
    )


def _describe(cycle: Cycle, proposal: Decision) -> str:
    record = cycle.record
    reasons = "\n".join(f"- {r}" for r in proposal.reasons)
    return (
        f"## Sign off {record.outcome} · {record.period}\n\n"
        f"Proposed decision: **{proposal.kind.value}**, next approach "
        f"**{approach_text(proposal.next_approach)}** (now {approach_text(record.approach)}).\n\n"
        f"{reasons}\n\n"
        f"Answer `approve`, `choose_approach` (and name it: "
        f"{', '.join(a.name for a in cycle.outcome.approaches)}) or `hold`. "
        f"Without an answer by {cycle.outcome.policy.sign_off_timeout} from now, the decision is "
        "`hold`."
    )
