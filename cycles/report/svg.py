"""The report's charts as one static SVG, drawn in plain Python for the Prefect artifact.

vl-convert draws the same charts for `radar report`, but it starts a JavaScript engine (about
1 s in a fresh process, 0.1-0.4 s per chart after that), which would more than double the cost
of a cycle's flow run; this takes a few milliseconds. Same data (`build_report`), same marks:
phases, limits per phase, centre line, target, values, decisions; then the RADAR score.
"""

from __future__ import annotations

import base64
import math
import re
from xml.sax.saxutils import escape, quoteattr

from cycles.artifacts import md_code, md_text
from cycles.numbers import fmt, target_sign
from cycles.report.data import (
    DECISION_COLOURS,
    LEGEND,
    MetricChart,
    Phase,
    Report,
    ScorePoint,
    label_below,
)
from cycles.secrets import redact

LEFT, RIGHT, TOP, BOTTOM = 56, 16, 32, 24  # margins of a panel's plot area
BLUE, RED, GREY, GREEN, PURPLE = "#4c78a8", "#d62728", "#7f7f7f", "#2ca02c", "#6a3d9a"


def artifact_markdown(report: Report) -> str:
    """Markdown with the charts inline as an SVG data URI (Prefect's UI renders it as an <img>);
    user text through `md_text`/`md_code`."""
    data = base64.b64encode(report_svg(report).encode("utf-8")).decode("ascii")
    cmp = target_sign(report.direction)
    drivers = len(report.charts) - 1
    outcome = md_text(report.outcome)
    return (
        f"# {outcome}: {md_text(report.title)}\n\n"
        f"XmR chart of {md_text(report.result_metric)} (target {cmp} {fmt(report.target)})"
        + (f" and {drivers} driver(s)" if drivers else "")
        + (", RADAR self-score" if report.scores else "")
        + f"; the latest of {report.count} cycles is {md_text(report.cycles[-1].period)}.\n\n"
        f"![{outcome} XmR chart](data:image/svg+xml;base64,{data})\n\n"
        f"Interactive version: {md_code(f'radar report {report.outcome}')}\n"
    )


def report_svg(report: Report, *, width: int = 760) -> str:
    """Every chart of `report` stacked in one SVG document (title, metrics, score)."""
    cmp = target_sign(report.direction)
    parts = [
        _text(8, 18, report.title, size=15, weight="bold"),
        _text(8, 34, f"{report.outcome} · target {report.result_metric} {cmp} "
              f"{fmt(report.target)} · {report.count} cycles", size=11, fill="#555"),
        _text(8, 48, LEGEND, size=10, fill="#777"),
    ]  # fmt: skip
    points = [p for chart in report.charts for p in chart.points]
    x0 = min(p.start for p in points)
    x1 = max(p.end for p in points)
    y = 60
    for chart in report.charts:
        height = 220 if chart.role == "result" else 150
        parts.append(_metric_panel(chart, report.phases, (x0, x1), y, width, height))
        y += height + 12
    if report.scores:
        parts.append(_score_panel(report.scores, (x0, x1), y, width, 130))
        y += 142
    body = "\n".join(parts)
    return (  # as wide as where it is shown (Prefect's UI, a phone), its proportions kept
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {width} {y}" font-family="sans-serif">\n'
        f'<rect width="{width}" height="{y}" fill="white"/>\n{body}\n</svg>\n'
    )


class _Frame:
    """Maps data to pixels inside one panel."""

    def __init__(self, xs: tuple[int, int], ys: tuple[float, float], box: tuple[float, ...]):
        self.x0, self.x1 = xs
        self.y0, self.y1 = ys
        self.left, self.top, self.right, self.bottom = box

    def x(self, ms: float) -> float:
        return self.left + (ms - self.x0) / max(self.x1 - self.x0, 1) * (self.right - self.left)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.bottom - (value - self.y0) / span * (self.bottom - self.top)


def _metric_panel(
    chart: MetricChart, phases: list[Phase], xs: tuple[int, int], top: int, width: int, height: int
) -> str:
    numbers = [
        v
        for p in chart.points
        for v in (p.value, p.lower, p.upper, p.centre, p.target)
        if v is not None
    ]
    lo, hi = _nice_domain(numbers)
    f = _Frame(xs, (lo, hi), (LEFT, top + TOP, width - RIGHT, top + height - BOTTOM))
    out = [_text(8, top + 12, chart.title, size=12, weight="bold")]
    for i, phase in enumerate(phases):
        colour = GREY if phase.approach == "baseline" else BLUE
        a, b = f.x(phase.start), f.x(phase.end)
        out.append(_rect(a, f.top, b - a, f.bottom - f.top, colour, 0.05 + 0.04 * (i % 2)))
        out.append(_text(a + 3, f.top - 4, phase.approach, size=10, fill="#555"))
    out += _axes(f, chart.metric, [p.period for p in chart.points], [p.start for p in chart.points])
    styles = (("upper", RED, "4 3"), ("lower", RED, "4 3"), ("centre", GREY, ""),
              ("target", GREEN, "8 4"))  # fmt: skip
    for field, colour, dash in styles:
        for p in chart.points:
            value = getattr(p, field)
            if value is not None:
                out.append(_line(f.x(p.start), f.y(value), f.x(p.end), f.y(value), colour, dash))
    mids = [((p.start + p.end) / 2, p) for p in chart.points]
    out.append(_polyline([(f.x(m), f.y(p.value)) for m, p in mids if p.value is not None], BLUE))
    for (m, p), below in zip(mids, label_below(chart.points), strict=True):
        colour = DECISION_COLOURS.get(p.decision or "", BLUE)
        tip = f"{p.period}: {fmt(p.value)}" + (f" · {p.decision}: " if p.decision else "")
        tip += "; ".join(p.reasons) if p.decision else (f" · {p.note}" if p.note else "")
        if p.value is None:
            if p.decision:  # no value to judge: a hollow marker on the axis, labelled above it
                x, base = f.x(m), f.bottom - 1
                out.append(
                    f'<path d="M{x - 4:.1f},{base:.1f} L{x + 4:.1f},{base:.1f} L{x:.1f},'
                    f'{base - 7:.1f} Z" fill="white" stroke={_attr(colour)} stroke-width="1.5">'
                    f"<title>{_esc(tip)}</title></path>"
                )
                out.append(_label(x, base - 10, p.decision, colour))
            continue
        out.append(
            f'<circle cx="{f.x(m):.1f}" cy="{f.y(p.value):.1f}" r="{4.5 if p.decision else 2.5}" '
            f"fill={_attr(colour)}><title>{_esc(tip)}</title></circle>"
        )
        if p.decision:
            out.append(_label(f.x(m), f.y(p.value) + (15 if below else -8), p.decision, colour))
    return "\n".join(out)


def _label(x: float, y: float, decision: str, colour: str) -> str:
    """A decision's label, with a white halo that keeps it legible where it crosses a line."""
    text = _text(x, y, decision, size=9, fill=colour, weight="bold", anchor="middle")
    halo = 'stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'
    return text.replace("<text ", f"<text {halo} ", 1)


def _score_panel(
    scores: list[ScorePoint], xs: tuple[int, int], top: int, width: int, height: int
) -> str:
    f = _Frame(xs, (0.0, 100.0), (LEFT, top + TOP, width - RIGHT, top + height - BOTTOM))
    out = [_text(8, top + 12, "RADAR self-score (0-100)", size=12, weight="bold")]
    out += _axes(
        f, "score", [s.period for s in scores], [s.start for s in scores], ticks=[0, 50, 100]
    )
    mids = [((s.start + s.end) / 2, s) for s in scores]
    out.append(_polyline([(f.x(m), f.y(s.total)) for m, s in mids], PURPLE))
    for i, (m, s) in enumerate(mids):
        parts = ", ".join(f"{k} {v:.0f}" for k, v in s.parts.items())
        tip = f"{s.period}: {s.total:.0f} {s.band}" + (f" ({parts})" if parts else "")
        out.append(
            f'<circle cx="{f.x(m):.1f}" cy="{f.y(s.total):.1f}" r="3" fill={_attr(PURPLE)}>'
            f"<title>{_esc(tip)}</title></circle>"
        )
        if s.band and (i == 0 or s.band != scores[i - 1].band):
            out.append(
                _text(f.x(m), f.y(s.total) - 7, s.band, size=9, fill=PURPLE, anchor="middle")
            )
    return "\n".join(out)


def _axes(
    f: _Frame, title: str, periods: list[str], starts: list[int], ticks: list[float] | None = None
) -> list[str]:
    out = [_line(f.left, f.bottom, f.right, f.bottom, "#888", "")]
    for tick in ticks if ticks is not None else _ticks(f.y0, f.y1):
        y = f.y(tick)
        out.append(_line(f.left, y, f.right, y, "#e5e5e5", ""))
        out.append(_text(f.left - 4, y + 3, f"{tick:.4g}", size=9, fill="#555", anchor="end"))
    every = max(1, math.ceil(len(periods) / 10))
    for period, start in list(zip(periods, starts, strict=True))[::every]:
        out.append(_text(f.x(start) + 2, f.bottom + 12, period, size=9, fill="#555"))
    out.append(
        f'<text transform="translate(12,{(f.top + f.bottom) / 2:.1f}) rotate(-90)" font-size="10" '
        f'fill="#333" text-anchor="middle">{_esc(title)}</text>'
    )
    return out


# characters XML 1.0 forbids even as references: one of them makes the whole SVG unreadable
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(text: str) -> str:
    """A text node: redacted, then escaped (a secret is found before `&` or `<` in it change);
    characters XML cannot hold become U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", redact(text)))


def _attr(value: str) -> str:
    """An attribute value, quoted and escaped (`fill=` + `_attr(colour)`)."""
    return quoteattr(_NOT_XML.sub("\ufffd", redact(value)))


def _nice_domain(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _text(
    x: float, y: float, text: str, *, size: int = 10, fill: str = "#222",
    weight: str = "normal", anchor: str = "start",
) -> str:  # fmt: skip
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill={_attr(fill)} '
        f"font-weight={_attr(weight)} text-anchor={_attr(anchor)}>{_esc(text)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, opacity: float) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill={_attr(fill)} '
        f'fill-opacity="{opacity:.2f}"/>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, dash: str) -> str:
    dashed = f" stroke-dasharray={_attr(dash)}" if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke={_attr(stroke)} '
        f'stroke-width="1.5"{dashed}/>'
    )


def _polyline(points: list[tuple[float, float]], stroke: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline points="{coords}" fill="none" stroke={_attr(stroke)} stroke-width="1.5"/>'
