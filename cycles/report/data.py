"""The chart data of an outcome's cycles (pure): per metric, its values by period with the
limits, target and decision its cycle recorded; the approach phases; the RADAR score."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import Field

from cycles.console import approach_text, fmt
from cycles.periods import Period
from cycles.record import CycleRecord
from cycles.values import DriverState, Limits, Value

RECENT = 12  # cycles in the report's table
DECISION_COLOURS = {
    "keep": "#2ca02c",
    "achieved": "#00695c",
    "adjust": "#ff7f0e",
    "switch": "#9467bd",
    "hold": "#d62728",
}
LEGEND = "red dashed: natural process limits, grey: centre line, green dashed: target"
PhaseOf = Callable[[str], str | None]  # a period → the approach in force (None: no cycle)
SCORE_PARTS = ("results", "approach", "deployment", "assessment")


class Point(Value):
    """One period of one metric: its value and what the cycle of that period recorded."""

    period: str
    start: int  # the period's [start, end) in ms since the epoch (UTC), as Vega reads dates
    end: int
    value: float | None = None
    phase: str | None = None  # the approach in force; "baseline" before the first cycle
    centre: float | None = None
    lower: float | None = None
    upper: float | None = None
    target: float | None = None
    decision: str | None = None
    reasons: list[str] = Field(default_factory=list)
    note: str = ""


class Phase(Value):
    """Consecutive periods under one approach (or the baseline before the first cycle)."""

    approach: str
    first: str
    last: str
    start: int
    end: int
    # the approach's effect as its last reviewed cycle in the phase estimated it (cycles.effects)
    effect: str = ""
    effect_data: dict[str, Any] | None = None


class MetricChart(Value):
    metric: str
    role: str  # result | driver
    title: str
    direction: str = "increase"
    points: list[Point]


class ScorePoint(Value):
    period: str
    start: int
    end: int
    total: float
    band: str = ""
    parts: dict[str, float] = Field(default_factory=dict)


class CycleRow(Value):
    period: str
    approach: str
    value: str
    target: str
    decision: str
    score: str


class Report(Value):
    outcome: str
    title: str
    cadence: str
    result_metric: str
    direction: str
    target: float
    count: int  # cycles recorded
    phases: list[Phase]
    charts: list[MetricChart]
    scores: list[ScorePoint]
    cycles: list[CycleRow]


# -- chart data (pure) ----------------------------------------------------------------------------


def build_report(records: Sequence[CycleRecord]) -> Report:
    """The charts of an outcome's cycles (oldest first, as `Store.cycles` returns them)."""
    if not records:
        raise ValueError("no cycles to chart")
    cadence = records[-1].cadence
    records = sorted(records, key=lambda r: Period.parse(r.period, cadence))
    last = records[-1]
    by_period = {r.period: r for r in records}
    first = Period.parse(records[0].period, cadence)

    def phase_of(label: str) -> str | None:
        if label in by_period:
            approach = by_period[label].approach
            return approach.name if approach else "-"
        return "baseline" if Period.parse(label, cadence) < first else None

    result = _merged(records, last.result_metric, {r.period: r.result_value for r in records})
    labels = _sorted_labels([*result, *by_period], cadence)
    charts = [_result_chart(records, by_period, result, labels, phase_of)]
    for metric, entries in _drivers(records).items():
        own = {period: _num(entry.value) for period, entry in entries.items()}
        values = _merged(records, metric, own)
        charts.append(
            _driver_chart(metric, entries, values, by_period, cadence, phase_of, last.result_metric)
        )
    return Report(
        outcome=last.outcome,
        title=next((r.title for r in reversed(records) if r.title), last.outcome),
        cadence=cadence,
        result_metric=last.result_metric,
        direction=last.direction,
        target=last.target,
        count=len(records),
        phases=_with_effects(_phases(labels, cadence, phase_of), records),
        charts=charts,
        scores=[s for r in records if (s := _score(r)) is not None],
        cycles=[_row(r) for r in records[-RECENT:]],
    )


def _result_chart(
    records: Sequence[CycleRecord],
    by_period: dict[str, CycleRecord],
    values: dict[str, float | None],
    labels: list[str],
    phase_of: PhaseOf,
) -> MetricChart:
    last, cadence = records[-1], records[-1].cadence
    line = _line(last)
    points = []
    for label in labels:
        record = by_period.get(label)
        limits = record.limits if record else line.get(label)
        points.append(
            Point(
                period=label,
                **_bounds(label, cadence),
                value=values.get(label),
                phase=phase_of(label),
                centre=limits.centre if limits else None,
                lower=limits.lower if limits else None,
                upper=limits.upper if limits else None,
                target=record.target if record else records[0].target,
                decision=record.decision.value if record and record.decision else None,
                reasons=list(record.reasons) if record else [],
            )
        )
    return MetricChart(
        metric=last.result_metric,
        role="result",
        title=f"{last.result_metric} (result)",
        direction=last.direction,
        points=points,
    )


def _line(record: CycleRecord) -> dict[str, Limits]:
    """A seasonal or trended centre line's limits at every period of `record`'s window, for the
    periods without their own cycle (`baseline_model`, policy.seasonality / policy.trend)."""
    model = record.extra.baseline_model
    if model is None or record.limits is None:
        return {}
    half = record.limits.upper - record.limits.centre
    return {
        str(p): Limits(centre=c, lower=c - half, upper=c + half)
        for p, value in model.centre.items()
        if (c := _num(value)) is not None
    }


def _driver_chart(
    metric: str,
    entries: dict[str, DriverState],
    values: dict[str, float | None],
    by_period: dict[str, CycleRecord],
    cadence: str,
    phase_of: PhaseOf,
    result: str,
) -> MetricChart:
    latest = entries[max(entries, key=lambda p: Period.parse(p, cadence))]
    first_target = _num(next(iter(entries.values())).target)
    points = []
    for label in _sorted_labels([*values, *entries], cadence):
        entry = entries.get(label)
        limits = entry.limits if entry else None
        target = _num(entry.target) if entry else None
        if target is None and label not in by_period:
            target = first_target
        share = _num(entry.share_of_target) if entry else None
        words = [
            f"{share:.0%} of target" if share else "",
            "met" if entry and entry.met else "",
            (entry.moved or "") if entry else "",  # improved, flat, worsened
        ]
        note = ", ".join(w for w in words if w)
        points.append(
            Point(
                period=label,
                **_bounds(label, cadence),
                value=values.get(label),
                phase=phase_of(label),
                centre=_num(limits.centre) if limits else None,
                lower=_num(limits.lower) if limits else None,
                upper=_num(limits.upper) if limits else None,
                target=target,
                note=note,
            )
        )
    parent, depth = latest.parent or result, latest.depth
    level = f", level {depth}" if depth > 1 else ""
    title = f"{metric} (driver of {parent}{level})"
    return MetricChart(
        metric=metric,
        role="driver",
        title=title,
        direction=latest.direction or "increase",
        points=points,
    )


def _drivers(records: Sequence[CycleRecord]) -> dict[str, dict[str, DriverState]]:
    """metric → period → that cycle's driver entry; in the newest cycle's (tree) order."""
    found: dict[str, dict[str, DriverState]] = {}
    for record in reversed(records):
        for entry in record.extra.drivers:
            found.setdefault(entry.metric, {})[record.period] = entry
    return found


def _merged(
    records: Iterable[CycleRecord], metric: str, own: dict[str, float | None]
) -> dict[str, float | None]:
    """A metric's value per period: from the newest window holding it, then each cycle's own."""
    values: dict[str, float | None] = {}
    for record in records:
        for pv in record.metrics.get(metric, []):
            values[pv.period] = pv.value
    for period, value in own.items():
        if value is not None or period not in values:
            values[period] = value
    return values


def _phases(labels: list[str], cadence: str, phase_of: PhaseOf) -> list[Phase]:
    phases: list[Phase] = []
    for label in labels:
        name = phase_of(label)
        if name is None:
            continue
        bounds = _bounds(label, cadence)
        previous = phases[-1] if phases else None
        if previous and previous.approach == name and previous.end == bounds["start"]:
            phases[-1] = previous.model_copy(update={"last": label, "end": bounds["end"]})
        else:
            phases.append(Phase(approach=name, first=label, last=label, **bounds))
    return phases


def _with_effects(phases: list[Phase], records: Sequence[CycleRecord]) -> list[Phase]:
    """Each approach phase with the effect its last reviewed cycle recorded."""
    out = []
    for phase in phases:
        inside = [
            r for r in records
            if phase.first <= r.period <= phase.last and r.approach is not None
            and r.approach.name == phase.approach
        ]  # fmt: skip
        effect = next((r.extra.effect for r in reversed(inside) if r.extra.effect), None)
        if effect is not None:
            phase = phase.model_copy(
                update={"effect": effect.text(), "effect_data": effect.model_dump(mode="json")}
            )
        out.append(phase)
    return out


def _score(record: CycleRecord) -> ScorePoint | None:
    score = record.extra.score
    total = _num(score.total) if score else None
    if total is None or score is None:
        return None
    parts = {k: v for k in SCORE_PARTS if (v := _num(getattr(score, k))) is not None}
    band = score.band
    return ScorePoint(
        period=record.period, **_bounds(record.period, record.cadence), total=total, band=band,
        parts=parts,
    )  # fmt: skip


def _row(record: CycleRecord) -> CycleRow:
    score = _score(record)
    return CycleRow(
        period=record.period,
        approach=approach_text(record.approach),
        value=fmt(record.result_value),
        target=fmt(record.target),
        decision=record.decision.value if record.decision else record.status,
        score=f"{score.total:.0f}" + (f" ({score.band})" if score.band else "") if score else "-",
    )


def _bounds(label: str, cadence: str) -> dict[str, int]:
    period = Period.parse(label, cadence)
    return {"start": _ms(period.start), "end": _ms(period.end)}


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _sorted_labels(labels: Iterable[str], cadence: str) -> list[str]:
    return sorted(set(labels), key=lambda label: Period.parse(label, cadence))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN is no value


# Where a decision label's 9 px text sits, in px from its point on a result chart's plot of about
# PLOT_PX: its baseline 10 px over the point (glyphs 8-17 px over it) or 14 px under it (7-16 px
# under it); a pixel more on each side.
PLOT_PX = 180
LABEL_ABOVE, LABEL_BELOW = (7, 18), (6, 17)


def label_below(points: Sequence[Point]) -> list[bool]:
    """Per point: put its decision label below it instead of above when that side crosses fewer
    of the lines drawn at its period (limits, centre line, target), and so that labels of close
    neighbours do not overlap (they alternate); above when both sides are as good."""
    numbers = [v for p in points for v in (p.value, p.lower, p.upper, p.centre, p.target)
               if v is not None]  # fmt: skip
    values = [p.value for p in points if p.value is not None]
    span = (max(values) - min(values)) if values else 0.0
    px = ((max(numbers) - min(numbers)) if numbers else 0.0) / PLOT_PX
    below, previous = [], None  # previous: (value, below) of the last labelled point
    for p in points:
        side = False
        if p.decision and p.value is not None:
            lines = [v for v in (p.lower, p.upper, p.centre, p.target) if v is not None]
            close = previous is not None and abs(p.value - previous[0]) < 0.06 * span
            cost = {
                under: _crossed(p.value, lines, under, px)
                + (2 if close and previous is not None and previous[1] == under else 0)
                for under in (False, True)
            }
            side = cost[True] < cost[False]
            previous = (p.value, side)
        elif p.decision is None or p.value is None:
            previous = None
        below.append(side)
    return below


def _crossed(value: float, lines: list[float], under: bool, px: float) -> int:
    """How many of `lines` a decision label crosses on that side of its point (px: one pixel in
    the metric's units)."""
    near, far = (-LABEL_BELOW[1], -LABEL_BELOW[0]) if under else LABEL_ABOVE
    lo, hi = value + near * px, value + far * px
    return sum(lo <= line <= hi for line in lines)
