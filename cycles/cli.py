"""`radar`: the command line. Imports stay lazy so `radar --help` costs almost nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

from cyclopts import App, Parameter

from cycles.errors import DeclarationError, RadarError, UsageError

app = App(
    name="radar",
    help="Run RADAR / PDCA improvement cycles: result, approach, deployment, assessment, review.",
    version_flags=["--version"],
)

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
    if not verbose:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def prefect_api_configured() -> bool:
    """Whether a Prefect API (a real server) is configured, without importing Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, ValueError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return bool(profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


# -- commands -----------------------------------------------------------------------------------


@app.command
def run(
    declaration: str,
    *,
    period: str | None = None,
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
    review
        Assess and review now, without waiting for the period to end.
    dry_run
        Record nothing and run no action.
    json
        Print the cycle as one JSON object.
    prefect
        Run through the outcome's Prefect flow (default: only when a Prefect API is configured).
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.engine import preflight

    outcome = find(declaration)
    preflight(outcome)
    use_prefect = prefect_api_configured() if prefect is None else prefect
    if use_prefect:
        prefect_env(_FLAGS["verbose"])
        from cycles.flow import run_in_flow

        record = run_in_flow(outcome, period, review=review, dry_run=dry_run)
    else:
        from cycles.engine import parse_period, run_cycle
        from cycles.store import Store

        the_period = parse_period(outcome, period)
        store = Store()
        record = run_cycle(outcome, the_period, store=store, review=review, dry_run=dry_run)
    if json:
        console.print_json(record.to_json_dict())
    else:
        console.print_summary(record)
    return 0


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
    from cycles.store import Store

    records = Store().cycles(outcome)
    for record in records:
        record.stages = list(record.completed_stages)
    if json:
        console.print_json([r.to_json_dict() for r in records])
    else:
        console.print_history(records, outcome)
    return 0


@app.command
def validate(declarations: list[str]) -> int:
    """Check declarations (and that their data sources answer) without running anything.

    Parameters
    ----------
    declarations
        Declaration files or declared outcome names.
    """
    from cycles import console
    from cycles.declaration import find
    from cycles.engine import preflight

    failed = 0
    for item in declarations:
        try:
            outcome = find(item)
            preflight(outcome)
        except DeclarationError as exc:
            console.error_line(str(exc))
            failed += 1
            continue
        console.console().print(f"[green]ok[/] {outcome.source or item} ({outcome.outcome})")
    return 2 if failed else 0


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
    return run_demo(use_prefect=prefect)


@app.command
def deploy(
    declarations: list[str] | None = None,
    *,
    pool: str = "radar",
    write_prefect_yaml: Path | None = None,
) -> int:
    """Create or update the Prefect deployments of declared outcomes (schedule and triggers).

    Parameters
    ----------
    declarations
        Declaration files or outcome names; default: every declaration under ./flows.
    pool
        The process work pool the deployments run on (created when missing).
    write_prefect_yaml
        Write the deployments to this prefect.yaml instead of calling Prefect's API.
    """
    from cycles import console
    from cycles.declaration import find, load
    from cycles.declaration.loader import declaration_files
    from cycles.deploy import deploy as deploy_outcome
    from cycles.deploy import ensure_pool, prefect_yaml
    from cycles.schedule import cron_of

    if declarations:
        outcomes = [find(item) for item in declarations]
    else:
        outcomes = [load(path) for path in declaration_files(Path.cwd() / "flows")]
    if not outcomes:
        raise UsageError("no declarations given and none found under ./flows")
    out = console.console()
    if write_prefect_yaml is not None:
        write_prefect_yaml.write_text(prefect_yaml(outcomes, pool=pool), encoding="utf-8")
        out.print(f"wrote {len(outcomes)} deployment(s) to {write_prefect_yaml}")
        return 0
    _require_prefect_api()
    if ensure_pool(pool):
        out.print(f"created work pool {pool!r} (process)")
    for outcome in outcomes:
        deploy_outcome(outcome, pool=pool, workdir=Path.cwd())
        trigger = (
            f"; review {console.duration(outcome.review.delay)} after {outcome.review.after_event}"
            if outcome.review
            else ""
        )
        out.print(
            f"deployed {outcome.outcome}/{outcome.outcome}: cron {cron_of(outcome)!r} "
            f"({outcome.timezone}){trigger}"
        )
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
    event = declared.review.after_event if declared.review else "campaign.ended"
    _require_prefect_api()
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
    delay = declared.review.delay if declared.review else None
    console.console().print(
        f"emitted {event} for radar.outcome.{declared.outcome}"
        + (
            f"; the review runs in {console.duration(delay)}"
            if delay is not None
            else "; the outcome declares no review:, so nothing listens"
        )
    )
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
        console.console().print(f"{store.url} is at revision {after}: nothing to do")
    else:
        console.console().print(f"{store.url}: upgraded from {before or 'empty'} to {after}")
    return 0


def _require_prefect_api() -> None:
    if not prefect_api_configured():
        raise RadarError(
            "no Prefect API configured: start a server (prefect server start) and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )


# -- entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input exits 2 and other failures exit 1, each with one line."""
    from cyclopts import CycloptsError

    tokens = list(sys.argv[1:] if argv is None else argv)
    for flag in ("debug", "verbose"):
        if f"--{flag}" in tokens:
            tokens.remove(f"--{flag}")
            _FLAGS[flag] = True
    try:
        result = app(tokens, result_action="return_value", exit_on_error=False, print_error=False)
    except CycloptsError as exc:
        return _fail(UsageError(_one_line(str(exc))), exc)
    except RadarError as exc:
        return _fail(exc, exc)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:
        wrapped = RadarError(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return _fail(wrapped, exc)
    return result if isinstance(result, int) else 0


def _fail(error: RadarError, cause: BaseException) -> int:
    from cycles import console

    if _FLAGS["debug"]:
        import traceback

        traceback.print_exception(cause)
    console.error_line(_one_line(str(error)))
    return error.exit_code


def _one_line(text: str) -> str:
    lines = [line.strip(" │╭╮╰╯─") for line in text.strip().splitlines()]
    return " ".join(line for line in lines if line)


if __name__ == "__main__":
    sys.exit(main())
