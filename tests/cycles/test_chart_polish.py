"""Charts read well: rounded numbers in the table artifact, ISO weeks on weekly axes, decision
labels clear of the lines, a review without a value drawn on the axis, charts as wide as the page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from cycles.artifacts import readable, recent_table
from cycles.periods import Period
from cycles.record import CycleRecord
from cycles.report import build_report
from cycles.report.data import Point, label_below
from cycles.report.svg import report_svg
from cycles.report.vega import html_page, vega_spec
from cycles.values import ApproachRef, DecisionKind, Limits, PeriodValue

SVG = "{http://www.w3.org/2000/svg}"
LIMITS = Limits(centre=0.18, lower=0.17, upper=0.19)


def weekly_story(no_value: str = "2026-W31") -> list[CycleRecord]:
    """Eight baseline weeks, then four reviewed ones; `no_value` held without data."""
    first = Period.parse("2026-W21", "weekly")
    labels = [str(first + i) for i in range(12)]
    values = [PeriodValue(period=p, value=None if p == no_value else 0.18 + 0.001 * (i % 3))
              for i, p in enumerate(labels)]  # fmt: skip
    records = []
    for i, label in enumerate(labels[8:], start=8):
        value = values[i].value
        records.append(
            CycleRecord(
                outcome="desk",
                period=label,
                cadence="weekly",
                target=0.25,
                status="reviewed",
                decision=DecisionKind.hold if value is None else DecisionKind.adjust,
                reasons=["no value for the period"] if value is None else ["no signal"],
                result_metric="rate",
                result_value=value,
                limits=LIMITS,
                approach=ApproachRef(name="rota"),
                metrics={"rate": values[: i + 1]},
            )
        )
    return records


# -- 2. the table artifact ------------------------------------------------------------------------


def test_the_table_artifact_rounds_to_the_metric_s_precision() -> None:
    record = CycleRecord(
        outcome="desk", period="2026-10", cadence="monthly", target=0.3,
        result_metric="rate", limits=Limits(centre=0.181234567, lower=0.1701111, upper=0.19234),
        metrics={"rate": [PeriodValue(period="2026-10", value=0.17894477317554242, rows=16)]},
    )  # fmt: skip
    [row] = recent_table(record)
    assert (row["value"], row["centre"], row["lower"], row["upper"]) == (
        0.1789, 0.1812, 0.1701, 0.1923,
    )  # fmt: skip
    assert (row["target"], row["rows"]) == (0.3, 16)
    assert readable(12345.67) == 12346  # never coarser than a unit
    assert readable(830.6123, like=400) == 830.6
    assert readable(0.123456, like=0.12345) == 0.12346  # as precise as the declared target
    assert readable(None) is None and readable(0.0) == 0.0


# -- 3. weekly axes -------------------------------------------------------------------------------


def test_weekly_charts_are_labelled_by_iso_week() -> None:
    report = build_report(weekly_story())
    axis = vega_spec(report)["config"]["axisX"]
    assert axis["format"] == "%G-W%V" and axis["formatType"] == "utc"
    mondays = {Period.parse(p.period, "weekly").start for p in report.charts[0].points}
    assert len(axis["values"]) == len(mondays) == 12  # a tick at each week's Monday
    texts = [t.text for t in ET.fromstring(report_svg(report)).iter(f"{SVG}text")]
    assert "2026-W31" in texts  # the artifact's axis names the weeks too
    assert not any(re.fullmatch(r"\d\d \w{3} \d{4}", t or "") for t in texts)


@pytest.mark.slow
def test_vega_draws_iso_week_labels() -> None:
    import vl_convert as vlc

    svg = vlc.vegalite_to_svg(vega_spec(build_report(weekly_story())))
    labels = set(re.findall(r">(\d{4}-W\d\d)<", svg))
    assert {"2026-W21", "2026-W31"} & labels, sorted(labels)
    assert not re.search(r">\d\d (?:Jun|Jul|Aug) 2026<", svg)


# -- 4. labels, reviews without a value, width ----------------------------------------------------


def test_a_decision_label_moves_off_a_line_it_would_cross() -> None:
    def point(label: str, value: float, **lines: float) -> Point:
        start = Period.parse(label, "monthly").start.toordinal() * 86_400_000
        return Point(period=label, start=start, end=start + 1, value=value, decision="keep",
                     **lines)  # fmt: skip

    spread = [point("2026-01", 0.10), point("2026-02", 0.30)]  # the chart spans 0.10 … 0.30
    # 1 px is 0.2 / 180: a label above spans 7-18 px over its point, below 6-17 px under it
    under_limit = point("2026-03", 0.185, upper=0.198)  # above, it would cross the limit
    over_target = point("2026-04", 0.25, target=0.24, upper=0.28)  # below, the target
    sides = label_below([*spread, under_limit, over_target])
    assert sides[2:] == [True, False]


def test_a_review_without_a_value_is_a_marker_on_the_axis() -> None:
    report = build_report(weekly_story(no_value="2026-W31"))
    [result, *_] = vega_spec(report)["vconcat"]
    rows = {r["period"]: r for r in result["data"]["values"]}
    assert rows["2026-W31"]["nodata"] is True and rows["2026-W31"]["anchor"] is None
    markers = [layer for layer in result["layer"]
               if layer.get("transform") == [{"filter": "datum.nodata"}]]  # fmt: skip
    assert [m["mark"]["type"] for m in markers] == ["point", "text", "text"]
    assert markers[0]["mark"]["filled"] is False
    assert {m["encoding"]["y"]["value"] for m in markers} == {result["height"] - 5}
    root = ET.fromstring(report_svg(report))
    [marker] = [p for p in root.iter(f"{SVG}path") if p.get("fill") == "white"]
    assert marker.findtext(f"{SVG}title", "").startswith("2026-W31: - · hold")
    labels = [t for t in root.iter(f"{SVG}text") if t.text == "hold"]
    assert labels and all(t.get("paint-order") == "stroke" for t in labels)  # a white halo


def test_spec_with_markers_and_halos_is_valid_vega_lite() -> None:
    import altair as alt

    alt.VConcatChart.from_dict(vega_spec(build_report(weekly_story())), validate=True)


def test_charts_are_as_wide_as_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    report = build_report(weekly_story())
    root = ET.fromstring(report_svg(report))
    assert root.get("width") == "100%" and root.get("height") is None and root.get("viewBox")
    spec = vega_spec(report)
    bounds = {
        (x["scale"]["domainMin"], x["scale"]["domainMax"])
        for chart in spec["vconcat"]
        for layer in chart["layer"]
        if (x := layer["encoding"].get("x"))
    }
    assert len(bounds) == 1  # charts drawn one by one still line up
    monkeypatch.setattr("cycles.report.vega._vega_bundle", lambda: "/* vega */")
    page = html_page(report)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert 'width: "container"' in page and "window.vegaEmbed = chartByChart(" in page
