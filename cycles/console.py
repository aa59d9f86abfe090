"""How cycles look in a terminal (rich). The CLI prints only through here."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cycles.numbers import finite_data, fmt, target_sign
from cycles.secrets import redact, redact_data

if TYPE_CHECKING:  # an error line needs no pydantic
    from cycles.record import CycleRecord
    from cycles.store import Store
    from cycles.values import DriverState

DECISION_STYLE = {
    "keep": "green",
    "achieved": "bold green",
    "adjust": "yellow",
    "switch": "magenta",
    "hold": "red",
}


PIPE_WIDTH = 200  # columns of tables printed to a pipe or a file


def console(stderr: bool = False) -> Any:
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped or redirected: rich would assume 80 columns and fold tables; use a wide page
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    # lines are not cut at the width
    out = Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)
    # rich exits 1 when the reader goes away; radar's main exits 0 (`radar ... | head`)
    out.on_broken_pipe = _reader_gone  # type: ignore[method-assign]
    return out


def _reader_gone() -> None:
    raise BrokenPipeError("the reader of the output went away")


def print_json(data: Any) -> None:
    """Machine-readable output: one strict JSON document on stdout, secrets redacted.

    JSON has no NaN or Infinity: a number that is not finite is printed as null.
    """
    # secrets are redacted in the data, not in the text: the output stays the same valid JSON
    # and no period, number or name is rewritten (cycles.secrets.redact_data)
    text = json.dumps(redact_data(finite_data(data)), indent=2, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")


def error_line(message: str) -> None:
    sys.stderr.write(f"radar: {printable(redact(message))}\n")


def notice(message: str) -> None:
    """Something a user should know that is not the command's output (stderr, like errors)."""
    sys.stderr.write(f"radar: {printable(redact(message))}\n")


_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: str) -> str:
    """Text from outside (a server's answer, a title) without terminal control sequences: an
    escape sequence could move the cursor, rewrite the line or retitle the terminal."""
    return _CONTROL.sub("", text)


def escape(text: str) -> str:
    """User text (names, titles, reasons) safe inside rich markup and on a terminal."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


NEW_HISTORY: list[Path] = []  # a history this command created, not yet told about


def open_history(*, create: bool = True) -> Store | None:
    """The history store (`RADAR_DATABASE_URL`, else the nearest `.radar/`), saying so when a
    new one is created. None when there is none and `create` is false (a dry run, a read):
    nothing is written anywhere then."""
    from cycles.store import Store, default_url
    from cycles.urls import sqlite_file

    url = default_url()
    file = sqlite_file(url)
    if file is not None and not file.exists():
        if not create:
            return None
        NEW_HISTORY.append(file)  # said once the command succeeds
    return Store(url)


def history_note(count: int, what: str, *, dry_run: bool = False) -> str:
    """The closing line of a command that ran cycles: how many, and which history holds them
    (and that it is new, if this command created it)."""
    from cycles.store import default_url

    plural = "s" if count != 1 else ""
    where = "nothing recorded (dry run)" if dry_run else f"history: {shown_url(default_url())}"
    if NEW_HISTORY and not dry_run:
        where += f" ({new_history_text()})"
        NEW_HISTORY.clear()
    return f"[dim]{count} {what}{plural}; {escape(where)}[/]"


def new_history_text() -> str:
    return (
        f"new: no .radar/ at or above {Path.cwd()}; set RADAR_DATABASE_URL or run where "
        ".radar/ is to use another"
    )


def tell_new_history() -> None:
    """After a command succeeded: say on stderr that it created a new history, unless its
    output said so already."""
    if NEW_HISTORY:
        notice(f"started a new history in {NEW_HISTORY[0].parent} ({new_history_text()})")
        NEW_HISTORY.clear()


def duration(span: timedelta) -> str:
    """14 days, 6 h, 90 s: a duration as people write it."""
    seconds = int(span.total_seconds())
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def shown_url(url: str) -> str:
    """A database URL as people may see it: its password (and any secret) as ***."""
    from cycles.urls import without_password

    return redact(without_password(url))


def approach_text(approach: Any) -> str:
    if approach is None:
        return "-"
    params = ", ".join(f"{k}={v}" for k, v in approach.params.items())
    return redact(f"{approach.name}" + (f" ({params})" if params else ""))


def decision_text(record: CycleRecord) -> str:
    if record.status == "void":
        return "[dim strike]" + (record.decision.value if record.decision else "void") + "[/] void"
    if record.decision is None:
        if record.status in ("review pending", "awaiting sign-off"):
            return f"[yellow]{record.status}[/]"
        return "[dim]not reviewed[/]"
    style = DECISION_STYLE.get(record.decision.value, "")
    return f"[{style}]{record.decision.value}[/]"


def short_reasons(record: CycleRecord, limit: int = 2) -> str:
    """The decision's summary, else its first reasons; why a cycle is void or pending."""
    void, pending, summary = record.extra.void, record.extra.pending, record.extra.summary
    if record.status == "void" and void is not None:
        return f"void: {void.reason}"
    if record.decision is None and pending is not None:
        return pending
    if summary:
        return summary
    return "; ".join(record.reasons[:limit]) + (" …" if len(record.reasons) > limit else "")


def cycle_line(record: CycleRecord) -> str:
    """One line per cycle: period, value vs target, decision, reasons, next approach."""
    cmp = target_sign(record.direction)
    if record.decision is None:  # opened, not reviewed: what runs this period
        return (
            f"[bold]{record.period}[/]  opened   [dim]{record.status:<8}[/] approach "
            f"{escape(approach_text(record.approach))}"
            + (f"; actions: {escape(actions_text(record))}" if record.actions else "")
        )
    decision = record.decision.value
    style = DECISION_STYLE.get(decision, "dim")
    return (
        f"[bold]{record.period}[/]  {fmt(record.result_value):>6} vs {cmp} {fmt(record.target):<5}"
        f" [{style}]{decision:<8}[/] {escape(short_reasons(record))}  [dim]→ next:[/] "
        f"{escape(approach_text(record.next_approach))}"
        + (f"  [dim]RADAR[/] {score_text(record)}" if record.extra.score else "")
    )


def actions_text(record: CycleRecord) -> str:
    """offer-incentive: succeeded (reach 120), ...: each action of the cycle and how it went."""
    return ", ".join(
        f"{a.name}: {a.status}" + (f" (reach {fmt(a.reach)})" if a.reach is not None else "")
        for a in record.actions
    )


def score_text(record: CycleRecord) -> str:
    """The RADAR self-score as `60 %` (cycles.score), `-` before the review."""
    score = record.extra.score
    return f"{score.total} %" if score is not None and score.total is not None else "-"


def driver_text(driver: DriverState) -> str:
    """asks_sent = 160.8 (40 % of 400, worsened): one driver node of `extra.drivers`."""
    share = driver.share_of_target
    facts = [f"{share * 100:.0f} % of {fmt(driver.target)}" if share is not None else ""]
    facts += [driver.moved or "", "deployment" if driver.deployment else ""]
    indent = "  " * (driver.depth - 1)
    details = ", ".join(f for f in facts if f)
    return f"{indent}{driver.metric} = {fmt(driver.value)}" + (f" ({details})" if details else "")


def print_summary(record: CycleRecord) -> None:
    """The readable form of `radar run`."""
    from rich.table import Table

    out = console()
    dry = "  [yellow](dry run)[/]" if record.dry_run else ""
    title = escape(f"{record.outcome} · {record.period}")
    out.print(f"[bold]{title}[/]{dry}  {escape(redact(record.title))}")
    stages = ", ".join(s.value for s in record.stages) or "none (nothing was due)"
    out.print(f"  stages run: {stages}")
    table = Table(show_header=False, box=None, pad_edge=False)
    cmp = target_sign(record.direction)
    table.add_row(
        "result",
        f"{record.result_metric} = {fmt(record.result_value)} "
        f"(target {cmp} {fmt(record.target)}; stood at {fmt(record.standing)})",
    )
    table.add_row("approach", escape(approach_text(record.approach)))
    why = record.extra.approach_reason
    if why and "approach" in record.stages:  # Stage is a StrEnum
        table.add_row("", f"· {escape(why)}")
    if record.actions:
        table.add_row("actions", escape(actions_text(record)))
    table.add_row("checks", f"{record.checks.passed} passed, {record.checks.failed} failed")
    if record.limits is not None:
        lim = record.limits
        table.add_row(
            "XmR limits",
            f"{fmt(lim.lower)} .. {fmt(lim.centre)} .. {fmt(lim.upper)} "
            f"({len(lim.baseline)} baseline periods)",
        )
    for i, driver in enumerate(record.extra.drivers):
        table.add_row("drivers" if i == 0 else "", driver_text(driver))
    table.add_row("decision", decision_text(record))
    for reason in record.reasons:
        table.add_row("", f"· {escape(reason)}")
    table.add_row("next", escape(approach_text(record.next_approach)))
    score = record.extra.score
    if score is not None and score.total is not None:
        table.add_row(
            "RADAR score",
            f"{score.total} % ({score.band}): results {score.results}, approach "
            f"{score.approach}, deployment {score.deployment}, assessment {score.assessment}",
        )
    out.print(table)
    out.print(history_note(1, "cycle", dry_run=record.dry_run))


def print_history(records: Iterable[CycleRecord], outcome: str, *, where: str = "") -> None:
    from rich.table import Table

    rows = list(records)
    out = console()
    shown_where = f"history: {escape(shown_url(where))}" if where else ""
    if not rows:
        out.print(f"no cycles recorded for {escape(repr(outcome))}  [dim]{shown_where}[/]")
        return
    table = Table(
        title=f"{escape(outcome)}: {len(rows)} cycles  [dim]{shown_where}[/]",
        title_justify="left",
    )
    columns = ("period", "approach", "value", "target", "decision", "reasons", "next approach")
    for column in columns:
        table.add_column(column, overflow="fold")
    table.add_column("score", justify="right")  # the RADAR self-score (cycles.score)
    for r in rows:
        table.add_row(
            r.period,
            escape(approach_text(r.approach)),
            fmt(r.result_value),
            fmt(r.target),
            decision_text(r),
            escape(short_reasons(r, 3)),
            escape(approach_text(r.next_approach)),
            score_text(r),
        )
    out.print(table)


def print_outcomes(rows: list[dict[str, Any]], where: str | None) -> None:
    """`radar outcomes`: one row per declared outcome."""
    from rich.table import Table

    out = console()
    if not rows:
        out.print("no declared outcomes found (./flows, the working directory, RADAR_FLOWS)")
        return
    note = f"history: {shown_url(where)}" if where else "no history here yet"
    table = Table(title=f"{len(rows)} outcomes  [dim]{escape(note)}[/]", title_justify="left")
    for column in ("outcome", "cadence", "last period", "last decision", "declaration"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row["error"]:
            table.add_row("[red]?[/]", "", "", "", escape(redact(str(row["error"]))))
            continue
        table.add_row(
            escape(row["outcome"]),
            row["cadence"],
            row["last_period"] or "-",
            row["last_decision"] or escape(row["status"] or "-"),
            escape(row["declaration"]),
        )
    out.print(table)


def outcome_line(
    outcome: str, period: str | None, record: CycleRecord | None, error: str | None
) -> str:
    """One line per outcome of `radar run-all`: its cycle (see `cycle_line`) or why it failed."""
    from rich.markup import escape

    name = f"[bold]{outcome:<15}[/]"  # names of up to 15 characters line up
    if record is None:
        return f"{name} {period or '-':<7}  [red]failed[/]   {escape(redact(error or ''))}"
    return f"{name} {cycle_line(record)}"


def run_all_summary(tally: dict[str, int], seconds: float, *, dry_run: bool = False) -> str:
    """`12 outcomes in 3.1 s: 5 keep, 4 adjust, 2 hold, 1 failed` (decisions in a fixed order)."""
    order = [*DECISION_STYLE, "not reviewed", "failed"]
    total = sum(tally.values())
    parts = ", ".join(
        f"[{DECISION_STYLE.get(kind, 'red' if kind == 'failed' else 'dim')}]{tally[kind]} {kind}[/]"
        for kind in sorted(tally, key=lambda kind: order.index(kind) if kind in order else 99)
    )
    dry = "  [yellow](dry run: nothing recorded)[/]" if dry_run else ""
    return f"{total} outcome{'s' if total != 1 else ''} in {seconds:.1f} s: {parts}{dry}"
