"""What a cycle publishes for operators: a markdown review and a table of recent periods."""

from __future__ import annotations

import re
from typing import Any

from cycles.console import approach_text, fmt
from cycles.record import CycleRecord

RECENT = 12  # periods in the table artifact


def artifact_key(outcome: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]", "-", f"{outcome}-{kind}".lower())


def review_markdown(record: CycleRecord) -> str:
    cmp = "≥" if record.direction == "increase" else "≤"
    lines = [
        f"# {record.outcome} · {record.period}",
        f"_{record.title}_",
        "",
        "| | |",
        "|---|---|",
        f"| target | {record.result_metric} {cmp} {fmt(record.target)} |",
        f"| value | {fmt(record.result_value)} (stood at {fmt(record.standing)}) |",
        f"| approach | {approach_text(record.approach)} |",
        f"| checks | {record.checks.passed} passed, {record.checks.failed} failed |",
    ]
    if record.limits is not None:
        lim = record.limits
        lines.append(
            f"| XmR limits | {fmt(lim.lower)} · {fmt(lim.centre)} · {fmt(lim.upper)} "
            f"({len(lim.baseline)} baseline periods) |"
        )
    if record.actions:
        done = ", ".join(f"{a.name}: {a.status}" for a in record.actions)
        lines.append(f"| actions | {done} |")
    decision = record.decision.value if record.decision else "not reviewed yet"
    lines += [
        f"| decision | **{decision}** |",
        f"| next approach | {approach_text(record.next_approach)} |",
        "",
    ]
    if record.reasons:
        lines += ["## Reasons", "", *(f"- {r}" for r in record.reasons), ""]
    failed = [c for c in record.checks.results if not c.success]
    if failed:
        lines += [
            "## Failed checks",
            "",
            *(f"- `{c.expectation}` on {c.metric}: {c.message}" for c in failed),
            "",
        ]
    return "\n".join(lines)


def recent_table(record: CycleRecord) -> list[dict[str, Any]]:
    """The result metric's recent periods with the XmR centre line, limits and target."""
    values = record.metrics.get(record.result_metric, [])[-RECENT:]
    lim = record.limits
    return [
        {
            "period": v.period,
            "value": v.value,
            "centre": lim.centre if lim else None,
            "lower": lim.lower if lim else None,
            "upper": lim.upper if lim else None,
            "target": record.target,
            "rows": v.rows,
        }
        for v in values
    ]
