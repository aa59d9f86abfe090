"""What a cycle publishes for operators: a markdown review and a table of recent periods.

User text (titles, names, params, reasons, messages) goes through `md_text` or `md_code`, so it
reads as the words it is and never as markup: no HTML, links, images, emphasis or table cells.
"""

from __future__ import annotations

import math
import re
from typing import Any

from cycles.console import approach_text
from cycles.numbers import fmt, target_sign
from cycles.record import CycleRecord
from cycles.secrets import redact

RECENT = 12  # periods in the table artifact

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# CommonMark/GFM punctuation that opens links, images, emphasis, code, headings, table cells and
# strikethrough; a backslash before ASCII punctuation shows it as it is
_MARKUP = frozenset("\\`*_[]()#|!~")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\u2028\u2029]")
# a list item, a rule or a setext underline, had the text begun a line
_LIST_START = re.compile(r"^(?:[-+=]|\d{1,9}(?=[.)](?:\s|$)))")


def md_text(text: object) -> str:
    """`text` as literal markdown words: secrets redacted, then `& < >` as HTML entities, the
    markdown punctuation above backslash-escaped (`_` inside a word needs none), line breaks as
    spaces and the ends stripped: one inline run in a heading, emphasis, list item or cell."""
    plain = _LINE_BREAKS.sub(" ", redact(str(text))).strip()
    out = "".join(
        _HTML.get(c) or (f"\\{c}" if _is_markup(plain, i) else c) for i, c in enumerate(plain)
    )
    return _LIST_START.sub(lambda m: m[0] + "\\" if m[0][0].isdigit() else "\\" + m[0], out)


def _is_markup(text: str, i: int) -> bool:
    """Whether text[i] needs a backslash; `_` between letters or digits does not (referral_rate):
    CommonMark never opens or closes emphasis there."""
    c = text[i]
    if c == "_" and 0 < i < len(text) - 1:
        return not (text[i - 1].isalnum() and text[i + 1].isalnum())
    return c in _MARKUP


def md_code(text: object) -> str:
    """`text` as an inline code span (not for table cells): one line, fenced with more backticks
    than it holds, so nothing in it is markup and nothing ends it early."""
    plain = _LINE_BREAKS.sub(" ", redact(str(text))).strip()
    if not plain:
        return ""  # `` opens no code span
    fence = "`" * (max((len(run) for run in re.findall(r"`+", plain)), default=0) + 1)
    pad = " " if plain.startswith("`") or plain.endswith("`") else ""
    return f"{fence}{pad}{plain}{pad}{fence}"


def artifact_key(outcome: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]", "-", f"{outcome}-{kind}".lower())


def review_markdown(record: CycleRecord) -> str:
    """The review as markdown; user text through `md_text`/`md_code`, numbers through `fmt`."""
    cmp = target_sign(record.direction)
    lines = [
        f"# {md_text(record.outcome)} · {md_text(record.period)}",
        f"_{md_text(record.title)}_" if record.title else "",
        "",
        "| | |",
        "|---|---|",
        f"| target | {md_text(record.result_metric)} {cmp} {fmt(record.target)} |",
        f"| value | {fmt(record.result_value)} (stood at {fmt(record.standing)}) |",
        f"| approach | {md_text(approach_text(record.approach))} |",
        f"| checks | {record.checks.passed} passed, {record.checks.failed} failed |",
    ]
    if record.limits is not None:
        lim = record.limits
        lines.append(
            f"| XmR limits | {fmt(lim.lower)} · {fmt(lim.centre)} · {fmt(lim.upper)} "
            f"({len(lim.baseline)} baseline periods) |"
        )
    if record.actions:
        done = ", ".join(f"{md_text(a.name)}: {md_text(a.status)}" for a in record.actions)
        lines.append(f"| actions | {done} |")
    effect = record.extra.effect
    if effect is not None:  # the approach's name is user text: md_text, as every reason
        lines.append(f"| effect | {md_text(effect.reason())} |")
    decision = record.decision.value if record.decision else "not reviewed yet"
    lines += [
        f"| decision | **{decision}** |",
        f"| next approach | {md_text(approach_text(record.next_approach))} |",
        "",
    ]
    if record.reasons:
        lines += ["## Reasons", "", *(f"- {md_text(r)}" for r in record.reasons), ""]
    failed = [c for c in record.checks.results if not c.success]
    if failed:
        lines += [
            "## Failed checks",
            "",
            *(
                f"- {md_code(c.expectation)} on {md_text(c.metric)}"
                + (f": {md_text(c.message)}" if c.message else "")
                for c in failed
            ),
            "",
        ]
    return "\n".join(lines)


def recent_table(record: CycleRecord) -> list[dict[str, Any]]:
    """The result metric's recent periods with the XmR centre line, limits and target.

    Prefect's UI renders each text cell as markdown: the only text here is radar's own period
    label (`2026-03`), escaped all the same; the rest are numbers."""
    values = record.metrics.get(record.result_metric, [])[-RECENT:]
    lim = record.limits
    like = record.target  # as precise as the declared target, at least
    return [
        {
            "period": md_text(v.period),
            "value": readable(v.value, like=like),
            "centre": readable(lim.centre, like=like) if lim else None,
            "lower": readable(lim.lower, like=like) if lim else None,
            "upper": readable(lim.upper, like=like) if lim else None,
            "target": record.target,
            "rows": v.rows,
        }
        for v in values
    ]


SIGNIFICANT = 4


def readable(value: float | None, *, like: float | None = None) -> float | None:
    """`value` rounded for reading: to 4 significant digits (0.17894477 → 0.1789), never to
    fewer decimals than `like` has (a declared target of 0.1234 keeps 0.12345 at 0.1235) and
    never coarser than a unit (12,345.6 → 12,346)."""
    if value is None or not math.isfinite(value) or value == 0:
        return value
    decimals = max(0, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))
    if like is not None and math.isfinite(like):
        written = repr(float(like))
        if "e" not in written:  # 0.3 → 1 decimal; 1e-05 is better read at 4 significant
            decimals = max(decimals, len(written.split(".")[1].rstrip("0")))
    return round(value, decimals)
