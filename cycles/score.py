"""The RADAR self-score: each reviewed cycle scores the EFQM RADAR attributes from its own evidence.

Every attribute gets 0, 25, 50, 75 or 100 by the rules below (the README has them as a table);
an element (Results, Approach, Deployment, Assessment & Refinement) is the mean of its
attributes; the total weighs Results as much as the three enabler elements together (as the
EFQM model does). Each is rounded to a multiple of 5, and the total falls in an EFQM band.
Pure: the outcome, the reviewed record and the cycles before it in, a plain dict out (stored as
`record.extra.score`, a `cycles.record.Score`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from cycles.declaration.model import Outcome
from cycles.drivers import DriverState, is_gap, percent
from cycles.numbers import better, fmt, is_increase, met
from cycles.record import CycleRecord
from cycles.stages import deployment_gaps
from cycles.stats import point_signal
from cycles.values import DecisionKind, SignalKind

ELEMENTS: dict[str, tuple[str, ...]] = {
    "results": ("trend", "target", "comparisons", "segmentation"),
    "approach": ("sound", "integrated"),
    "deployment": ("implemented", "systematic"),
    "assessment": ("measurement", "learning", "improvement"),
}
ENABLERS = ("approach", "deployment", "assessment")
BANDS = (  # (lowest total of the band, its name): the EFQM RADAR matrix columns
    (90, "comprehensive evidence"),
    (65, "clear evidence"),
    (40, "evidence"),
    (15, "limited evidence"),
    (0, "no evidence"),
)
SYSTEMATIC_CYCLES = 4  # cycles of the approach in a row, carried out as planned, for 100
TENDENCY = 3  # periods in a row better than the centre line (without a signal) for a trend of 50

Points = tuple[int, str]


def score(outcome: Outcome, record: CycleRecord, history: Sequence[CycleRecord]) -> dict[str, Any]:
    """The RADAR self-score of a reviewed cycle."""
    facts = _Facts(outcome, record, history)
    attributes: dict[str, int] = {}
    evidence: dict[str, str] = {}
    for names in ELEMENTS.values():
        for name in names:
            points, text = RULES[name](facts)
            attributes[name], evidence[name] = points, text
    out: dict[str, Any] = {
        element: round5(sum(attributes[n] for n in names) / len(names))
        for element, names in ELEMENTS.items()
    }
    # as in the EFQM model, results weigh as much as the enablers together
    enablers = sum(out[e] for e in ENABLERS) / len(ENABLERS)
    out["total"] = round5((out["results"] + enablers) / 2)
    out["band"] = band(out["total"])
    out["attributes"] = attributes
    out["evidence"] = evidence
    return out


def round5(x: float) -> int:
    """To the nearest multiple of 5, halves up."""
    return int(math.floor(x / 5 + 0.5) * 5)


def band(total: int) -> str:
    return next(name for lowest, name in BANDS if total >= lowest)


class _Facts:
    """What the rules look at, worked out once."""

    def __init__(
        self, outcome: Outcome, record: CycleRecord, history: Sequence[CycleRecord]
    ) -> None:
        self.outcome, self.record, self.history = outcome, record, history
        self.value = record.result_value
        self.direction = record.direction
        self.drivers: list[DriverState] = record.extra.drivers
        self.measured = [d for d in self.drivers if d.value is not None]
        self.signal = record.signal or point_signal(self.value, record.limits, self.direction)
        self.bad_data = record.checks.failed > 0 or self.value is None
        self.gaps = deployment_gaps(record.actions, self.drivers, outcome.policy.deployment_gap)
        values = record.metrics.get(record.result_metric or outcome.result.metric, [])
        self.before = [v.value for v in values if v.period < record.period]

    def met(self, value: float | None) -> bool:
        return met(value, self.record.target, self.direction)

    def better(self, a: float, b: float) -> bool:
        return better(a, b, self.direction)


# -- Results ----------------------------------------------------------------------------------


def trend(f: _Facts) -> Points:
    if f.value is None:
        return 0, "no value for the period"
    if f.signal is SignalKind.deterioration:
        return 0, "deterioration signal"
    limits = f.record.limits
    if f.signal is SignalKind.improvement:
        previous = f.history[-1].signal if f.history else None
        if previous is SignalKind.improvement:
            return 100, "improvement signal this period and the one before"
        return 75, "improvement signal this period"
    if limits is None:
        return 25, "a value, but too little baseline to see a trend"
    recent = [*f.before[-(TENDENCY - 1) :], f.value]
    better = [v is not None and f.better(v, limits.centre) for v in recent]
    if len(recent) == TENDENCY and all(better):
        return 50, f"no signal, but better than the centre line {TENDENCY} periods in a row"
    return 25, f"flat: {fmt(f.value)} within the natural process limits"


def target(f: _Facts) -> Points:
    if f.value is None:
        return 0, "no value for the period"
    sustain = f.outcome.policy.sustain
    window = f.before[-(sustain - 1) :] if sustain > 1 else []
    if f.met(f.value) and len(window) == sustain - 1 and all(f.met(v) for v in window):
        return 100, f"target met {sustain} periods in a row"
    if f.met(f.value):
        return 75, "target met this period"
    limits = f.record.limits
    if limits is None or not f.better(f.record.target, limits.centre):
        return 0, "target not met; no baseline below it to measure progress from"
    progress = (f.value - limits.centre) / (f.record.target - limits.centre)
    share = f"{progress * 100:.0f} % of the way from the baseline centre to the target"
    if progress >= 0.5:
        return 50, share
    if progress >= 0.25:
        return 25, share
    return 0, f"not met; {share}"


def comparisons(f: _Facts) -> Points:
    found = [
        name
        for name, present in (
            ("the target", f.value is not None),
            ("the XmR baseline", f.record.limits is not None),
            ("earlier cycles", any(c.decision is not None for c in f.history)),
            ("driver targets", bool(f.measured)),
        )
        if present
    ]
    return 25 * len(found), "compared with " + (", ".join(found) or "nothing")


def segmentation(f: _Facts) -> Points:
    if not f.drivers:
        return 0, "no drivers declared: the result is not broken down"
    share = len(f.measured) / len(f.drivers)
    return round(share * 4) * 25, f"{len(f.measured)} of {len(f.drivers)} drivers measured"


# -- Approach ---------------------------------------------------------------------------------


def sound(f: _Facts) -> Points:
    approach = f.record.approach
    spec = f.outcome.approach(approach.name) if approach else None
    if spec is None:
        return 0, "no declared approach"
    present = [
        name
        for name, there in (
            ("rationale", spec.rationale),
            ("params", spec.params),
            ("adjust", spec.adjust),
            ("actions", spec.actions),
        )
        if there
    ]
    return 25 * len(present), f"{spec.name} declares " + (", ".join(present) or "nothing")


def integrated(f: _Facts) -> Points:
    if not f.drivers:
        return 0, "no drivers link the approach to the result"
    deployment = [d.metric for d in f.drivers if d.deployment]
    if deployment:
        return 100, f"drivers linked, deployment measured by {', '.join(deployment)}"
    return 50, "drivers linked, none measures deployment"


# -- Deployment -------------------------------------------------------------------------------


def implemented(f: _Facts) -> Points:
    scored: list[Points] = []
    ran = [a for a in f.record.actions if a.status in ("succeeded", "resent", "failed", "pending")]
    if ran:
        bad = [a for a in ran if a.status not in ("succeeded", "resent")]
        if bad:
            points = 25 if len(bad) < len(ran) else 0
            scored.append((points, f"{len(bad)} of {len(ran)} actions did not succeed"))
        elif all(a.reach for a in ran):
            scored.append((100, f"{len(ran)} actions succeeded, with reach"))
        else:
            scored.append((75, f"{len(ran)} actions succeeded, reach not reported"))
    threshold = f.outcome.policy.deployment_gap
    for d in (d for d in f.measured if d.deployment):
        share = f"{d.metric} at {percent(d.share_of_target)} of target"
        if d.met:
            scored.append((100, f"{share} (met)"))
        elif is_gap(d, threshold):
            scored.append((25, f"{share} (deployment gap)"))
        elif _attainment(d) >= 0.75:
            scored.append((75, share))
        else:
            scored.append((50, share))
    if not scored:
        return 0, "no evidence: no action ran and no deployment driver was measured"
    return min(scored)


def _attainment(d: DriverState) -> float:
    """How much of its target a driver reached, 1 = met, whichever its direction."""
    if d.value is None or d.target <= 0:
        return 0.0
    if is_increase(d.direction):
        return d.value / d.target
    return d.target / d.value if d.value > 0 else 1.0


def systematic(f: _Facts) -> Points:
    if implemented(f)[0] < 50:
        return 0, "not carried out as planned this period"
    name = f.record.approach.name if f.record.approach else None
    run = 1
    for cycle in reversed(f.history):
        if run >= SYSTEMATIC_CYCLES or cycle.approach is None or cycle.approach.name != name:
            break
        attributes = cycle.extra.score.attributes if cycle.extra.score else {}
        if attributes.get("implemented", 0) < 50:
            break
        run += 1
    return 25 * run, f"carried out as planned {run} cycle(s) in a row"


# -- Assessment & Refinement ------------------------------------------------------------------


def measurement(f: _Facts) -> Points:
    if f.value is None:
        return 0, "no value for the period"
    checks = f.record.checks
    if checks.failed:
        return 0, f"{checks.failed} data checks failed"
    points, text = (100, f"{checks.passed} data checks passed") if checks.passed else (
        50, "no data checks declared"
    )  # fmt: skip
    if f.record.limits is None:
        return points - 25, text + "; too little baseline for XmR limits"
    return points, text + "; XmR limits from the baseline"


def learning(f: _Facts) -> Points:
    if f.record.decision is None:
        return 0, "not reviewed"
    if f.bad_data:
        return 25, "decided without usable data"
    if f.record.limits is None:
        return 50, "decided without a baseline: no signal could be claimed"
    if f.measured:
        return 100, "decided on the XmR signal and the drivers"
    return 75, "decided on the XmR signal"


def improvement(f: _Facts) -> Points:
    record = f.record
    changed = record.next_approach is not None and record.next_approach != record.approach
    on_track = record.decision in (DecisionKind.keep, DecisionKind.achieved) or (
        f.met(f.value) or f.signal is SignalKind.improvement
    )
    if f.bad_data:
        return (25, "approach changed on bad data") if changed else (
            50, "approach unchanged on bad or missing data: nothing to learn from"
        )  # fmt: skip
    if on_track:
        return (25, "approach changed although on track") if changed else (
            100, "on track: the approach stays"
        )  # fmt: skip
    if f.gaps:
        return (25, "approach changed before it was carried out") if changed else (
            75, "approach kept until it is carried out as planned"
        )  # fmt: skip
    if changed:
        return 100, "off track: the approach changed"
    return 25, "off track, but the approach did not change"


RULES: dict[str, Callable[[_Facts], Points]] = {
    "trend": trend,
    "target": target,
    "comparisons": comparisons,
    "segmentation": segmentation,
    "sound": sound,
    "integrated": integrated,
    "implemented": implemented,
    "systematic": systematic,
    "measurement": measurement,
    "learning": learning,
    "improvement": improvement,
}

__all__ = ["BANDS", "ELEMENTS", "band", "round5", "score"]
