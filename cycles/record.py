"""CycleRecord: everything one cycle knows; what `radar run --json` prints and the store keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cycles.values import (
    ActionRun,
    ApproachRef,
    CheckResult,
    DecisionKind,
    Limits,
    PeriodValue,
    SignalKind,
    Stage,
    StageRun,
)


class CheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: int = 0
    failed: int = 0
    results: list[CheckResult] = Field(default_factory=list)

    @classmethod
    def of(cls, results: list[CheckResult]) -> CheckSummary:
        failed = sum(not r.success for r in results)
        return cls(passed=len(results) - failed, failed=failed, results=results)


class CycleRecord(BaseModel):
    """One outcome's cycle for one period. Mutable while the stages fill it in."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    outcome: str
    period: str
    cadence: str
    title: str = ""
    status: str = "open"  # open | reviewed | failed
    stages: list[Stage] = Field(default_factory=list)  # stages run by this invocation, in order
    completed_stages: list[Stage] = Field(default_factory=list)  # all stages done, over all runs
    stage_runs: list[StageRun] = Field(default_factory=list)
    decision: DecisionKind | None = None
    reasons: list[str] = Field(default_factory=list)
    approach: ApproachRef | None = None
    next_approach: ApproachRef | None = None
    result_metric: str = ""
    result_value: float | None = None
    target: float
    direction: str = "increase"
    standing: float | None = None  # the result metric's last known value when the cycle opened
    checks: CheckSummary = Field(default_factory=CheckSummary)
    limits: Limits | None = None
    signal: SignalKind | None = None
    metrics: dict[str, list[PeriodValue]] = Field(default_factory=dict)
    actions: list[ActionRun] = Field(default_factory=list)
    dry_run: bool = False
    updated_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON object (plus a few extra fields)."""
        data = self.model_dump(mode="json")
        if self.limits is not None:
            data["limits"] = {
                "centre": self.limits.centre,
                "lower": self.limits.lower,
                "upper": self.limits.upper,
                "baseline": self.limits.baseline,
            }
        data["score"] = self.extra.get("score")  # the RADAR self-score, also under extra
        # outcomes that serve this one (`parent:`): their latest decisions, also under extra
        data["children"] = self.extra.get("children") or []
        # the current approach's effect with its 90 % interval (cycles.effects), also under extra
        data["effect"] = self.extra.get("effect")
        return data
