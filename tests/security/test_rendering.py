"""User text in what radar renders: Prefect's markdown artifacts, the artifact's SVG chart and the
offline HTML report show it as text, never as markup, links, images or script."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from cycles import secrets
from cycles.artifacts import md_code, md_text, recent_table, review_markdown
from cycles.declaration import load_yaml
from cycles.engine import run_cycle
from cycles.record import CycleRecord
from cycles.report import build_report
from cycles.report.svg import artifact_markdown, report_svg
from cycles.report.vega import html_page, script_json
from cycles.store import Store
from cycles.values import ActionRun, ApproachRef, CheckResult, PeriodValue

import chromium
from conftest import months, write_declaration, write_monthly_csv

APPROACH = "</script><!--<script>alert(1)//"
TITLE = "<img src=x onerror=alert(1)> | [x](javascript:alert(1)) *_`#"
LINK = "[x](javascript:alert(1))"
PIPES = "a | b || c\nnext line"
# the worst case of a renderer: raw HTML and every link scheme let through; GFM tables too
MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def hostile(workdir: Path) -> list[CycleRecord]:
    """Cycles of `refer` whose title and first approach are hostile, run through the engine."""
    values = {m: 0.18 + 0.004 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-09", 12))}
    values |= {"2025-09": 0.181, "2025-10": 0.183, "2025-11": 0.24, "2025-12": 0.31}
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    decl = write_declaration(workdir)
    text = decl.read_text()
    text = text.replace("title: Customers refer us", f"title: {json.dumps(TITLE)}")
    text = text.replace("  - name: incentive\n", f"  - name: {json.dumps(APPROACH)}\n")
    decl.write_text(text)
    outcome, store = load_yaml(decl), Store()
    for period in months("2025-09", 4):
        run_cycle(outcome, period, store=store)
    return store.cycles("refer")


@pytest.fixture
def bundle_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One vega bundle per test session (building it takes seconds), not in the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def rendered_text(fragment: str) -> str:
    """The text a browser shows for rendered HTML: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# -- markdown -------------------------------------------------------------------------------------

TEXT = st.text(
    st.sampled_from([*"ab 1.-+=#|!~*_[](){}`<>&;:/\\\"'%\t\n\r", "é", "·", "\u2028"]), max_size=40
)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_md_text_renders_as_the_text_itself_wherever_it_is_placed(text: str) -> None:
    """Rendered, `md_text(x)` shows x (line breaks as spaces, ends stripped) and nothing else:
    in a paragraph, a table cell, a list item, a heading and an emphasis."""
    shown = re.sub(r"\r\n|[\r\n\u2028]", " ", text).strip()
    assert html.unescape(MARKDOWN.renderInline(md_text(text))) == shown
    table = MARKDOWN.render(f"| k | v |\n|---|---|\n| k | {md_text(text)} |\n")
    cells = re.findall(r"<td>(.*?)</td>", table)
    assert len(cells) == 2 and html.unescape(cells[1]) == shown, table
    item = MARKDOWN.render(f"- {md_text(text)}\n\n# h {md_text(text)}\n\n_{md_text(text)}_\n")
    assert item.count("<li>") == 1 and item.count("<h1>") == 1 and item.count("<em>") <= 1, item
    for tag in ("<a", "<img", "<code", "<pre", "<s>", "<strong", "<script", "<blockquote"):
        assert tag not in item, item
    if shown:
        code = MARKDOWN.renderInline(f"- {md_code(text)}")
        assert code.count("<code>") == 1 and "<a" not in code and "<img" not in code, code


def test_md_text_escapes_the_named_characters() -> None:
    assert md_text("a&b <c> [x](y) *e* _u_ `c` #h !i ~s~ \\ referral_rate") == (
        "a&amp;b &lt;c&gt; \\[x\\]\\(y\\) \\*e\\* \\_u\\_ \\`c\\` \\#h \\!i \\~s\\~ \\\\ referral_rate"
    )
    assert md_text("  - one\ntwo | three\r\n") == "\\- one two \\| three"
    assert md_text("1. first") == "1\\. first" and md_text(20.5) == "20.5"
    assert md_text("---") == "\\---" and md_text("+1") == "\\+1"
    assert md_code("a `b` c") == "``a `b` c``" and md_code("`x") == "`` `x ``"


def hostile_record(record: CycleRecord) -> CycleRecord:
    """`record` with user text in every place the review shows it."""
    return record.model_copy(
        update={
            "title": TITLE,
            "result_metric": f"rate{PIPES}",
            "approach": ApproachRef(name=APPROACH, params={LINK: TITLE, "n": PIPES}),
            "next_approach": ApproachRef(name=f"![img](javascript:alert(1)) {PIPES}"),
            "reasons": [TITLE, LINK, PIPES, "# not a heading", "- not an item"],
            "actions": [
                ActionRun(name=LINK, type="webhook", key="k", status=f"failed {PIPES}"),
            ],
            "checks": record.checks.model_copy(
                update={
                    "failed": 1,
                    "results": [
                        CheckResult(
                            metric=f"rate {LINK}",
                            expectation="expect_`x`|y",
                            success=False,
                            message=f"{TITLE}\n{PIPES}",
                        )
                    ],
                }
            ),
        }
    )


def test_review_markdown_shows_user_text_as_text(hostile: list[CycleRecord]) -> None:
    record = hostile_record(hostile[-1])
    markdown = review_markdown(record)
    assert "<img" not in markdown and "](javascript:" not in markdown and "<!--" not in markdown
    page = MARKDOWN.render(markdown)
    for tag in ("<a", "<img", "<script", "<code>x"):
        assert tag not in page, tag
    assert page.count("<h1>") == 1 and page.count("<em>") == 1 and page.count("<strong>") == 1
    assert page.count("<code>") == 1  # the expectation's name, as code
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    assert len(rows) >= 8 and all(row.count("<td>") == 2 for row in rows[1:]), rows
    shown = rendered_text(page)
    flat = PIPES.replace("\n", " ")
    for text in (TITLE, LINK, flat, f"{APPROACH} ({LINK}={TITLE}, n={flat})", "# not a heading",
                 "- not an item", f"failed {flat}", f"expect_`x`|y on rate {LINK}: {TITLE} {flat}"):  # fmt: skip
        assert text in shown, text
    assert re.search(r"<h1>refer · 2025-12</h1>", page)


def test_review_markdown_redacts_secrets_before_escaping_them(
    hostile: list[CycleRecord],
) -> None:
    secrets.remember("s3cr_t|<x>")
    record = hostile[-1].model_copy(update={"title": "token s3cr_t|<x> here"})
    markdown = review_markdown(record)
    assert "s3cr" not in markdown and "_token \\*\\*\\* here_" in markdown


def test_recent_table_cells_are_numbers_or_escaped_text(hostile: list[CycleRecord]) -> None:
    record = hostile[-1]
    rows = recent_table(record)
    assert [r["period"] for r in rows] == [v.period for v in record.metrics["rate"][-12:]]
    odd = record.model_copy(
        update={"metrics": {"rate": [PeriodValue(period=TITLE, value=1.0, rows=2)]}}
    )
    [row] = recent_table(odd)
    assert row["period"] == md_text(TITLE) and "<img" not in row["period"]
    assert all(isinstance(v, int | float) or v is None for k, v in row.items() if k != "period")


# -- the chart artifact (SVG in markdown) ---------------------------------------------------------


def test_chart_artifact_markdown_and_svg_show_user_text_as_text(
    hostile: list[CycleRecord],
) -> None:
    report = build_report(hostile)
    report = report.model_copy(update={"title": f"{TITLE}\x01\x0c & more"})
    markdown = artifact_markdown(report)
    assert "<img" not in markdown and "](javascript:" not in markdown
    page = MARKDOWN.render(markdown)
    [image] = re.findall(r"<img [^>]*>", page)  # the chart, nothing else
    assert 'alt="refer XmR chart"' in image and 'src="data:image/svg+xml;base64,' in image
    assert "<a" not in page and page.count("<h1>") == 1
    heading = rendered_text(re.search(r"<h1>(.*?)</h1>", page)[1])  # type: ignore[index]
    assert heading == f"refer: {TITLE}\x01\x0c & more"
    svg = report_svg(report)
    root = ET.fromstring(svg)  # well-formed although the title holds control characters
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert f"{TITLE}\ufffd\ufffd & more" in texts
    assert APPROACH in texts  # the phase label, as text
    assert not [e for e in root.iter() if e.tag.removeprefix(SVG) not in _SVG_TAGS]


_SVG_TAGS = {"svg", "rect", "text", "line", "polyline", "circle", "title"}


# -- the HTML report ------------------------------------------------------------------------------


def test_script_json_cannot_end_a_script_and_reads_back_the_same() -> None:
    value = {"a": APPROACH, "b": "x & y > z", "c": "\u2028\u2029", APPROACH: ["</SCRIPT >"]}
    text = script_json(value)
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert json.loads(text) == value


def embedded_spec(page: str) -> Any:
    """The Vega-Lite spec that the page's last script hands to vegaEmbed."""
    script = re.findall(r"<script>(.*?)</script>", page, re.S)[-1]
    start = script.index('vegaEmbed("#chart", ') + len('vegaEmbed("#chart", ')
    end = script.index(', {mode: "vega-lite"')
    return json.loads(script[start:end])


def test_html_report_keeps_user_text_out_of_markup_and_script(
    hostile: list[CycleRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cycles.report.vega._vega_bundle", lambda: "/* vega */")
    report = build_report(hostile)
    page = html_page(report)
    assert APPROACH not in page and "<!--" not in page and "<img" not in page
    assert page.count("<script>") == page.count("</script>") == 2  # the bundle, the embed
    assert f"<h1>{html.escape(TITLE)}</h1>" in page
    assert f"<td>{html.escape(APPROACH)}" in page  # the table of cycles
    spec = embedded_spec(page)
    phases = spec["vconcat"][0]["layer"][0]["data"]["values"]
    assert APPROACH in [p["approach"] for p in phases]  # the names read back as they were
    assert "\\u003c/script\\u003e\\u003c!--\\u003cscript\\u003ealert(1)//" in page


def instrumented(page: str) -> str:
    """`page` with a first script that turns alert() and errors into attributes on <html>."""
    hooks = """<script>
(function () {
  var root = document.documentElement;
  window.alert = window.confirm = window.prompt = function (m) {
    root.setAttribute("data-alerted", String(m));
  };
  window.addEventListener("error", function (e) {
    root.setAttribute("data-error", String(e.message));
  });
  var error = console.error;
  console.error = function () {
    root.setAttribute("data-console-error", Array.prototype.join.call(arguments, " "));
    error.apply(console, arguments);
  };
})();
</script>"""
    return page.replace("<head>", "<head>\n" + hooks, 1)


@pytest.mark.slow
@pytest.mark.skipif(
    not chromium.available(),
    reason="needs Debian's headless Chromium (apt-get install chromium) to load the page",
)
def test_html_report_with_hostile_names_renders_in_chromium(
    hostile: list[CycleRecord], bundle_cache: None, tmp_path: Path
) -> None:
    page = tmp_path / "refer.html"
    page.write_text(instrumented(html_page(build_report(hostile))), encoding="utf-8")
    dom = chromium.dom(page.as_uri(), flags=chromium.OFFLINE)
    assert dom, "chromium could not render the page"
    root = re.match(r"\s*(?:<!DOCTYPE html>)?\s*<html[^>]*>", dom, re.I)
    assert root and "data-" not in root[0], root and root[0]  # no alert, no error
    start = dom.index('<div id="chart"')
    chart = dom[start : dom.find("</div>", start)]
    assert "<svg" in chart and "chart failed" not in chromium.visible_text(dom)
    assert APPROACH in chromium.visible_text(chart)  # the phase label, drawn as text
    markup = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S | re.I)
    assert "<img" not in markup and "<script" not in markup  # the title made no element
    text = chromium.visible_text(dom)
    assert TITLE in text and APPROACH in text  # the heading and the table of cycles
