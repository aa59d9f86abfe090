"""The report as Vega-Lite: one spec (pure), rendered offline by vl-convert into a PNG, an SVG or
a self-contained HTML page. vl-convert is imported inside the functions: it starts a
JavaScript engine, which `radar --help` and the flow should not pay for."""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from cycles.numbers import fmt, target_sign
from cycles.report.data import (
    DECISION_COLOURS,
    LEGEND,
    SCORE_PARTS,
    MetricChart,
    Report,
    label_below,
)
from cycles.secrets import redact, redact_deep

WIDTH = 720
# x-axis labels; weeks as ISO weeks (2026-W31), one tick at each week's Monday
DATES = {"weekly": "%G-W%V", "monthly": "%b %Y", "quarterly": "Q%q %Y"}
GLOBALS = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"

# -- the Vega-Lite spec (pure) --------------------------------------------------------------------


def vega_spec(report: Report, *, width: int = WIDTH, heading: bool = True) -> dict[str, Any]:
    """One spec: an XmR chart per metric (result first, then drivers), then the RADAR score;
    `heading`: the outcome's title and target above them (a page that has its own leaves it)."""
    cmp = target_sign(report.direction)
    charts = [_metric_spec(report, chart, width) for chart in report.charts]
    if report.scores:
        charts.append(_score_spec(report, width))
    spec: dict[str, Any] = {
        "title": {
            "text": report.title,
            "subtitle": f"{report.outcome} · target {report.result_metric} {cmp} "
            f"{fmt(report.target)} · {report.count} cycles · {LEGEND}",
            "anchor": "start",
        },
        "vconcat": charts,
        "spacing": 28,
        "resolve": {"scale": {"x": "shared", "color": "shared"}},
        "config": {
            "view": {"stroke": None},
            "font": "sans-serif",
            "axis": {"labelFontSize": 10},
            "axisX": {
                "format": DATES.get(report.cadence, "%Y-%m-%d"),
                "formatType": "utc",
                "labelOverlap": "greedy",
            },
        },
    }
    starts = sorted({p.start for c in report.charts for p in c.points})
    if report.cadence == "weekly" and starts:  # Vega's weeks start on Sundays: name Mondays
        spec["config"]["axisX"]["values"] = starts
    _same_x(charts, report)
    if not heading:
        del spec["title"]
    return dict(redact_deep(spec))


def _same_x(charts: list[dict[str, Any]], report: Report) -> None:
    """Every chart's x scale over the same periods, so charts drawn one by one (the HTML page
    embeds each on its own, as wide as the page) line up as the concatenation does."""
    ends = [(p.start, p.end) for c in report.charts for p in c.points]
    ends += [(s.start, s.end) for s in report.scores] + [(p.start, p.end) for p in report.phases]
    if not ends:
        return
    bounds = {"domainMin": min(a for a, _ in ends), "domainMax": max(b for _, b in ends)}
    for chart in charts:
        for layer in chart.get("layer", []):
            x = layer.get("encoding", {}).get("x")
            if isinstance(x, dict) and isinstance(x.get("scale"), dict):
                x["scale"] = {**x["scale"], **bounds}  # not `domain`: it warns with x2


def _x(field: str = "mid") -> dict[str, Any]:
    return {"field": field, "type": "temporal", "title": None, "scale": {"type": "utc"}}


def _y(field: str, title: str, **scale: Any) -> dict[str, Any]:
    return {
        "field": field,
        "type": "quantitative",
        "title": title,
        "scale": {"zero": False, "padding": 12, **scale},
    }


def _rule(field: str, title: str, colour: str, dash: list[int] | None) -> dict[str, Any]:
    mark: dict[str, Any] = {"type": "rule", "color": colour, "strokeWidth": 1.5}
    if dash:
        mark["strokeDash"] = dash
    return {
        "mark": mark,
        "transform": [{"filter": f"isValid(datum.{field})"}],
        "encoding": {"x": _x("start"), "x2": {"field": "end"}, "y": _y(field, title)},
    }


def _metric_spec(report: Report, chart: MetricChart, width: int) -> dict[str, Any]:
    title = chart.metric
    rows = [{**p.model_dump(), "mid": (p.start + p.end) // 2} for p in chart.points]
    for row, below in zip(rows, label_below(chart.points), strict=True):
        row["reasons"] = "; ".join(row["reasons"])
        row["below"] = below
        row["anchor"] = row["value"]
        row["nodata"] = row["decision"] is not None and row["value"] is None
    tooltip = [
        {"field": "period", "type": "nominal"},
        {"field": "value", "type": "quantitative", "format": ".4g"},
        {"field": "phase", "type": "nominal", "title": "approach"},
    ]
    if chart.role == "result":
        tooltip += [
            {"field": "decision", "type": "nominal"},
            {"field": "reasons", "type": "nominal"},
        ]
    else:
        tooltip.append({"field": "note", "type": "nominal", "title": "driver"})
    decided = [{"filter": "isValid(datum.decision)"}]
    height = 220 if chart.role == "result" else 150
    sides = {r["below"] for r in rows if r["decision"] and r["anchor"] is not None}
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": [p.model_dump() for p in report.phases]},
            "mark": {"type": "rect", "opacity": 0.07},
            "encoding": {
                "x": _x("start"),
                "x2": {"field": "end"},
                "color": {
                    "condition": {"test": "datum.approach === 'baseline'", "value": "#888888"},
                    "value": "#4c78a8",
                },
                "tooltip": [
                    {"field": "approach", "type": "nominal"},
                    {"field": "first", "type": "nominal"},
                    {"field": "last", "type": "nominal"},
                    {"field": "effect", "type": "nominal"},
                ],
            },
        },
        {
            "data": {"values": [p.model_dump() for p in report.phases]},
            "mark": {
                "type": "text",
                "align": "left",
                "baseline": "bottom",
                "dx": 3,
                "dy": -3,
                "fontSize": 10,
                "color": "#555555",
            },  # above the plot, clear of the values
            "encoding": {"x": _x("start"), "y": {"value": 0}, "text": {"field": "approach"}},
        },
        _rule("upper", title, "#d62728", [4, 3]),
        _rule("lower", title, "#d62728", [4, 3]),
        _rule("centre", title, "#7f7f7f", None),
        _rule("target", title, "#2ca02c", [8, 4]),
        {
            "mark": {"type": "line", "color": "#4c78a8", "point": {"color": "#4c78a8", "size": 20}},
            "transform": [{"filter": "isValid(datum.value)"}],
            "encoding": {"x": _x(), "y": _y("value", title), "tooltip": tooltip},
        },
    ]
    if chart.role == "result":
        layers += [
            {
                "mark": {"type": "point", "filled": True, "size": 70, "opacity": 1},
                "transform": [*decided, {"filter": "isValid(datum.value)"}],
                "encoding": {
                    "x": _x(),
                    "y": _y("value", title),
                    "color": {
                        "field": "decision",
                        "type": "nominal",
                        "title": "decision",
                        "scale": {
                            "domain": list(DECISION_COLOURS),
                            "range": list(DECISION_COLOURS.values()),
                        },
                    },
                    "tooltip": tooltip,
                },
            },
            *(
                {
                    "mark": _label_mark(dy, halo),
                    "transform": [
                        *decided,
                        {"filter": "isValid(datum.anchor)"},
                        {"filter": f"{'' if below else '!'}datum.below"},
                    ],
                    "encoding": {
                        "x": _x(),
                        "y": _y("anchor", title),
                        "text": {"field": "decision"},
                        **({} if halo else {"color": _decision_colour()}),
                    },
                }
                # a white halo under each label keeps it legible where it crosses a line
                for halo in (HALO, PLAIN)
                for below, dy in ((False, -10), (True, 14))
                if below in sides  # a layer without data makes Vega warn
            ),
            *(_no_value_layers(height, tooltip) if any(r["nodata"] for r in rows) else []),
        ]
    return {
        "title": {"text": chart.title, "anchor": "start", "fontSize": 12},
        "width": width,
        "height": height,
        "data": {"values": rows},
        "layer": layers,
    }


HALO: dict[str, Any] = {"color": "white", "stroke": "white", "strokeWidth": 3,
                        "strokeJoin": "round"}  # fmt: skip
PLAIN: dict[str, Any] = {}


def _label_mark(dy: int, halo: dict[str, Any]) -> dict[str, Any]:
    """A decision label's text mark, `dy` px from its point; `halo`: the white one under it."""
    return {"type": "text", "dy": dy, "fontSize": 9, "fontWeight": "bold", **halo}


def _no_value_layers(height: int, tooltip: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A review without a value to judge (no data): a hollow marker on the x axis, labelled
    above it, instead of a label floating where no point is."""
    marker: dict[str, Any] = {"type": "point", "shape": "triangle-up", "filled": False, "size": 60}
    on_axis: dict[str, Any] = {"x": _x(), "y": {"value": height - 5}}
    nodata = [{"filter": "datum.nodata"}]

    def label(halo: dict[str, Any]) -> dict[str, Any]:
        encoding: dict[str, Any] = {**on_axis, "text": {"field": "decision"}}
        if not halo:
            encoding["color"] = _decision_colour()
        return {"mark": _label_mark(-14, halo), "transform": nodata, "encoding": encoding}

    point = {
        "mark": {**marker, "strokeWidth": 1.5, "opacity": 1},
        "transform": nodata,
        "encoding": {**on_axis, "color": _decision_colour(), "tooltip": tooltip},
    }
    return [point, label(HALO), label(PLAIN)]


def _decision_colour() -> dict[str, Any]:
    return {"field": "decision", "type": "nominal", "legend": None}


def _score_spec(report: Report, width: int) -> dict[str, Any]:
    rows = [
        {**s.model_dump(exclude={"parts"}), **s.parts, "mid": (s.start + s.end) // 2,
         "label": s.band if i == 0 or s.band != report.scores[i - 1].band else ""}
        for i, s in enumerate(report.scores)
    ]  # fmt: skip
    tooltip = [
        {"field": "period", "type": "nominal"},
        {"field": "total", "type": "quantitative"},
        {"field": "band", "type": "nominal"},
        *({"field": k, "type": "quantitative"} for k in SCORE_PARTS if any(k in r for r in rows)),
    ]
    y = {"field": "total", "type": "quantitative", "title": "score",
         "scale": {"domain": [0, 100]}}  # fmt: skip
    return {
        "title": {"text": "RADAR self-score (0-100)", "anchor": "start", "fontSize": 12},
        "width": width,
        "height": 120,
        "data": {"values": rows},
        "layer": [
            {
                "mark": {"type": "line", "color": "#6a3d9a", "point": {"color": "#6a3d9a"}},
                "encoding": {"x": _x(), "y": y, "tooltip": tooltip},
            },
            {
                "mark": {"type": "text", "dy": -9, "fontSize": 9, "color": "#6a3d9a"},
                "encoding": {"x": _x(), "y": y, "text": {"field": "label"}},
            },
        ],
    }


# -- rendering (vl-convert, offline) --------------------------------------------------------------


def svg_text(report: Report) -> str:
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(vega_spec(report)))


def png_bytes(report: Report, *, scale: float = 2.0) -> bytes:
    import vl_convert as vlc

    return bytes(vlc.vegalite_to_png(vega_spec(report), scale=scale))


def write(report: Report, *, html_file: Path | None, png_file: Path | None) -> list[Path]:
    """Write the page and/or the picture (PNG at twice the CSS size); the files written."""
    written = []
    for path, content in ((html_file, html_page), (png_file, png_bytes)):
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content(report)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        written.append(path)
    return written


def _effects_table(report: Report) -> str:
    """Each approach phase and its effect (cycles.effects), when any cycle recorded one."""
    phases = [p for p in report.phases if p.effect]
    if not phases:
        return ""
    rows = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape(redact(v))}</td>" for v in (p.approach, p.first, p.last))
        + f"<td>{html.escape(p.effect)}</td></tr>"
        for p in phases
    )
    return (
        f"<h2>Approaches and their effect on {html.escape(report.result_metric)}</h2>\n<table>\n"
        "<thead><tr><th>approach</th><th>from</th><th>to</th><th>effect against its baseline"
        f"</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n"
    )


def html_page(report: Report) -> str:
    """A self-contained page: Vega, Vega-Lite and vega-embed inline, no network needed."""
    spec = script_json(vega_spec(report, heading=False))
    cmp = target_sign(report.direction)
    rows = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape(redact(v))}</td>" for v in (c.period, c.approach, c.value))
        + f'<td class="{html.escape(c.decision)}">{html.escape(c.decision)}</td>'
        + f"<td>{html.escape(c.score)}</td></tr>"
        for c in reversed(report.cycles)
    )
    colours = "".join(f".{k}{{color:{v};font-weight:600}}" for k, v in DECISION_COLOURS.items())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(report.outcome)} · radar report</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}}
h1{{margin:0 0 4px;font-size:22px}} .sub{{color:#555;margin:0 0 16px}}
#chart{{max-width:1100px}} #chart > div{{width:100%;margin:0 0 18px}}
table{{border-collapse:collapse;margin-top:8px;display:block;max-width:100%;overflow-x:auto}}
th,td{{padding:3px 12px;border-bottom:1px solid #ddd;text-align:left}} {colours}
@media (max-width:700px){{body{{margin:10px}} th,td{{padding:3px 6px}}}}
</style>
<script>{_vega_bundle()}</script>
</head>
<body>
<h1>{html.escape(redact(report.title))}</h1>
<p class="sub">{html.escape(report.outcome)} · {html.escape(report.cadence)} ·
target {html.escape(report.result_metric)} {cmp} {fmt(report.target)} ·
{report.count} cycles · generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC<br>{LEGEND}</p>
<div id="chart"></div>
{_effects_table(report)}<h2>Latest cycles</h2>
<table>
<thead><tr><th>period</th><th>approach</th><th>value</th><th>decision</th><th>score</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>
{CHART_BY_CHART}
window.vegaEmbed = chartByChart(window.vegaEmbed);
vegaEmbed("#chart", {spec}, {{mode: "vega-lite", renderer: "svg", actions: false}})
  .catch(function (e) {{ document.getElementById("chart").textContent = "chart failed: " + e; }});
</script>
</body>
</html>
"""


# vegaEmbed for the page: each chart of the spec's vconcat embedded on its own, as wide as the page
# ("container"): Vega-Lite fits a single chart to its container, not a concatenation. The x
# scales line up because each chart carries the same domain (_same_x).
CHART_BY_CHART = """function chartByChart(embed) {
  return function (target, spec, options) {
    var root = document.querySelector(target);
    var config = Object.assign({}, spec.config, {legend: {orient: "bottom"}});
    return Promise.all(spec.vconcat.map(function (chart) {
      var box = document.createElement("div");
      root.appendChild(box);
      var one = Object.assign({}, chart, {width: "container", config: config,
        autosize: {type: "fit-x", contains: "padding"}});
      return embed(box, one, options);
    }));
  };
}"""


# what must not appear raw in JSON inside <script>: `</script` ends it, `<!--` opens a comment
# state in which `</script>` no longer does, `&` matters if the page is ever read as XHTML, and
# U+2028/U+2029 end a line in older JavaScript parsers
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                  "\u2028": "\\u2028", "\u2029": "\\u2029"}  # fmt: skip


def script_json(value: Any) -> str:
    """`value` as JSON that is safe inside an HTML <script> element and reads back the same:
    `< > &` and the two line separators become \\u escapes, which only occur inside strings."""
    text = json.dumps(value)
    for char, escaped in _SCRIPT_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


def _vega_bundle() -> str:
    """vega, vega-lite and vega-embed as one script; cached on disk (bundling takes seconds)."""
    import vl_convert as vlc

    version = getattr(vlc, "__version__", "unknown")
    path = _cache_dir() / f"vega-embed-bundle-{version}.js"
    try:
        cached = path.read_text(encoding="utf-8")
        if "window.vegaLite" in cached[-1000:]:  # complete: it ends with our snippet
            return cached
    except (OSError, UnicodeDecodeError):
        pass
    bundle = _bundle()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(bundle, encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass  # a read-only home: bundle again next time
    return bundle


@cache
def _bundle() -> str:
    import vl_convert as vlc

    # a "</script" inside would end the inline <script> element early
    return str(vlc.javascript_bundle(GLOBALS)).replace("</script", "<\\/script")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "radar-cycles"
