"""`radar report`: XmR charts of the result and drivers, decisions, RADAR score; offline HTML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.engine import run_cycle
from cycles.record import CycleRecord, RecordExtra
from cycles.report import build_report
from cycles.report.data import Report, label_below
from cycles.report.svg import artifact_markdown, report_svg
from cycles.report.vega import html_page, vega_spec
from cycles.store import Store
from cycles.values import PeriodValue

import chromium
from conftest import ROOT, months, write_declaration, write_monthly_csv

# 12 flat baseline months; the incentive moves nothing (adjust, a broken month: hold, switch),
# the nudge lifts the rate past the target.
STORY: dict[str, float | None] = {
    m: 0.18 + 0.004 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-09", 12))
}
STORY |= {"2025-09": 0.181, "2025-10": 0.183, "2025-11": 0.179, "2025-12": 0.18, "2026-01": 0.182,
          "2026-02": 0.24, "2026-03": 0.31, "2026-04": 0.32}  # fmt: skip
RUN = months("2025-09", 8)
SHOT = ROOT / "tests" / "artifacts" / "report.png"


@pytest.fixture
def story(workdir: Path) -> list[CycleRecord]:
    """The cycles of outcome `refer`, run through the engine and read back from the store."""
    write_monthly_csv(workdir / "data" / "rate.csv", STORY, broken={"2025-11": 1})
    path = write_declaration(workdir)
    # the nudge can be adjusted, so its first flat month adjusts it instead of switching away
    path.write_text(path.read_text().replace(
        "    params: {asks: 2}\n", "    params: {asks: 2}\n    adjust: {asks: {step: 1, max: 6}}\n"
    ))  # fmt: skip
    outcome, store = load_yaml(path), Store()
    for period in RUN:
        run_cycle(outcome, period, store=store)
    return store.cycles("refer")


@pytest.fixture
def bundle_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One vega bundle per test session (building it takes seconds), not in the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def with_drivers(records: list[CycleRecord]) -> list[CycleRecord]:
    """The story's records as the drivers engineer's records look: a two-level driver tree."""
    out = []
    for i, record in enumerate(records):
        drivers = [
            {"metric": "asks", "parent": None, "depth": 1, "target": 100.0, "direction": "increase",
             "deployment": True, "value": 60.0 + 5 * i, "share_of_target": (60 + 5 * i) / 100,
             "met": False, "moved": "improved" if i > 4 else "flat",
             "limits": {"centre": 55.0, "lower": 40.0, "upper": 70.0}},
            {"metric": "opens", "parent": "asks", "depth": 2, "target": 0.5, "direction": "increase",
             "deployment": False, "value": 0.4, "share_of_target": 0.8, "met": False,
             "moved": None, "limits": None},
        ]  # fmt: skip
        window = [PeriodValue(period=p, value=50.0 + k) for k, p in enumerate(months("2025-05", 4))]
        out.append(
            record.model_copy(
                update={
                    "extra": RecordExtra.stored({**record.extra.model_dump(), "drivers": drivers}),
                    "metrics": {**record.metrics, "asks": window},
                }
            )
        )
    return out


def chart_of(report: Report, metric: str) -> Any:
    [chart] = [c for c in report.charts if c.metric == metric]
    return chart


# -- chart data ----------------------------------------------------------------------------------


def test_points_carry_the_limits_target_and_decision_each_cycle_recorded(
    story: list[CycleRecord],
) -> None:
    report = build_report(story)
    result = chart_of(report, "rate")
    assert result.role == "result" and report.charts[0] is result
    by_period = {p.period: p for p in result.points}
    assert list(by_period) == months("2024-09", 20)  # the baseline window, then every cycle
    for record in story:
        point = by_period[record.period]
        assert record.limits is not None and record.decision is not None
        assert (point.centre, point.lower, point.upper) == (
            record.limits.centre, record.limits.lower, record.limits.upper,
        )  # fmt: skip
        assert point.target == record.target == 0.3
        assert point.decision == record.decision.value and point.reasons == record.reasons
        assert point.value == pytest.approx(record.result_value)
        assert point.phase == record.approach.name  # type: ignore[union-attr]
    for label in months("2024-09", 12):  # before the first cycle: values only
        point = by_period[label]
        assert point.value == pytest.approx(STORY[label])
        assert point.decision is None and point.upper is None and point.phase == "baseline"
    decisions = [p.decision for p in result.points if p.decision]
    assert {"adjust", "hold", "switch", "keep"} <= set(decisions), decisions


def test_phases_follow_the_approach_and_its_limits(story: list[CycleRecord]) -> None:
    report = build_report(story)
    names = [(p.approach, p.first, p.last) for p in report.phases]
    switch = next(r.period for r in story if r.decision == "switch")
    assert names[0] == ("baseline", "2024-09", "2025-08")
    assert names[1][:2] == ("incentive", "2025-09") and names[1][2] == switch
    assert names[2][0] == "nudge" and names[2][2] == RUN[-1]
    assert len(names) == 3
    # one set of limits per phase: the baseline before the approach started
    result = chart_of(report, "rate")
    for phase in report.phases[1:]:
        limits = {
            (round(p.lower, 9), round(p.upper, 9))  # type: ignore[arg-type]
            for p in result.points
            if p.phase == phase.approach
        }
        assert len(limits) == 1, (phase.approach, limits)
    assert {p.end for p in report.phases[:-1]} == {p.start for p in report.phases[1:]}


def test_spec_draws_limits_target_phases_and_decision_labels(story: list[CycleRecord]) -> None:
    report = build_report(story)
    spec = vega_spec(report)
    assert spec["title"]["text"] == "Customers refer us"
    result, score = spec["vconcat"]  # the engine records carry a RADAR score
    rules = {
        layer["encoding"]["y"]["field"]: layer["mark"]
        for layer in result["layer"]
        if layer["mark"]["type"] == "rule"
    }
    assert set(rules) == {"upper", "lower", "centre", "target"}
    assert rules["upper"]["strokeDash"] and "strokeDash" not in rules["centre"]
    texts = [layer for layer in result["layer"] if layer["mark"]["type"] == "text"]
    halos = [t for t in texts if t["mark"].get("stroke") == "white"]  # under each label
    texts = [t for t in texts if t not in halos]
    assert [t["encoding"]["text"]["field"] for t in texts] == ["approach", "decision", "decision"]
    assert [t["encoding"]["text"]["field"] for t in halos] == ["decision", "decision"]
    rows = {row["period"]: row for row in result["data"]["values"]}
    for record in story:
        assert rows[record.period]["decision"] == record.decision
        assert rows[record.period]["reasons"] == "; ".join(record.reasons)
    assert score["title"]["text"].startswith("RADAR self-score")
    assert [r["period"] for r in score["data"]["values"]] == RUN
    assert all(0 <= r["total"] <= 100 for r in score["data"]["values"])


def test_spec_is_valid_vega_lite(story: list[CycleRecord]) -> None:
    import altair as alt

    alt.VConcatChart.from_dict(vega_spec(build_report(with_drivers(story))), validate=True)


def test_drivers_follow_the_result_in_tree_order(story: list[CycleRecord]) -> None:
    report = build_report(with_drivers(story))
    assert [c.metric for c in report.charts] == ["rate", "asks", "opens"]
    asks, opens = report.charts[1], report.charts[2]
    assert asks.role == opens.role == "driver"
    assert asks.title == "asks (driver of rate)"
    assert opens.title == "opens (driver of asks, level 2)"
    points = {p.period: p for p in asks.points}
    assert points["2025-05"].value == 50.0 and points["2025-05"].upper is None  # window only
    last = points[RUN[-1]]
    assert (last.value, last.centre, last.lower, last.upper, last.target) == (95.0, 55, 40, 70, 100)
    assert last.note == "95% of target, improved"
    assert {p.note for p in opens.points if p.period in RUN} == {"80% of target"}
    assert all(p.upper is None for p in opens.points)  # no limits recorded: none drawn
    assert [c["title"]["text"] for c in vega_spec(report)["vconcat"]][:3] == [
        c.title for c in report.charts
    ]


def test_missing_or_malformed_extras_are_left_out(story: list[CycleRecord]) -> None:
    junk = [
        r.model_copy(
            update={
                "extra": RecordExtra.stored(
                    {"drivers": "x" if i % 2 else [{"value": 1}], "score": {"total": "high"}}
                )
            }
        )
        for i, r in enumerate(story)
    ]
    report = build_report(junk)
    assert [c.metric for c in report.charts] == ["rate"] and report.scores == []
    assert len(vega_spec(report)["vconcat"]) == 1
    assert all(row.score == "-" for row in report.cycles)
    with pytest.raises(ValueError, match="no cycles"):
        build_report([])


def test_close_decision_labels_alternate_above_and_below(story: list[CycleRecord]) -> None:
    points = chart_of(build_report(story), "rate").points
    sides = dict(zip([p.period for p in points], label_below(points), strict=True))
    assert sides["2025-09"] is False and sides["2025-10"] is True  # 0.181 then 0.183
    assert not any(sides[label] for label in months("2024-09", 12))


def test_artifact_svg_shows_the_same_marks(story: list[CycleRecord]) -> None:
    report = build_report(with_drivers(story))
    svg = report_svg(report)
    root = ET.fromstring(svg)  # well-formed
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for expected in ("Customers refer us", "incentive", "nudge", "baseline", "hold", "switch",
                     "asks (driver of rate)", "RADAR self-score (0-100)"):  # fmt: skip
        assert expected in texts, expected
    assert svg.count('stroke="#d62728"') >= 2 * len(story)  # upper and lower limit per cycle
    markdown = artifact_markdown(report)
    assert markdown.startswith("# refer: Customers refer us")
    assert re.search(
        r"!\[refer XmR chart\]\(data:image/svg\+xml;base64,[A-Za-z0-9+/=]+\)", markdown
    )


def test_a_single_open_cycle_still_charts(workdir: Path) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", dict.fromkeys(months("2026-01", 3), 0.2))
    outcome, store = load_yaml(write_declaration(workdir)), Store()
    run_cycle(outcome, "2026-04", store=store, today=date(2026, 4, 10))  # opened, not reviewed
    report = build_report(store.cycles("refer"))
    [point] = [p for p in report.charts[0].points if p.period == "2026-04"]
    assert point.decision is None and point.value is None and point.phase == "incentive"
    assert report.cycles[-1].decision == "open"
    assert "<svg" in report_svg(report)


# -- rendering -----------------------------------------------------------------------------------

NETWORK = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""",
    re.I,
)


@pytest.mark.slow
def test_html_has_no_network_reference(story: list[CycleRecord], bundle_cache: None) -> None:
    page = html_page(build_report(story))
    assert not NETWORK.findall(page)
    assert "<link" not in page.lower()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all("src" not in attrs for attrs in scripts)  # every script inline
    assert "window.vegaEmbed" in page  # vega-embed itself is in the page
    assert "<h1>Customers refer us</h1>" in page


@pytest.mark.slow
@pytest.mark.skipif(
    not chromium.available(), reason="needs headless Chromium: apt-get install chromium"
)
def test_html_report_renders_offline_in_chromium(
    story: list[CycleRecord], bundle_cache: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "refer"]) == 0
    page = Path("reports/refer.html").resolve()
    assert (
        capsys.readouterr().out.strip()
        == f"wrote reports/refer.html ({len(story)} cycles of refer)"
    )
    url = page.as_uri()
    dom = chromium.dom(url, flags=chromium.OFFLINE)
    assert dom, "chromium could not render the page"
    start = dom.index('<div id="chart"')
    svg = dom[start : dom.rfind("</svg>")]  # the charts (one per metric), not the tables
    assert "<svg" in svg and "chart failed" not in chromium.visible_text(dom)
    # the chart's marks: limit and target rules, the value line, decision points and labels
    for mark in ("mark-rule", "mark-line", "mark-symbol", "mark-text", "mark-rect", "role-axis"):
        assert mark in svg, mark
    text = chromium.visible_text(dom)
    assert "Customers refer us" in text  # the outcome's title
    drawn = chromium.visible_text(svg)
    for label in (
        "rate (result)",
        "RADAR self-score (0-100)",
        "incentive",
        "nudge",
        "switch",
        "hold",
    ):
        assert label in drawn, label
    shot = chromium.screenshot(url, SHOT, size="1100,1200", flags=chromium.OFFLINE)
    assert chromium.png_size(shot) == (1100, 1200)
    assert shot.stat().st_size > 40_000, "a page without its chart compresses to a few kB"


@pytest.mark.slow
def test_png_report(story: list[CycleRecord], tmp_path: Path) -> None:
    out = tmp_path / "charts" / "refer.png"
    assert main(["report", "refer", "--png", str(out)]) == 0
    width, height = chromium.png_size(out)
    assert width >= 2 * 720 and height >= 2 * (220 + 120)  # both charts, at twice the CSS size
    assert out.stat().st_size > 40_000, "a blank image of that size compresses to a few kB"
    assert not Path("reports").exists()  # --png alone writes only the picture


# -- command line --------------------------------------------------------------------------------


def test_report_of_an_unknown_outcome_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("radar: unknown outcome 'nosuch'") and err.count("\n") == 1


def test_report_of_a_declared_outcome_without_cycles_exits_1(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_declaration(workdir)
    assert main(["report", "refer"]) == 1
    assert (
        capsys.readouterr().err
        == "radar: no cycles recorded for 'refer' yet: run `radar run refer` first\n"
    )
