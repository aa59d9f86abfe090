"""`radar report --all`: the portfolio page of every declared outcome, laid out as the hierarchy."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.declaration.model import Outcome
from cycles.engine import run_cycle
from cycles.periods import Period
from cycles.record import CycleRecord, RecordExtra
from cycles.report.data import Point
from cycles.report.portfolio import (
    Tile,
    effect_text,
    flags,
    portfolio_html,
    sparkline_svg,
    tile,
)
from cycles.store import Store
from cycles.values import DecisionKind, Effect

import chromium
from conftest import ROOT, months, write_declaration, write_monthly_csv

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
NETWORK = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""",
    re.I,
)
ARTIFACTS = ROOT / "tests" / "artifacts"


def outcome_in(root: Path, name: str, *, parent: str | None = None, title: str = "") -> Outcome:
    """`root/flows/<name>/<name>.yaml`: flat data 2024-09 .. 2026-08, optional parent and title."""
    directory = root / "flows" / name
    write_monthly_csv(directory / "data" / "rate.csv", dict.fromkeys(months("2024-09", 24), 0.2))
    path = write_declaration(directory, outcome=name)
    text = path.read_text()
    if title:
        text = text.replace("title: Customers refer us", f"title: {json.dumps(title)}")
    if parent:
        text = text.replace(f"outcome: {name}\n", f"outcome: {name}\nparent: {parent}\n")
    path.write_text(text)
    return load_yaml(path)


def record(period: str, decision: str | None, **more: object) -> CycleRecord:
    status = more.pop("status", "reviewed" if decision else "open")
    return CycleRecord(
        outcome="desk", period=period, cadence="monthly", target=0.3, status=str(status),
        decision=DecisionKind(decision) if decision else None, **more,
    )  # fmt: skip


# -- what needs people (pure) ---------------------------------------------------------------------


def test_flags_overdue_reviews_gaps_and_periods_without_a_cycle(workdir: Path) -> None:
    outcome = outcome_in(workdir, "desk")
    gap = "deployment gap: asks_sent at 40 % of target"
    records = [
        record("2026-07", "keep"),
        record("2026-08", "hold", extra={"summary": gap}),
        record("2026-09", None, status="review pending",
               extra={"pending": "review of 2026-09 pending: campaign.ended + P14D"}),
        record("2026-10", None),  # opened, ended, never reviewed
        record("2026-06", None, status="void"),  # set aside: never overdue
    ]  # fmt: skip
    found = [(f.kind, f.text) for f in flags(outcome, records, NOW)]
    assert found == [
        ("overdue", "2026-09: review of 2026-09 pending: campaign.ended + P14D"),
        ("overdue", "2026-10 ended 2026-11-01, not reviewed"),
        ("gap", f"2026-08: {gap}"),
        ("stale", "2026-11 ended without a cycle"),
    ]
    assert [f.kind for f in flags(outcome, records[:2], NOW)] == ["gap", "stale"]
    assert [f.text for f in flags(outcome, records[:2], NOW)][1] == (
        "2026-09 … 2026-11 (3 periods) ended without a cycle"
    )
    now = datetime(2026, 10, 20, tzinfo=UTC)  # 2026-10 still runs: nothing overdue
    assert flags(outcome, [record("2026-09", "keep"), record("2026-10", None)], now) == []
    waiting = record("2026-09", None, status="awaiting sign-off")
    assert [(f.kind, f.text) for f in flags(outcome, [waiting], now)] == [
        ("waiting", "2026-09: awaiting sign-off")
    ]


def test_effect_shown_when_present_and_skipped_when_not() -> None:
    effect = Effect(estimate=0.0956, lower=0.0705, upper=0.121, periods=9,
                    approach="promoter-nudge", level=0.9)  # fmt: skip
    assert effect_text(effect) == (
        "effect of promoter-nudge: +0.10 (90 % interval +0.07 to +0.12) over 9 periods"
    )
    assert effect_text(Effect(estimate=-2, lower=-3, upper=-1, periods=1)) == (
        "effect: -2.0 (90 % interval -3.0 to -1.0) over 1 period"
    )
    assert effect_text(None) == ""
    for unreadable in ({}, {"estimate": 1.0}, {"estimate": "big", "lower": 0, "upper": 2}):
        extra = RecordExtra.stored({"effect": unreadable})  # an older record's
        assert extra.effect is None and effect_text(extra.effect) == ""


def test_sparkline_draws_limits_target_values_and_a_marker_for_a_review_without_a_value() -> None:
    points = [
        Point(period=p, start=i * 100, end=(i + 1) * 100, value=v, lower=0.1, upper=0.3,
              centre=0.2, target=0.35, decision=d)
        for i, (p, v, d) in enumerate(
            [("2026-07", 0.21, "keep"), ("2026-08", None, "hold"), ("2026-09", 0.25, "adjust")]
        )
    ]  # fmt: skip
    svg = sparkline_svg(points, "rate<&>")
    root = ET.fromstring(svg)  # well-formed
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("viewBox") == "0 0 300 64" and root.get("width") == "100%"
    assert len(root.findall(f"{ns}circle")) == 2  # the two reviews with a value
    [marker] = root.findall(f"{ns}path")  # the hold without one: a hollow marker on the axis
    assert marker.get("fill") == "white" and marker.get("stroke") == "#d62728"
    assert marker.findtext(f"{ns}title") == "2026-08: hold, -"
    assert len(root.findall(f"{ns}line")) == 4 * 3  # upper, lower, centre, target per point
    assert "rate&lt;&amp;&gt;" in svg and "rate<&>" not in svg


def test_the_page_escapes_user_text_and_loads_nothing(workdir: Path) -> None:
    hostile = "<script>alert('x')</script> & \"friends\""
    outcome = outcome_in(workdir, "desk", title=hostile)
    reviewed = record("2026-10", "keep", reasons=["<img src=x onerror=alert(1)>"],
                      result_value=0.31, extra={"summary": "<b>bold</b>"})  # fmt: skip
    shown = tile(outcome, [reviewed], now=NOW, report="desk.html")
    page = portfolio_html([shown], generated=NOW)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;friends&quot;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert not NETWORK.findall(page) and "<link" not in page.lower()
    assert '<a href="desk.html">' in page and '<meta name="viewport"' in page


def test_parents_hold_their_children(workdir: Path) -> None:
    tiles = [Tile(outcome=n, title=n.upper(), parent=p)
             for n, p in [("leaf", "mid"), ("mid", "top"), ("top", None), ("loop", "loop2"),
                          ("loop2", "loop"), ("orphan", "gone")]]  # fmt: skip
    page = portfolio_html(tiles, generated=NOW)
    body = page[page.index('<div class="roots">') :]
    ids = re.findall(r'<section class="node [a-z]*" id="o-([a-z0-9]+)"|(</section>)', body)
    nesting, depth = [], 0
    for name, close in ids:
        if close:
            depth -= 1
        else:
            nesting.append((name, depth))
            depth += 1
    assert nesting == [("orphan", 0), ("top", 0), ("mid", 1), ("leaf", 2), ("loop", 0),
                       ("loop2", 1)]  # fmt: skip
    assert "6 outcomes" in page and "nothing overdue" in page


# -- command line ---------------------------------------------------------------------------------


def test_report_needs_an_outcome_or_all_not_both(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report"]) == 2
    assert "give an OUTCOME to chart, or --all" in capsys.readouterr().err
    assert main(["report", "referrals", "--all"]) == 2
    assert "--all writes every declared outcome" in capsys.readouterr().err


def test_report_all_without_history_lists_the_declared_outcomes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--all"]) == 0
    assert capsys.readouterr().out == "portfolio: reports/index.html\n"
    page = (workdir / "reports" / "index.html").read_text()
    for title in ("Every customer willingly refers us", "Support answers customers within 4 hours",
                  "Qualified leads become customers"):  # fmt: skip
        assert title in page
    assert page.count("no review yet: <code>radar run ") == 3
    assert not (workdir / ".radar").exists()  # a read: no history created


# -- in a browser ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not chromium.available(),
    reason="needs headless Chromium (apt-get install chromium, or put its bin/ on PATH)",
)
def test_portfolio_in_chromium_on_a_laptop_and_a_phone(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--no-prefect"]) == 0  # referrals, support, leads: 14 months each
    desk = outcome_in(workdir, "desk", parent="support", title="Service desk <& co>")
    store = Store()
    for label in months("2025-09", 13):  # its data ends 2026-08: 2026-09 holds without a value
        run_cycle(desk, Period.parse(label, "monthly"), store=store)
    # 2026-10 opened while it ran and never reviewed since: overdue
    run_cycle(desk, Period.parse("2026-10", "monthly"), store=store, today=date(2026, 10, 5))
    capsys.readouterr()
    assert main(["report", "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "portfolio: reports/index.html"
    reports = workdir / "reports"
    page = (reports / "index.html").read_text()
    links = re.findall(r'href="([^"#][^"]*)"', page)
    assert sorted(links) == ["desk.html", "leads.html", "referrals.html", "support.html"]
    assert all((reports / link).is_file() for link in links)  # every link resolves
    url = (reports / "index.html").resolve().as_uri()
    titles = ("Every customer willingly refers us", "Support answers customers within 4 hours",
              "Qualified leads become customers", "Service desk <& co>")  # fmt: skip
    for name, size, mobile in (("desktop", (1400, 1000), False), ("phone", (390, 844), True)):
        shot = ARTIFACTS / f"portfolio-{name}.png"
        seen = chromium.visit(url, width=size[0], height=size[1], mobile=mobile, screenshot=shot)
        assert seen.errors == [] and seen.console == []
        assert seen.requests == [url]  # the page itself, nothing else
        for title in titles:
            assert title in seen.text, (name, title)
        for flag in ("2026-10 ended 2026-11-01, not reviewed", "deployment gap: leads_contacted"):
            assert flag in seen.text
        assert seen.scroll_width <= size[0], f"{name}: the page scrolls sideways"
        width, height = chromium.png_size(shot)
        assert width == size[0] and height >= size[1]
    # an outcome's own report, linked from the page, fits a phone too (charts are responsive)
    report = (reports / "referrals.html").resolve().as_uri()
    seen = chromium.visit(report, width=390, height=844, mobile=True, settle=2.0,
                          screenshot=ARTIFACTS / "report-phone.png")  # fmt: skip
    assert seen.errors == [] and seen.requests == [report]
    assert "referral_rate (result)" in seen.text or "Latest cycles" in seen.text
    assert seen.scroll_width <= 390, "the report scrolls sideways on a phone"
