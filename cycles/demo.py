"""`radar demo`: the bundled referrals outcome, run period by period over its sample data, with
the two outcomes that serve it (support, leads: `parent: referrals`), then the portfolio page."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cycles import console
from cycles.declaration.loader import bundled_flows, load_yaml
from cycles.declaration.model import Outcome
from cycles.periods import Period
from cycles.record import CycleRecord

if TYPE_CHECKING:
    from cycles.store import Store

DEMO = "referrals/referrals.yaml"
SERVING = ("support/support.yaml", "leads/leads.yaml")  # parent: referrals
FIRST, LAST = "2025-09", "2026-10"  # the sample data holds 12 baseline months before FIRST


def demo_outcome() -> Outcome:
    return load_yaml(bundled_flows() / DEMO)


def serving_outcomes() -> list[Outcome]:
    """The bundled outcomes that serve the demo's (`parent: referrals`), with their own data."""
    return [load_yaml(bundled_flows() / path) for path in SERVING]


def demo_periods(outcome: Outcome) -> list[Period]:
    first, last = (Period.parse(p, outcome.cadence) for p in (FIRST, LAST))
    return [first + i for i in range(last.index - first.index + 1)]


def run_demo(*, use_prefect: bool, start_server: bool = False) -> int:
    """`start_server`: no Prefect API is configured, so the first flow run would start Prefect's
    temporary server (10-25 s); start it now instead, while the demo loads its data."""
    from cycles.engine import preflight
    from cycles.temporary_server import TemporaryServer, api

    began = time.perf_counter()
    server = TemporaryServer().start() if use_prefect and start_server else None
    outcome = demo_outcome()
    serving = serving_outcomes()
    for declared in (outcome, *serving):
        preflight(declared)
    store = console.open_history()
    assert store is not None  # created when missing
    out = console.console()
    periods = demo_periods(outcome)
    how = "as Prefect flow runs" if use_prefect else "in-process, without Prefect"
    new = f" ({console.new_history_text()})" if console.NEW_HISTORY else ""
    console.NEW_HISTORY.clear()
    out.print(
        f"[bold]{outcome.title}[/] ({outcome.outcome}): target {outcome.result.metric} ≥ "
        f"{outcome.result.target:g}; {len(periods)} monthly cycles {how}\n"
        f"history: {store.url}{new}\n"
    )
    step = _flow_runner(outcome) if use_prefect else _local_runner(outcome, store)
    # each period runs the serving outcomes first, so referrals' review lists their decisions;
    # in-process even with Prefect: as flow runs they would add about 1 s per cycle (28 s)
    steps = [_local_runner(o, store) for o in serving]
    runs: list[list[CycleRecord]] = [[] for _ in serving]
    if server is not None:  # its first start migrates a new database: say why nothing shows
        out.print("[dim]starting Prefect's temporary server (10-30 s the first time)…[/]")
    with api(server):
        started = time.perf_counter()
        waited = started - began
        for period in periods:
            for child_runs, child_step in zip(runs, steps, strict=True):
                child_runs.append(child_step(period))
            record = step(period)
            out.print(console.cycle_line(record))
        elapsed = time.perf_counter() - started
    wall = time.perf_counter() - began
    out.print(
        f"\nthe outcomes serving {outcome.outcome} (parent: {outcome.outcome}), "
        f"{len(periods)} cycles each in-process"
        + (" (no flow runs: quicker; their deployments run them as flows):" if use_prefect else ":")
    )
    width = max(len(o.outcome) for o in serving)
    for child, records in zip(serving, runs, strict=True):
        out.print(f"  {console.escape(child.outcome):<{width}}  {serving_line(records)}")
    cycles = len(periods) * (1 + len(serving))
    spent = f"{len(periods)} cycles ({cycles} with the outcomes serving it) in {elapsed:.1f} s"
    if server is not None:
        spent += f", {wall:.1f} s in all with Prefect's server start ({waited:.1f} s)"
    out.print(f"\n{spent}. Next:")
    out.print(f"  radar history {outcome.outcome}              all cycles and their decisions")
    out.print(
        f"  radar report {outcome.outcome}               XmR charts of the result and its drivers"
        f" (reports/{outcome.outcome}.html)"
    )
    out.print(f"  radar run {outcome.outcome} --period {LAST} --json   one cycle as JSON")
    out.print(
        f"  radar run {outcome.outcome} --period {LAST} --review --dry-run"
        "   review again, record nothing"
    )
    if use_prefect:
        out.print(
            "  prefect server start                 then open http://127.0.0.1:4200/runs "
            "to see each cycle's flow run and its five stage tasks"
        )
    out.print("  radar report --all                   the portfolio page again, after new cycles")
    index, reports = _portfolio(store)
    charts = ", ".join(str(path) for path in reports)
    out.print(console.escape(f"\nportfolio: {index}  (each outcome's charts: {charts})"))
    return 0


def _portfolio(store: Store) -> tuple[Path, list[Path]]:
    """reports/index.html and each outcome's report, as `radar report --all` writes them."""
    from cycles import clock
    from cycles.report.portfolio import write_all

    where = console.shown_url(store.url)
    return write_all(store, Path("reports"), now=clock.now(), history=where)


def serving_line(records: Sequence[CycleRecord]) -> str:
    """One outcome's cycles in a line: where it stands, then its decisions in runs,
    "0.9193 vs ≥ 0.9 in 2026-10: adjust ×2 → keep ×5 → achieved"; the last run's summary
    when it is a hold or a switch."""
    from cycles.hierarchy import standing_text

    reviewed = [r for r in records if r.decision is not None]
    if not reviewed:
        return "no review"
    runs: list[tuple[str, int]] = []
    for record in reviewed:
        decision = record.decision.value if record.decision else ""
        if runs and runs[-1][0] == decision:
            runs[-1] = (decision, runs[-1][1] + 1)
        else:
            runs.append((decision, 1))
    last = reviewed[-1]
    steps = " → ".join(d + (f" ×{n}" if n > 1 else "") for d, n in runs)
    summary = last.extra.summary or ""
    if runs[-1][0] in ("hold", "switch") and summary:
        steps += f" ({summary})"
    standing = standing_text(last.result_value, last.target, last.direction)
    return console.escape(f"{standing} in {last.period}: {steps}")


def _local_runner(outcome: Outcome, store: object) -> Callable[[Period], CycleRecord]:
    from cycles.engine import run_cycle

    return lambda period: run_cycle(outcome, period, store=store)  # type: ignore[arg-type]


SETTLE_SHARE, SETTLE_MIN, SETTLE_MAX = 0.25, 0.05, 0.5


def settle_seconds(run_seconds: float) -> float:
    """The pause after a flow run that took `run_seconds`: a share of it, within bounds.

    Prefect's SQLite server answers 503 (and its client backs off 2 s) when a flow run is created
    while it still writes the previous run's events. How long that writing takes grows with the
    machine's load, as the run itself does, so the pause follows the run's own duration.
    """
    return min(SETTLE_MAX, max(SETTLE_MIN, SETTLE_SHARE * run_seconds))


def _flow_runner(outcome: Outcome) -> Callable[[Period], CycleRecord]:
    from cycles.flow import run_in_flow

    def step(period: Period) -> CycleRecord:
        started = time.perf_counter()
        record = run_in_flow(outcome, str(period), tagged=False)
        time.sleep(settle_seconds(time.perf_counter() - started))
        return record

    return step
