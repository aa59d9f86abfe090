"""`radar demo`: the bundled referrals outcome, run period by period over its sample data."""

from __future__ import annotations

import time
from collections.abc import Callable

from cycles import console
from cycles.declaration.loader import bundled_flows, load_yaml
from cycles.declaration.model import Outcome
from cycles.periods import Period
from cycles.record import CycleRecord

DEMO = "referrals/referrals.yaml"
FIRST, LAST = "2025-09", "2026-10"  # the sample data holds 12 baseline months before FIRST


def demo_outcome() -> Outcome:
    return load_yaml(bundled_flows() / DEMO)


def demo_periods(outcome: Outcome) -> list[Period]:
    first, last = (Period.parse(p, outcome.cadence) for p in (FIRST, LAST))
    return [first + i for i in range(last.index - first.index + 1)]


def run_demo(*, use_prefect: bool, start_server: bool = False) -> int:
    """`start_server`: no Prefect API is configured, so the first flow run would start Prefect's
    temporary server (10-25 s); start it now instead, while the demo loads its data."""
    from cycles.cli import open_history
    from cycles.engine import preflight
    from cycles.temporary_server import TemporaryServer, api

    began = time.perf_counter()
    server = TemporaryServer().start() if use_prefect and start_server else None
    outcome = demo_outcome()
    preflight(outcome)
    store = open_history()
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
    if server is not None:  # its first start migrates a new database: say why nothing shows
        out.print("[dim]starting Prefect's temporary server (10-30 s the first time)…[/]")
    with api(server):
        started = time.perf_counter()
        waited = started - began
        for period in periods:
            record = step(period)
            out.print(console.cycle_line(record))
        elapsed = time.perf_counter() - started
    wall = time.perf_counter() - began
    spent = f"{len(periods)} cycles in {elapsed:.1f} s"
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
    return 0


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
