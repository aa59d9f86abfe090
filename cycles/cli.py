"""`radar`: the command line. Imports stay lazy so `radar --help` costs almost nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from cyclopts import App, Group, Parameter

from cycles.errors import DeclarationError, RadarError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cycles.batch import BatchResult
    from cycles.declaration.model import Outcome
    from cycles.record import CycleRecord

app = App(
    name="radar",
    help="Run RADAR / PDCA improvement cycles: result, approach, deployment, assessment, review.",
    version_flags=["--version"],
)

# this invocation's options for every command, set by the meta app (`_every_command`)
_FLAGS = {"debug": False, "verbose": False}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("radar-cycles")
    except PackageNotFoundError:
        return "unknown"


app.version = _version


# -- Prefect, only when it is used ----------------------------------------------------------------


def prefect_env(verbose: bool) -> None:
    """Quiet Prefect before it is imported: no telemetry, no console log lines unless --verbose."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # a temporary server's first start migrates a new database: 10-30 s on a busy 2-core
    # machine, past Prefect's 20 s default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # radar's own loggers (what a Python action printed) go to the flow run's log as well
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "radar")
    if not verbose:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def prefect_api_configured() -> bool:
    """Whether a Prefect API (a real server) is configured: where Prefect 3 reads its settings
    (the environment, `.env`, `prefect.toml`, `pyproject.toml`, the active profile; see
    cycles.prefect_settings) or, when Prefect is imported already, its in-process settings (a
    test or a process embedding radar); Prefect is not imported for this."""
    return bool(prefect_api_url())


def prefect_api_url() -> str | None:
    from cycles.prefect_settings import api_url

    return api_url() or _in_process_api_url()


def _in_process_api_url() -> str | None:
    if "prefect.settings" not in sys.modules:
        return None
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


# -- commands -----------------------------------------------------------------------------------


@app.command
def run(
    declaration: str,
    *,
    period: str | None = None,
    from_: Annotated[str | None, Parameter(name="--from")] = None,
    to: str | None = None,
    review: bool = False,
    dry_run: bool = False,
    json: bool = False,
    prefect: Annotated[bool | None, Parameter(negative="--no-prefect")] = None,
) -> int:
    """Advance one outcome's cycle through every stage that is due.

    Parameters
    ----------
    declaration
        A declaration file (YAML or Python) or the name of a declared outcome.
    period
        The period to run (2026-10, 2026-W43, 2026-Q4); default: the one holding today.
        A period that has not begun is refused (except with --dry-run).
    from_
        Backfill: run every period from this one to --to, oldest first (one line each).
    to
        The last period of a backfill; default: the last period that has ended.
    review
        Assess and review now, without waiting for the period to end.
    dry_run
        Record nothing and run no action.
    json
        Print the cycle as one JSON object (a backfill: a list of them).
    prefect
        Run through the outcome's Prefect flow (default: only when a Prefect API is configured).
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.engine import preflight

    outcome = find(declaration)
    periods = _periods(outcome, period, from_, to, dry_run=dry_run)
    preflight(outcome)
    backfill = from_ is not None
    out = console.console()
    records = []
    for record in _advance(outcome, periods, review=review, dry_run=dry_run, prefect=prefect):
        records.append(record)
        if backfill and not json:
            out.print(console.cycle_line(record))
    if json:
        console.print_json([r.to_json_dict() for r in records] if backfill else
                           records[0].to_json_dict())  # fmt: skip
    elif backfill:
        out.print(console.history_note(len(records), "period", dry_run=dry_run))
    else:
        console.print_summary(records[0])
    return 0


def _periods(
    outcome: Outcome, period: str | None, first: str | None, last: str | None, *, dry_run: bool
) -> list[str]:
    """The periods `radar run` advances, checked before anything runs."""
    from cycles.engine import parse_period, refuse_future, today_in

    today = today_in(outcome)
    if first is None:
        if last is not None:
            raise UsageError("--to needs --from (a backfill runs from one period to another)")
        the_period = parse_period(outcome, period, today)
        if not dry_run:
            refuse_future(outcome, the_period, today)
        return [str(the_period)]
    if period is not None:
        raise UsageError("give either --period or --from/--to, not both")
    start = parse_period(outcome, first, today)
    end = parse_period(outcome, last, today) if last is not None else (
        parse_period(outcome, None, today) - 1
    )  # fmt: skip
    if end < start:
        raise UsageError(f"--from {start} comes after --to {end}: nothing to run")
    if not dry_run:
        refuse_future(outcome, end, today)
    return [str(start + i) for i in range(end.index - start.index + 1)]


def _advance(
    outcome: Outcome, periods: list[str], *, review: bool, dry_run: bool, prefect: bool | None
) -> Iterator[CycleRecord]:
    """Each period's cycle in turn, through its Prefect flow or in-process."""
    configured = prefect_api_configured()
    if configured if prefect is None else prefect:
        prefect_env(_FLAGS["verbose"])
        from cycles.temporary_server import TemporaryServer, api

        server = None if configured else TemporaryServer().start()
        from cycles.flow import run_in_flow  # imports Prefect while the server starts

        with api(server):
            for period in periods:
                yield run_in_flow(outcome, period, review=review, dry_run=dry_run)
        return
    from cycles import console
    from cycles.engine import parse_period, run_cycle

    store = console.open_history(create=not dry_run)
    for period in periods:
        yield run_cycle(outcome, parse_period(outcome, period), store=store, review=review,
                        dry_run=dry_run)  # fmt: skip


@app.command
def tick(declaration: str, *, json: bool = False) -> int:
    """One PDCA turn now, without Prefect: review what ended and is due, open the current period.

    What a deployment's scheduled run does at the start of each period. A review that is not due
    yet (its delay, its event) is said, not run.

    Parameters
    ----------
    declaration
        A declaration file or the name of a declared outcome.
    json
        Print a JSON list of the cycles that ran (reviews first, then the opened period).
    """
    from cycles import clock, console
    from cycles.declaration import find
    from cycles.engine import preflight, run_cycle
    from cycles.turn import deadline_reason, local_time, pending_text, plan

    outcome = find(declaration)
    preflight(outcome)
    store = console.open_history()
    assert store is not None
    now = clock.now()
    turn = plan(outcome, store.cycles(outcome.outcome, light=True), now, now)
    records = [
        run_cycle(outcome, due.period, store=store, review=True, repeat_review=False,
                  reason=deadline_reason(outcome, due.period) if due.deadline else "")
        for due in turn.closing
    ]  # fmt: skip
    records.append(run_cycle(outcome, turn.opening, store=store))
    waiting = []
    for due in turn.waiting:
        cycle = store.get_cycle(outcome.outcome, str(due.period))
        why = pending_text(outcome, cycle) if cycle else f"review of {due.period} pending"
        why += f" (by {local_time(outcome, due.due_at)})"
        store.mark_pending(outcome.outcome, str(due.period), why)
        waiting.append(why)
    if json:
        console.print_json([r.to_json_dict() for r in records])
        return 0
    out = console.console()
    for record in records:
        out.print(console.cycle_line(record))
    for why in waiting:
        out.print(f"[dim]{console.escape(why)}[/]")
    out.print(console.history_note(len(records), "cycle"))
    return 0


@app.command
def void(outcome: str, period: str, *, reason: str) -> int:
    """Set a recorded cycle aside: kept and shown, ignored by the policy from now on.

    A void cycle counts in no baseline, signal, adjustment count or score, and its plan is not
    followed: voiding the last reviewed period re-plans the next opening from the review before.
    Actions it ran stay done.

    Parameters
    ----------
    outcome
        The outcome's identifier (or its declaration file).
    period
        The period of the cycle (2026-10, 2026-W43, 2026-Q4).
    reason
        Why (kept with the cycle).
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.errors import StoreError
    from cycles.stages import choose_approach
    from cycles.turn import VOID

    declared = find(outcome)
    if not reason.strip():
        raise UsageError("--reason: say why the cycle is void")
    the_period = _parse(declared, period)
    store = console.open_history(create=False)
    if store is None:
        raise UsageError(f"no history here: nothing of {declared.outcome} is recorded")
    try:
        record = store.void_cycle(declared.outcome, str(the_period), reason.strip())
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    kept = [c for c in store.cycles(declared.outcome, light=True) if c.status != VOID]
    before = [c for c in kept if c.period < str(the_period)]
    after = [c for c in kept if c.period > str(the_period)]
    out = console.console()
    out.print(f"{declared.outcome}/{record.period} is void: {console.escape(reason.strip())}")
    if not after:
        approach, why = choose_approach(declared, before)
        out.print(
            f"the next opening runs {console.escape(console.approach_text(approach))} "
            f"({console.escape(why)})"
        )
    out.print(console.history_note(1, "cycle"))
    return 0


def _parse(outcome: Outcome, period: str) -> Any:
    from cycles.engine import parse_period

    return parse_period(outcome, period)


@app.command
def outcomes(*, json: bool = False) -> int:
    """List the declared outcomes: cadence, last period, last decision, where each is declared.

    Parameters
    ----------
    json
        Print a JSON list of objects.
    """
    from cycles import console
    from cycles.declaration.loader import declared_outcomes

    store = console.open_history(create=False)
    rows = []
    for path, outcome, error in declared_outcomes():
        cycles = store.cycles(outcome.outcome, light=True) if store and outcome else []
        last = cycles[-1] if cycles else None
        rows.append({
            "outcome": outcome.outcome if outcome else None,
            "title": outcome.title if outcome else None,
            "cadence": outcome.cadence.value if outcome else None,
            "last_period": last.period if last else None,
            "last_decision": last.decision.value if last and last.decision else None,
            "status": last.status if last else None,
            "declaration": str(path),
            "error": error,
        })  # fmt: skip
    if json:
        console.print_json(rows)
    else:
        console.print_outcomes(rows, store.url if store else None)
    return 0


@app.command(name="run-all")
def run_all(
    declarations: list[str],
    *,
    period: str | None = None,
    review: bool = False,
    dry_run: bool = False,
    workers: int | None = None,
    json: bool = False,
) -> int:
    """Advance many outcomes' cycles at once, in parallel worker processes (no Prefect flows).

    One line per outcome as its cycle ends; a failing outcome does not stop the others, and
    the command then exits 1 (2 when every outcome failed on its declaration or --period).

    Parameters
    ----------
    declarations
        Declaration files, directories (every declaration under them) or declared outcome names.
    period
        The period to run; default: each outcome's current one.
    review
        Assess and review now, without waiting for the period to end.
    dry_run
        Record nothing and run no action.
    workers
        How many cycles run at a time, each in a worker process; default: one per CPU.
    json
        Print a JSON list: each outcome's cycle object with `source` and `error` (null if ok).
    """
    import time

    from cycles import console
    from cycles.batch import default_workers, run_many
    from cycles.declaration import find
    from cycles.declaration.loader import declaration_files

    if workers is not None and workers < 1:
        raise UsageError(f"--workers: must be at least 1, not {workers}")
    items: list[Path | Outcome] = []
    for item in declarations:
        if Path(item).is_dir() and not declaration_files(Path(item)):
            raise UsageError(f"no declarations under {item}")
        items.append(Path(item) if Path(item).exists() else find(item))  # find: a name, or why not
    out, clock = console.console(), time.perf_counter()
    tally: dict[str, int] = {}  # outcomes by decision, "not reviewed" or "failed"
    failures: list[int] = []  # their exit codes
    done: list[BatchResult] = []  # kept for --json only
    for result in run_many(items, period, workers=workers or default_workers(), review=review,
                           dry_run=dry_run):  # fmt: skip
        if json:
            done.append(result)
        else:
            out.print(console.outcome_line(result.outcome, result.period, result.record,
                                           result.error))  # fmt: skip
        kind = "failed" if result.error else result.decision or "not reviewed"
        tally[kind] = tally.get(kind, 0) + 1
        if result.error:
            failures.append(result.exit_code)
    if json:
        console.print_json([_run_all_json(r) for r in sorted(done, key=lambda r: r.source)])
    else:
        out.print(console.run_all_summary(tally, time.perf_counter() - clock, dry_run=dry_run))
    total = sum(tally.values())
    if not failures:
        return 0
    console.error_line(f"{len(failures)} of {total} outcomes failed")
    return 2 if len(failures) == total and set(failures) == {2} else 1


def _run_all_json(result: BatchResult) -> dict[str, Any]:
    """The cycle object of `radar run --json`, or its keys (empty) for an outcome that failed."""
    nulls = ("decision", "approach", "next_approach", "result_value", "target", "checks", "limits")
    blank: dict[str, Any] = {"outcome": result.outcome, "period": result.period}
    blank |= {"stages": [], "reasons": [], **dict.fromkeys(nulls)}
    data = result.record.to_json_dict() if result.record else blank
    return {**data, "source": result.source, "error": result.error}


@app.command
def history(outcome: str, *, json: bool = False) -> int:
    """List the recorded cycles of an outcome with their decisions.

    Parameters
    ----------
    outcome
        The outcome's identifier.
    json
        Print a JSON list of cycles.
    """
    from cycles import console
    from cycles.store import default_url
    from cycles.store.fastread import read_cycles
    from cycles.urls import sqlite_file

    outcome = _outcome_id(outcome)
    url = default_url()
    file = sqlite_file(url)
    records = [] if file is not None and not file.exists() else read_cycles(url, outcome)
    if records is None:  # without SQLAlchemy when it can; else the Store
        store = console.open_history(create=False)
        records = store.cycles(outcome) if store else []
    if not records:
        _known_outcome(outcome, url)
    for record in records:
        record.stages = list(record.completed_stages)
    if json:
        console.print_json([r.to_json_dict() for r in records])
    else:
        console.print_history(records, outcome, where=url)
    return 0


def _outcome_id(name_or_path: str) -> str:
    """An outcome's identifier, also when it is given as its declaration file."""
    from cycles.declaration.loader import YAML_SUFFIXES

    path = Path(name_or_path)
    if path.suffix in (*YAML_SUFFIXES, ".py") and path.is_file():
        from cycles.declaration import load

        return load(path, env="keep").outcome
    return name_or_path


def _known_outcome(name: str, url: str) -> None:
    """An outcome with no cycles must at least be declared (or recorded): else a usage error
    with the nearest names."""
    import difflib

    from cycles.declaration import find
    from cycles.declaration.loader import declared_names

    try:
        find(name)
        return
    except DeclarationError:
        pass
    from cycles import console

    store = console.open_history(create=False)
    known = sorted(set(declared_names()) | set(store.outcomes() if store else []))
    hint = difflib.get_close_matches(name, known, n=1)
    raise UsageError(
        f"unknown outcome {name!r}"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + f"; known: {', '.join(known) or 'none'}"
    )


@app.command
def report(
    outcome: str | None = None,
    *,
    html: Path | None = None,
    png: Path | None = None,
    all_: Annotated[bool, Parameter(name="--all", negative="")] = False,
) -> int:
    """Chart an outcome's cycles: XmR charts of the result and drivers, decisions, RADAR score.

    Parameters
    ----------
    outcome
        The outcome's identifier.
    html
        Write a self-contained HTML page here (works offline); default: reports/OUTCOME.html
        when no --png is given either.
    png
        Write the charts as a PNG image here.
    all_
        Every declared outcome: the portfolio page reports/index.html, laid out as the
        outcomes' hierarchy (parent:), and reports/OUTCOME.html for each one with cycles.
    """
    from cycles import console
    from cycles.report import build_report
    from cycles.report.vega import write

    if all_:
        if outcome is not None or html is not None or png is not None:
            raise UsageError("--all writes every declared outcome into reports/: give no OUTCOME, "
                             "--html or --png with it")  # fmt: skip
        return _report_all()
    if outcome is None:
        raise UsageError("give an OUTCOME to chart, or --all for every declared outcome")
    outcome = _outcome_id(outcome)
    store = console.open_history(create=False)
    records = store.cycles(outcome) if store else []
    if not records:
        from cycles.store import default_url

        _known_outcome(outcome, default_url())
        raise RadarError(f"no cycles recorded for {outcome!r} yet: run `radar run {outcome}` first")
    if html is None and png is None:
        html = Path("reports") / f"{outcome}.html"
    for path in write(build_report(records), html_file=html, png_file=png):
        console.console().print(
            console.escape(f"wrote {path} ({len(records)} cycles of {outcome})")
        )
    return 0


@app.command(name="replay")
def replay_command(
    outcome: str,
    *,
    policy: Path | None = None,
    from_: Annotated[str | None, Parameter(name="--from")] = None,
    json: bool = False,
) -> int:
    """Re-decide every recorded period of an outcome from its recorded metrics; writes nothing.

    Under the declared policy a replay reproduces every recorded decision; under another one
    it shows what that policy would have decided, and how long each approach would have run.

    Parameters
    ----------
    outcome
        A declared outcome's name or its declaration file.
    policy
        A YAML file with a `policy:` mapping (as in a declaration) whose keys replace the
        declared ones.
    from_
        Re-decide from this period on; earlier periods stay as recorded.
    json
        Print a JSON list of objects: period, recorded, replayed, reasons (and approaches).
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.replay import load_policy, render, replay

    declared = find(outcome)
    under = f"the declared policy ({declared.source or declared.outcome})"
    if policy is not None:
        declared = load_policy(declared, policy)
        under = f"the policy of {policy}"
    try:
        since = str(_parse(declared, from_)) if from_ is not None else None
    except UsageError as exc:
        raise UsageError(str(exc).replace("--period", "--from", 1)) from None
    store = console.open_history(create=False)
    cycles = store.cycles(declared.outcome) if store else []
    if not cycles:
        raise RadarError(
            f"no cycles recorded for {declared.outcome!r} yet: run `radar run "
            f"{declared.outcome}` first"
        )
    result = replay(declared, cycles, since=since)
    if json:
        console.print_json([row.to_json_dict() for row in result.rows])
        return 0
    out = console.console()
    for line in render(result, under=under):
        out.print(line)
    return 0


def _report_all(directory: Path = Path("reports")) -> int:
    """`radar report --all`: the portfolio page and each outcome's report."""
    from cycles import clock, console
    from cycles.report.portfolio import write_all

    store = console.open_history(create=False)
    where = console.shown_url(store.url) if store else ""
    index, reports = write_all(store, directory, now=clock.now(), history=where)
    out = console.console()
    for path in reports:
        out.print(console.escape(f"wrote {path}"))
    out.print(console.escape(f"portfolio: {index}"))
    return 0


@app.command(name="simulate")
def simulate_command(
    declaration: str,
    *,
    periods: int = 12,
    before: str | None = None,
    series: int = 200,
    json: bool = False,
) -> int:
    """What a declaration's policy would do on series shaped like its own data.

    The result metric's level and XmR σ come from its baseline (read through the declaration's
    connector), for a proportion also the binomial noise of its counts. Reports false
    improvement signals on a stable process, how soon shifts of 1, 2 and 3 σ (and the target)
    are caught, and how often the first approach is switched away from when it works or kept
    when it does not. Runs nothing, writes nothing.

    Parameters
    ----------
    declaration
        A declaration file or the name of a declared outcome.
    periods
        Reviewed periods per simulated series.
    before
        The baseline is the policy's baseline_periods before this period; default: the first
        recorded cycle's period, else the current period.
    series
        Simulated series per case.
    json
        Print one JSON object: false_per_period, caught, sigma, unit_shift and more.
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.simulate import render

    outcome = find(declaration)
    if not 1 <= periods <= 120:
        raise UsageError(f"--periods: from 1 to 120, not {periods}")
    if not 20 <= series <= 100_000:
        raise UsageError(f"--series: from 20 to 100000, not {series}")
    sim = _simulation(outcome, before, periods=periods, series=series)
    if json:
        console.print_json(sim.to_json_dict())
        return 0
    out = console.console()
    for line in render(sim):
        out.print(line)
    return 0


def _simulation(outcome: Outcome, before: str | None, **options: int) -> Any:
    """The simulation of `radar simulate` (cycles.simulate) from the outcome's baseline."""
    from cycles.engine import parse_period
    from cycles.periods import Period
    from cycles.simulate import read_baseline, simulate

    if before is not None:
        try:
            start = parse_period(outcome, before)
        except UsageError as exc:
            raise UsageError(str(exc).replace("--period", "--before", 1)) from None
    else:  # the baseline the first cycle was judged on; before any cycle, the latest periods
        from cycles import console

        store = console.open_history(create=False)
        recorded = store.cycles(outcome.outcome, light=True) if store else []
        start = (
            Period.parse(recorded[0].period, outcome.cadence)
            if recorded
            else parse_period(outcome, None)
        )
    return simulate(outcome, read_baseline(outcome, start), **options)


def _print_simulation(outcome: Outcome) -> None:
    """`radar validate --simulate`: the simulation under the declaration's ok line."""
    from cycles import console
    from cycles.simulate import render

    out = console.console()
    try:
        sim = _simulation(outcome, None)
    except RadarError as exc:
        out.print(f"  [yellow]cannot simulate[/] {console.escape(_one_line(str(exc)))}")
        return
    for line in render(sim):
        out.print(f"  {line}" if line else "")


@app.command
def validate(declarations: list[str], *, simulate: bool = False) -> int:
    """Check declarations (and that their data sources answer) without running anything.

    Parameters
    ----------
    declarations
        Declaration files or declared outcome names.
    simulate
        Also show what each policy would do on series like its data (`radar simulate`).
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.diagnose import baseline_warnings
    from cycles.engine import preflight, today_in
    from cycles.hierarchy import check_parent

    found: list[tuple[str, Outcome | DeclarationError]] = []
    for item in declarations:
        try:
            outcome = find(item)
            preflight(outcome)
            found.append((item, outcome))
        except DeclarationError as exc:
            found.append((item, exc))
    parents: dict[str, str | None] = {}
    if any(not isinstance(o, DeclarationError) and o.parent for _, o in found):
        parents = _declared_parents([o for _, o in found if not isinstance(o, DeclarationError)])
    failed = 0
    for item, checked in found:
        try:
            if isinstance(checked, DeclarationError):
                raise checked
            check_parent(checked, parents)  # a declared parent, no cycle of parents
        except DeclarationError as exc:
            console.error_line(_one_line(str(exc)))  # one line per declaration, like main()
            failed += 1
            continue
        where = console.escape(f"{checked.source or item} ({checked.outcome})")
        console.console().print(f"[green]ok[/] {where}")
        for warning in baseline_warnings(checked, today_in(checked)):  # seasonality, r1 > 0.5
            console.console().print(f"[yellow]warning[/] {console.escape(warning)}")
        if simulate:
            _print_simulation(checked)
    return 2 if failed else 0


def _declared_parents(given: list[Outcome]) -> dict[str, str | None]:
    """Each declared outcome's parent (as `radar outcomes` finds them), the ones given on the
    command line included; a declaration that does not load still names an outcome."""
    from cycles.declaration.loader import declared_names, declared_outcomes

    parents: dict[str, str | None] = dict.fromkeys(declared_names())
    parents |= {o.outcome: o.parent for _, o, _ in declared_outcomes() if o is not None}
    return parents | {o.outcome: o.parent for o in given}


@app.command
def demo(*, prefect: Annotated[bool, Parameter(negative="--no-prefect")] = True) -> int:
    """Run the bundled example outcome over its sample data, period by period.

    Parameters
    ----------
    prefect
        Run each cycle as a Prefect flow run (on a temporary local server when none is
        configured), so the runs can be seen in the Prefect UI afterwards.
    """
    from cycles.demo import run_demo

    if prefect:
        prefect_env(_FLAGS["verbose"])
    return run_demo(use_prefect=prefect, start_server=prefect and not prefect_api_configured())


@app.command
def deploy(
    declarations: list[str] | None = None,
    *,
    pool: str = "radar",
    write_prefect_yaml: Path | None = None,
    shards: int | None = None,
    concurrency: int = 4,
    job_variables: str | None = None,
) -> int:
    """Create or update the Prefect deployments of declared outcomes (schedule and triggers).

    Parameters
    ----------
    declarations
        Declaration files or outcome names; default: every declaration under ./flows.
    pool
        The work pool the deployments run on (a process pool is created when missing).
    write_prefect_yaml
        Write the deployments to this prefect.yaml instead of calling Prefect's API.
    shards
        Tick the outcomes from N deployments per schedule, `radar-tick/<cadence>-<k>of<N>`, each
        ticking its share of them in one process; their own deployments keep no schedule.
        0 deletes the tick deployments (each outcome's own schedule ticks it again).
    concurrency
        With --shards: outcomes a tick runs at once (1 to 8).
    job_variables
        JSON object added to every deployment's job variables (`image` for a Docker or
        Kubernetes pool; `env` is merged).
    """
    import json as _json

    from cycles import console
    from cycles.declaration import find, load
    from cycles.declaration.loader import declaration_files, env_names
    from cycles.deploy import (
        deploy_many,
        deploy_ticks,
        ensure_connector_limits,
        ensure_pool,
        prefect_yaml,
    )
    from cycles.schedule import cron_of
    from cycles.shards import group_of

    if shards is not None and shards < 0:
        raise UsageError("--shards: a number of shards, 0 or more")
    if not 1 <= concurrency <= 8:
        raise UsageError("--concurrency: from 1 to 8 outcomes at once")
    try:
        extra = _json.loads(job_variables) if job_variables else None
    except ValueError as exc:
        raise UsageError(f"--job-variables: not JSON ({exc})") from None
    if extra is not None and not isinstance(extra, dict):
        raise UsageError('--job-variables: a JSON object, e.g. \'{"image": "radar:1"}\'')

    # secrets belong where the worker runs: a `${NAME}` that is not set here stays as written
    if declarations:
        outcomes = [find(item, env="keep") for item in declarations]
    else:
        outcomes = [load(path, env="keep") for path in declaration_files(Path.cwd() / "flows")]
    if not outcomes:
        raise UsageError("no declarations given and none found under ./flows")
    out = console.console()
    if write_prefect_yaml is not None:
        where = write_prefect_yaml.resolve().parent
        text = prefect_yaml(outcomes, pool=pool, workdir=where, shards=shards,
                            concurrency=concurrency, job_variables=extra)  # fmt: skip
        write_prefect_yaml.write_text(text, encoding="utf-8")
        out.print(console.escape(f"wrote {len(outcomes)} deployment(s) to {write_prefect_yaml}"))
        return 0
    _require_prefect_api(reachable=True)
    if ensure_pool(pool):
        out.print(f"created work pool {pool!r} (process)")
    deploy_many(outcomes, pool=pool, workdir=Path.cwd(), scheduled=not shards,
                job_variables=extra)  # fmt: skip
    for outcome in outcomes:
        review = outcome.review
        when = (
            f"; review {console.duration(review.delay)} after {review.after_event}"
            if review and review.after_event
            else f"; reviews {console.duration(review.delay)} after each period"
            if review and review.delay
            else ""
        )
        names = env_names(outcome)
        needs = f"; the worker needs {', '.join(names)}" if names else ""
        ticked = f"cron {cron_of(outcome)!r}"
        if shards and outcome.schedule.active:
            ticked = f"ticked by radar-tick/{group_of(outcome).label}-*of{shards}"
        out.print(
            console.escape(
                f"deployed {outcome.outcome}/{outcome.outcome} from {outcome.source}: "
                f"{ticked} ({outcome.timezone}){when}{needs}"
            )
        )
    lines = ensure_connector_limits(outcomes)
    if shards is not None:
        lines += deploy_ticks(outcomes, shards=shards, pool=pool, workdir=Path.cwd(),
                              concurrency=concurrency, job_variables=extra)  # fmt: skip
    for line in lines:
        out.print(console.escape(line))
    out.print(f"start a worker: prefect worker start --pool {pool}")
    return 0


@app.command(name="campaign-ended")
def campaign_ended(outcome: str, *, campaign: str | None = None, period: str | None = None) -> int:
    """Emit the event that starts an outcome's review after its attribution delay.

    Parameters
    ----------
    outcome
        The outcome's identifier (or its declaration file).
    campaign
        The campaign that ended (kept with the review).
    period
        The period to review; default: the current one when the review runs.
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.engine import parse_period

    declared = find(outcome)
    if period is not None:
        period = str(parse_period(declared, period))
    event = (declared.review.after_event if declared.review else None) or "campaign.ended"
    _require_prefect_api(reachable=True)
    prefect_env(_FLAGS["verbose"])
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    emitted = emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"radar.outcome.{declared.outcome}",
            "prefect.resource.name": declared.outcome,
        },
        payload={"campaign": campaign, "period": period},
    )
    EventsWorker.drain_all()
    if emitted is None:
        raise RadarError(f"could not emit {event!r}: is the Prefect API reachable?")
    listens = declared.review is not None and declared.review.after_event == event
    delay = declared.review.delay if declared.review else None
    said = f"emitted {event} for radar.outcome.{declared.outcome}" + (
        f"; the review runs in {console.duration(delay)}"
        if listens and delay is not None
        else "; the outcome declares no review.after_event, so nothing listens"
    )
    console.console().print(console.escape(said))
    return 0


db = App(name="db", help="The history database.")
app.command(db)


@db.command
def upgrade() -> int:
    """Apply the history database's migrations (also done on first use of an empty database)."""
    from cycles import console
    from cycles.store import Store

    store = Store(migrate=False)
    before = store.revision()
    store.upgrade()
    after = store.revision()
    if before == after:
        said = f"{store.url} is at revision {after}: nothing to do"
        console.console().print(console.escape(said))
    else:
        console.console().print(
            console.escape(f"{store.url}: upgraded from {before or 'empty'} to {after}")
        )
    return 0


def _require_prefect_api(*, reachable: bool = False) -> None:
    """A Prefect API is configured (and, with `reachable`, answers), else one line saying what
    to start."""
    if not prefect_api_configured():
        raise RadarError(
            "no Prefect API configured: start a server (prefect server start) and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    if reachable:
        import httpx

        url = (prefect_api_url() or "").rstrip("/")
        try:
            httpx.get(f"{url}/health", timeout=5)  # any answer will do: the server is there
        except httpx.TransportError as exc:
            raise RadarError(
                f"cannot reach the Prefect API at {url} ({type(exc).__name__}): start it with "
                "`prefect server start`, or point PREFECT_API_URL at a running server"
            ) from None


# -- entry point --------------------------------------------------------------------------------


EVERY = Group("Every command", sort_key=99)  # shown after a command's own parameters


@app.meta.default
def _every_command(
    *tokens: Annotated[str, Parameter(show=False, allow_leading_hyphen=True)],
    debug: Annotated[bool, Parameter(negative="", show_default=False, group=EVERY)] = False,
    verbose: Annotated[bool, Parameter(negative="", show_default=False, group=EVERY)] = False,
) -> Any:
    """Options of every command, before or after it; the command runs with them.

    Parameters
    ----------
    debug
        On failure, print the traceback (secrets redacted) before the one-line error.
    verbose
        Show Prefect's log lines and its temporary server's messages.
    """
    _FLAGS.update(debug=debug, verbose=verbose)
    return app(tokens)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input exits 2 and other failures exit 1, each with one line."""
    from cyclopts import CycloptsError

    from cycles import console

    console.NEW_HISTORY.clear()  # a new history is told about by the command that made it
    _FLAGS.update(debug=False, verbose=False)  # until the meta app has read this command line
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app.meta(
            tokens, result_action="return_value", exit_on_error=False, print_error=False
        )
    except CycloptsError as exc:
        return _fail(UsageError(_one_line(str(exc))), exc)
    except RadarError as exc:
        return _fail(exc, exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `radar ... | head`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:
        wrapped = RadarError(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return _fail(wrapped, exc)
    try:
        console.tell_new_history()
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    return result if isinstance(result, int) else 0


def _quiet_stdout() -> None:
    """After the reader of stdout went away: send what is left nowhere, so Python's exit flush
    does not print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _fail(error: RadarError, cause: BaseException) -> int:
    from cycles import console

    if _FLAGS["debug"]:
        import traceback

        from cycles.secrets import redact

        sys.stderr.write(redact("".join(traceback.format_exception(cause))))
    console.error_line(_one_line(str(error)))
    return error.exit_code


def _one_line(text: str) -> str:
    lines = [line.strip(" │╭╮╰╯─") for line in text.strip().splitlines()]
    return " ".join(line for line in lines if line)


if __name__ == "__main__":
    sys.exit(main())
