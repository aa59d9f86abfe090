"""Runs radar asks Prefect for, on an outcome's own deployment `<outcome>/<outcome>`: a review
when its delay is over or its deadline comes, a sign-off run. A run of that deployment finds it
as its own; a shard's tick, whose turn subflows belong to no deployment, sets a lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cycles.declaration.model import Outcome
    from cycles.turn import Review


def schedule_review(outcome: Outcome, review: Review) -> Any:
    """A run of the outcome's deployment when the review of `review.period` becomes due (its
    delay is over, or its deadline came); one per period and time, however often a tick asks.
    None when the outcome has no deployment to run it."""
    from prefect.deployments import run_deployment

    from cycles import clock

    deployment_id = outcome_deployment(outcome)
    if deployment_id is None:
        return None
    kind = "deadline" if review.deadline else "delay"
    parameters: dict[str, Any] = {"period": str(review.period), "review": True}
    if review.deadline:
        parameters["deadline"] = True
    return run_deployment(
        name=deployment_id,
        parameters=parameters,
        scheduled_time=clock.to_prefect(review.due_at),
        idempotency_key=f"radar/{outcome.outcome}/{review.period}/review-{kind}",
        timeout=0,  # do not wait for it
        as_subflow=False,
        tags=[f"radar:review-{kind}"],
    )


# A shard's tick sets, per outcome, the outcome's own deployment (a turn subflow belongs to none)
OUTCOME_DEPLOYMENTS: ContextVar[Callable[[str], str | None] | None] = ContextVar(
    "radar_outcome_deployments", default=None
)


def outcome_deployment(outcome: Outcome | str) -> str | None:
    """The id of the deployment that runs `outcome`'s review and sign-off runs: this run's own
    deployment, or in a shard's tick the outcome's deployment `<outcome>/<outcome>` (None when
    there is none)."""
    from prefect.runtime import deployment

    lookup = OUTCOME_DEPLOYMENTS.get()
    if lookup is not None:
        return lookup(outcome if isinstance(outcome, str) else outcome.outcome)
    return None if deployment.id is None else str(deployment.id)


class DeploymentLookup:
    """Outcome -> the id of its own deployment `<outcome>/<outcome>` (where its delayed reviews
    and sign-off runs go), read once per outcome and run; None when it has none."""

    def __init__(self) -> None:
        self._ids: dict[str, str | None] = {}

    def __call__(self, outcome: str) -> str | None:
        if outcome not in self._ids:
            from prefect import get_client
            from prefect.exceptions import ObjectNotFound

            try:
                with get_client(sync_client=True) as client:
                    found: Any = client.read_deployment_by_name(f"{outcome}/{outcome}")
                self._ids[outcome] = str(found.id)
            except ObjectNotFound:
                self._ids[outcome] = None
        return self._ids[outcome]
