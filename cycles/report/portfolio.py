"""The portfolio: one offline page with every declared outcome, laid out as their hierarchy.

`radar report --all` (and `radar demo`) write `reports/index.html`: per outcome its title, target
and standing, its last decision and reasons in short, a sparkline of its result with the limits
and target (inline SVG drawn here, no JavaScript), its RADAR score and effect estimate, a link to
its own report, and what needs people: overdue reviews, deployment gaps, periods without a cycle.
Parents hold their children (`parent:` in a declaration).

`tile`, `flags`, `sparkline_svg` and `portfolio_html` are pure; `write_all` reads the declarations
and the history and writes the files.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import Field

from cycles.declaration.model import Outcome
from cycles.effects import Effect
from cycles.hierarchy import tree_order
from cycles.numbers import fmt, met, target_sign
from cycles.periods import Period
from cycles.record import CycleRecord
from cycles.report.data import DECISION_COLOURS, Point, build_report
from cycles.secrets import redact
from cycles.values import Value

if TYPE_CHECKING:
    from cycles.store import Store

PAGE = "index.html"
REASONS = 6  # reasons listed per outcome
SEVERITY = ("overdue", "gap", "stale", "waiting")  # the first kind present marks the tile
VOID = "void"


class Flag(Value):
    kind: str  # overdue | gap | stale | waiting
    text: str


class Tile(Value):
    """One outcome as the portfolio shows it."""

    outcome: str
    title: str
    depth: int = 0
    parent: str | None = None
    cadence: str = ""
    result_metric: str = ""
    direction: str = "increase"
    target: float | None = None
    cycles: int = 0
    value: float | None = None  # the latest value of the result
    value_period: str | None = None
    decision: str | None = None  # the latest review's
    decided: str | None = None  # its period
    summary: str = ""
    reasons: list[str] = Field(default_factory=list)
    score: float | None = None
    band: str = ""
    effect: str = ""
    flags: list[Flag] = Field(default_factory=list)
    sparkline: str = ""
    report: str | None = None  # the outcome's own report, relative to the page
    source: str = ""
    error: str | None = None  # the declaration did not load

    @property
    def severity(self) -> str:
        kinds = {f.kind for f in self.flags}
        return next((k for k in SEVERITY if k in kinds), "")


# -- per outcome (pure) ---------------------------------------------------------------------------


def tile(
    outcome: Outcome,
    records: Sequence[CycleRecord],
    *,
    now: datetime,
    depth: int = 0,
    report: str | None = None,
) -> Tile:
    """What the page shows of `outcome` from its cycles (oldest first, as the store returns)."""
    live = [r for r in records if r.status != VOID]
    reviewed = [r for r in live if r.decision is not None]
    last = reviewed[-1] if reviewed else None
    valued = [r for r in live if r.result_value is not None]
    score = last.extra.score if last else None
    total = score.total if score else None
    points = build_report(records).charts[0].points if records else []
    return Tile(
        outcome=outcome.outcome,
        title=outcome.as_written(("title",), outcome.title),
        depth=depth,
        parent=outcome.parent,
        cadence=outcome.cadence.value,
        result_metric=outcome.result.metric,
        direction=outcome.result.direction.value,
        target=outcome.result.target,
        cycles=len(records),
        value=valued[-1].result_value if valued else None,
        value_period=valued[-1].period if valued else None,
        decision=last.decision.value if last and last.decision else None,
        decided=last.period if last else None,
        summary=(last.extra.summary or "") if last else "",
        reasons=list(last.reasons) if last else [],
        score=float(total) if isinstance(total, int | float) and _number(total) else None,
        band=score.band if score else "",
        effect=effect_text(last.extra.effect) if last else "",
        flags=flags(outcome, records, now),
        sparkline=sparkline_svg(points, outcome.result.metric) if points else "",
        report=report,
        source=str(outcome.source or ""),
    )


def flags(outcome: Outcome, records: Sequence[CycleRecord], now: datetime) -> list[Flag]:
    """What needs people: reviews overdue (`review pending`, or a period that ended and was not
    reviewed), a sign-off awaited, the latest review a deployment gap, ended periods without a
    cycle after the latest one."""
    tz = outcome.timezone
    live = [r for r in records if r.status != VOID]
    out = []
    for record in live:
        if record.decision is not None:
            continue
        period = _period(record.period, outcome.cadence)
        if record.status == "awaiting sign-off":
            out.append(Flag(kind="waiting", text=f"{record.period}: awaiting sign-off"))
        elif record.status == "review pending":
            why = record.extra.pending or "review pending"
            out.append(Flag(kind="overdue", text=f"{record.period}: {why}"))
        elif period is not None and period.ends_at(tz) <= now:
            ended = f"{period.end:%Y-%m-%d}"
            out.append(Flag(kind="overdue", text=f"{record.period} ended {ended}, not reviewed"))
    reviewed = [r for r in live if r.decision is not None]
    if reviewed:
        last = reviewed[-1]
        summary = last.extra.summary or ""
        hold = last.decision is not None and last.decision.value == "hold"
        if hold and summary.startswith("deployment gap"):
            out.append(Flag(kind="gap", text=f"{last.period}: {summary}"))
    latest = max((p for r in live if (p := _period(r.period, outcome.cadence))), default=None)
    if latest is not None:
        missing: list[Period] = []
        period = latest + 1
        while period.ends_at(tz) <= now and len(missing) < 1000:
            missing.append(period)
            period += 1
        if missing:
            span = str(missing[0]) if len(missing) == 1 else f"{missing[0]} … {missing[-1]}"
            many = f" ({len(missing)} periods)" if len(missing) > 1 else ""
            out.append(Flag(kind="stale", text=f"{span}{many} ended without a cycle"))
    return out


def _period(label: str, cadence: str) -> Period | None:
    try:
        return Period.parse(label, cadence)
    except ValueError:
        return None


def effect_text(found: Effect | None) -> str:
    """A record's `extra.effect` (cycles.effects) in words, as the review and the report say it;
    "" when absent (or unreadable in an older record)."""
    if found is None:
        return ""
    return (
        f"effect of {found.approach}: {found.text()}"
        if found.approach
        else (f"effect: {found.text()}")
    )


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x == x


# -- the sparkline (pure) -------------------------------------------------------------------------

SPARK_W, SPARK_H, PAD = 300, 64, 4
BLUE, RED, GREY, GREEN = "#4c78a8", "#d62728", "#9e9e9e", "#2ca02c"


def sparkline_svg(points: Sequence[Point], metric: str) -> str:
    """The result's values with the limits, centre line and target each cycle recorded, and the
    decisions as coloured dots; a review without a value is a hollow marker on the axis. Scales
    to its container (viewBox, width 100 %)."""
    numbers = [v for p in points for v in (p.value, p.lower, p.upper, p.centre, p.target)
               if v is not None]  # fmt: skip
    lo, hi = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    x0, x1 = min(p.start for p in points), max(p.end for p in points)

    def x(ms: float) -> float:
        return PAD + (ms - x0) / max(x1 - x0, 1) * (SPARK_W - 2 * PAD)

    def y(value: float) -> float:
        return SPARK_H - PAD - (value - lo) / ((hi - lo) or 1.0) * (SPARK_H - 2 * PAD)

    out = []
    styles = (("upper", RED, "3 2"), ("lower", RED, "3 2"), ("centre", GREY, ""),
              ("target", GREEN, "6 3"))  # fmt: skip
    for field, colour, dash in styles:
        for p in points:
            value = getattr(p, field)
            if value is not None:
                dashed = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(
                    f'<line x1="{x(p.start):.1f}" y1="{y(value):.1f}" x2="{x(p.end):.1f}" '
                    f'y2="{y(value):.1f}" stroke="{colour}" stroke-width="1"{dashed}/>'
                )
    line = " ".join(
        f"{x((p.start + p.end) / 2):.1f},{y(p.value):.1f}" for p in points if p.value is not None
    )
    out.append(f'<polyline points="{line}" fill="none" stroke="{BLUE}" stroke-width="1.5"/>')
    for p in points:
        if not p.decision:
            continue
        colour = DECISION_COLOURS.get(p.decision, BLUE)
        mid = x((p.start + p.end) / 2)
        tip = _esc(f"{p.period}: {p.decision}, {fmt(p.value)}")
        if p.value is None:  # no value to judge: a hollow marker on the axis
            base = SPARK_H - 1.5
            out.append(
                f'<path d="M{mid - 3.5:.1f},{base:.1f} L{mid + 3.5:.1f},{base:.1f} '
                f'L{mid:.1f},{base - 6:.1f} Z" fill="white" stroke="{colour}" '
                f'stroke-width="1.2"><title>{tip}</title></path>'
            )
        else:
            out.append(
                f'<circle cx="{mid:.1f}" cy="{y(p.value):.1f}" r="2.4" fill="{colour}">'
                f"<title>{tip}</title></circle>"
            )
    valued = [p for p in points if p.value is not None]
    label = _esc(
        f"{metric} by period"
        + (f", latest {fmt(valued[-1].value)} in {valued[-1].period}" if valued else "")
    )
    return (
        f'<svg class="spark" viewBox="0 0 {SPARK_W} {SPARK_H}" width="100%" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>" + "".join(out) + "</svg>"
    )


# -- the page (pure) ------------------------------------------------------------------------------


def _esc(text: object) -> str:
    """User text for HTML (text and attribute values): secrets redacted, then escaped."""
    return html.escape(redact(str(text)), quote=True)


CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:20px;
  color:#1f2328;background:#f4f5f7}
main{max-width:1200px;margin:0 auto}
h1{font-size:22px;margin:0 0 4px} .sub{color:#57606a;margin:0 0 14px}
.tally{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 14px;padding:0;list-style:none}
.node{background:#fff;border:1px solid #d0d7de;border-radius:10px;padding:14px 16px;margin:0}
.node.overdue{border-left:6px solid #d62728} .node.gap{border-left:6px solid #e65100}
.node.stale,.node.waiting{border-left:6px solid #c9a100}
.tile{display:grid;grid-template-columns:minmax(0,1fr) minmax(200px,320px);gap:8px 20px}
.children{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:12px;
  margin:14px 0 0;padding:0 0 0 14px;border-left:3px solid #c8d1dc}
.children .tile{grid-template-columns:1fr}
.roots{display:grid;gap:14px}
h2{font-size:17px;margin:0;line-height:1.3} h2 a{color:#0b4f9c;text-decoration:none}
h2 a:hover{text-decoration:underline}
.meta,.facts{color:#57606a;font-size:13px;margin:2px 0}
.standing{margin:6px 0 2px} .standing b{font-size:18px}
.met{color:#1a7f37;font-weight:600} .short{color:#b35900;font-weight:600}
.decision{margin:4px 0}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:13px;font-weight:600;
  color:#fff;background:#6e7781}
details{font-size:13px;color:#333;margin:2px 0} details ul{margin:4px 0;padding-left:18px}
summary{cursor:pointer;color:#57606a}
.flags{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:6px}
.flag{border-radius:6px;padding:2px 8px;font-size:13px;font-weight:600}
.flag.overdue{background:#fdecea;color:#b71c1c} .flag.gap{background:#fff0e0;color:#a84300}
.flag.stale,.flag.waiting{background:#fff8d6;color:#6b5900}
figure{margin:0;align-self:center} figcaption{font-size:11px;color:#6e7781}
svg.spark{display:block;width:100%;max-width:520px;height:auto;background:#fafbfc;
  border-radius:4px}
.error{color:#b71c1c;font-size:13px;word-break:break-word}
@media (max-width:700px){
  body{padding:10px;font-size:14px}
  .tile{grid-template-columns:1fr}
  .children{grid-template-columns:1fr;padding-left:8px;margin-top:10px}
  .node{padding:12px}
}
"""


def portfolio_html(tiles: Sequence[Tile], *, generated: datetime, history: str = "") -> str:
    """The page: parents hold their children, each outcome a tile (no script, no network)."""
    by_name = {t.outcome: t for t in tiles}
    by_parent: dict[str | None, list[Tile]] = {}
    for name, depth in tree_order({n: t.parent for n, t in by_name.items()}):
        t = by_name[name]  # a parent holds its children; an unknown parent or a cycle: a root
        by_parent.setdefault(t.parent if depth > 0 else None, []).append(t)

    def node(t: Tile, seen: frozenset[str]) -> str:
        kids = [c for c in by_parent.get(t.outcome, []) if c.outcome not in seen]
        inner = "".join(node(c, seen | {c.outcome}) for c in kids)
        held = f'<div class="children">{inner}</div>' if inner else ""
        return (
            f'<section class="node {t.severity}" id="o-{_esc(t.outcome)}">'
            f"{_tile_html(t)}{held}</section>"
        )

    roots = "".join(node(t, frozenset({t.outcome})) for t in by_parent.get(None, []))
    colours = "".join(f".badge.{k}{{background:{v}}}" for k, v in DECISION_COLOURS.items())
    count = {k: sum(k in {f.kind for f in t.flags} for t in tiles) for k in SEVERITY}
    words = {"overdue": "with an overdue review", "gap": "with a deployment gap",
             "stale": "with periods not run", "waiting": "awaiting sign-off"}  # fmt: skip
    tally = (
        "".join(f'<li class="flag {k}">{n} {words[k]}</li>' for k, n in count.items() if n)
        or '<li class="flag ok">nothing overdue</li>'
    )
    where = f" · history {_esc(history)}" if history else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>radar portfolio</title>
<style>{CSS}{colours}</style>
</head>
<body>
<main>
<h1>radar portfolio</h1>
<p class="sub">{len(tiles)} outcome{"s" if len(tiles) != 1 else ""} · generated \
{generated.astimezone(UTC):%Y-%m-%d %H:%M} UTC{where}</p>
<ul class="tally">{tally}</ul>
<div class="roots">{roots}</div>
</main>
</body>
</html>
"""


def _tile_html(t: Tile) -> str:
    if t.error is not None:
        return (
            f'<div class="tile"><div><h2>{_esc(t.title)}</h2>'
            f'<p class="error">{_esc(t.error)}</p><p class="meta">{_esc(t.source)}</p></div></div>'
        )
    name = _esc(t.title)
    title = f'<a href="{_esc(quote(t.report))}">{name}</a>' if t.report else name
    serves = f' · serves <a href="#o-{_esc(t.parent)}">{_esc(t.parent)}</a>' if t.parent else ""
    meta = f"{_esc(t.outcome)} · {_esc(t.cadence)} · {t.cycles} cycle{'s' if t.cycles != 1 else ''}"
    cmp = target_sign(t.direction)
    target = f"target {_esc(t.result_metric)} {cmp} {fmt(t.target)}"
    if t.value is not None:
        reached = t.target is None or met(t.value, t.target, t.direction)
        word = '<span class="met">met</span>' if reached else '<span class="short">not met</span>'
        standing = f"<b>{fmt(t.value)}</b> in {_esc(t.value_period)} · {target} · {word}"
    else:
        standing = f"no value yet · {target}"
    if t.decision:
        decision = (
            f'<span class="badge {_esc(t.decision)}">{_esc(t.decision)}</span> '
            f"{_esc(t.decided)}: {_esc(t.summary or '; '.join(t.reasons[:2]))}"
        )
    else:
        how = f"radar run {t.outcome}"
        decision = "no review yet" + ("" if t.cycles else f": <code>{_esc(how)}</code>")
    reasons = ""
    if t.reasons:
        items = "".join(f"<li>{_esc(r)}</li>" for r in t.reasons[:REASONS])
        more = f"<li>… {len(t.reasons) - REASONS} more</li>" if len(t.reasons) > REASONS else ""
        reasons = f"<details><summary>reasons</summary><ul>{items}{more}</ul></details>"
    facts = [f"RADAR {t.score:.0f} %" + (f" ({_esc(t.band)})" if t.band else "")
             if t.score is not None else "", _esc(t.effect)]  # fmt: skip
    facts_html = " · ".join(f for f in facts if f)
    flag_items = "".join(f'<li class="flag {_esc(f.kind)}">{_esc(f.text)}</li>' for f in t.flags)
    figure = (
        f"<figure>{t.sparkline}<figcaption>{_esc(t.result_metric)}: values, "
        "limits (red), target (green)</figcaption></figure>"
        if t.sparkline
        else ""
    )
    return (
        f'<div class="tile"><div class="main"><h2>{title}</h2>'
        f'<p class="meta">{meta}{serves}</p>'
        f'<p class="standing">{standing}</p><p class="decision">{decision}</p>{reasons}'
        + (f'<p class="facts">{facts_html}</p>' if facts_html else "")
        + (f'<ul class="flags">{flag_items}</ul>' if flag_items else "")
        + f"</div>{figure}</div>"
    )


# -- reading and writing --------------------------------------------------------------------------


def write_all(
    store: Store | None, directory: Path, *, now: datetime, history: str = ""
) -> tuple[Path, list[Path]]:
    """Each declared outcome's report (`<outcome>.html`, for those with cycles) and the
    portfolio page (`index.html`) in `directory`: (the page, the reports written)."""
    from cycles.declaration.loader import declared_outcomes
    from cycles.report.vega import write

    declared = declared_outcomes()
    outcomes = {o.outcome: o for _, o, _ in declared if o is not None}
    order = tree_order({name: o.parent for name, o in outcomes.items()})
    written: list[Path] = []
    tiles = []
    for name, depth in order:
        records = store.cycles(name) if store is not None else []
        report = None
        if records:
            page = directory / f"{name}.html"
            written += write(build_report(records), html_file=page, png_file=None)
            report = page.name
        tiles.append(tile(outcomes[name], records, now=now, depth=depth, report=report))
    tiles += [
        Tile(outcome=str(path), title=f"{path.name}: not loaded", source=str(path), error=error)
        for path, outcome, error in declared
        if outcome is None and error is not None
    ]
    index = directory / PAGE
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(portfolio_html(tiles, generated=now, history=history), encoding="utf-8")
    return index, written
