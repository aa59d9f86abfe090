"""Crash safety: `radar run` SIGKILLed at random moments in every stage, then re-run.

Four outcomes (one cycle each, the current period, `--review`, so all five stages run and the
Deployment stage really executes) each have three webhook actions that point at a receiver on
127.0.0.1. The receiver logs every request with its `Idempotency-Key` and answers
`200 {"reach": 10}` after a random delay, so kills also land while a request is in flight.

First the same outcomes run uninterrupted on a fresh history of their own: that gives the
decisions to compare with and how long each stage takes. Then, on another fresh history, each
cycle is driven by a loop that starts `radar run ...` (`crash_child.py`), watches the history
database (completed stages; the run lock: SQLite's lock file names its holder's pid,
PostgreSQL's advisory lock shows in pg_locks under the run's application_name) and SIGKILLs
the process at a random moment inside a target stage (a random delay after the stage opened,
drawn over that stage's measured duration), then re-runs it, until a run completes. A target
stage that has not opened yet when the watcher picks it is left to the run itself
(`crash_child.py`: a timer thread SIGKILLs the process that delay after the stage opens), as
polling from outside cannot hit a stage of a few milliseconds. Where a
kill really landed is read back from the history after the kill (first stage not completed;
for the Deployment stage also whether a ledger row was pending and the receiver had the
request), not assumed from the target.

The test then asserts: at least 20 kills; every stage was hit; every action key reached the
receiver; no other key ever did; each key was sent no more often than the ledger counted
attempts (a re-send with the same key after a kill between sending and recording is allowed,
counted and reported); every ledger row `succeeded`; every cycle is in the history once with
each stage completed exactly once and no failed stage run; no re-run failed (in particular
not with "already running": the lock of a killed run must not outlive it); and each cycle's
decision, reasons and approaches equal those of the uninterrupted run.

With `RADAR_TEST_POSTGRES_URL` set, the whole thing also runs on PostgreSQL, in schemas the
test creates and drops. Run with `-s` to see the report (it is also in assertion messages).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cycles.periods import Cadence, Period

from conftest import months, write_declaration, write_monthly_csv

STAGES = ("result", "approach", "deployment", "assessment", "review")
CHILD = Path(__file__).with_name("crash_child.py")  # `radar`, killing itself when asked
ACTIONS = ("ask", "remind", "thank")
APPROACH = "incentive"
CONCURRENT = 2  # cycles driven at once (this is a 2-core machine)
MIN_KILLS = 20  # kills that land inside a stage
SPARE_KILLS = 2  # planned beyond that: a run may end (or pass its review) before its kill
RUN_TIMEOUT = 120.0  # seconds one `radar run` may take before the test gives up on it

# Monthly values of the result metric: 14 noisy baseline months, then the current month.
BASELINE = [0.200, 0.204, 0.198, 0.202, 0.196, 0.203, 0.199,
            0.201, 0.197, 0.205, 0.200, 0.198, 0.202, 0.199]  # fmt: skip
OUTCOMES: dict[str, dict[str, Any]] = {  # one cycle each, decisions of every kind but achieved
    "steady": {"current": 0.201},  # no signal, target missed: adjust
    "rising": {"current": 0.260},  # improvement signal: keep
    "falling": {"current": 0.150},  # deterioration signal: switch
    "broken": {"current": 0.200, "broken": 2},  # a data check fails: hold
}
# Reserves, run only if kills are still owed at the end (see Suite.drive): adjust. A run can end
# before its kill (a kill drawn late in a short stage lands after the Review), and each
# reserve's fresh cycle is one more chance at the stages still owed.
RESERVE = tuple(f"spare-{c}" for c in "abcdefgh")
OUTCOMES |= {name: {"current": 0.199 + 0.0005 * i} for i, name in enumerate(RESERVE)}


def _actions_yaml(receiver: str, outcome: str) -> str:
    """The approach's webhook actions, each to its own path on the receiver."""
    lines = ["    actions:"]
    for name in ACTIONS:
        lines += [
            f"      - name: {name}",
            "        type: webhook",
            f"        url: {receiver}/hooks/{outcome}/{name}",
            '        payload: {usd: "{params.usd}", period: "{period}"}',
        ]
    return "\n".join(lines) + "\n"


# -- the webhook receiver ------------------------------------------------------------------------


@dataclass
class Hit:
    key: str | None
    path: str
    body: Any
    arrived: float  # time.monotonic()
    answered: float | None = None  # when the reply was written (None: never)


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1 that logs every request and answers after a delay."""

    def __init__(self, seed: int, delay: tuple[float, float] = (0.05, 0.35)) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._delay = delay
        self._stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner._handle(self)

            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        hit = Hit(handler.headers.get("Idempotency-Key"), handler.path, body, time.monotonic())
        with self._lock:
            self.hits.append(hit)
            delay = self._random.uniform(*self._delay)
        if self._stop.wait(delay):
            return
        payload = b'{"reach": 10}'
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
        except OSError:
            pass  # the client was killed while waiting
        hit.answered = time.monotonic()

    def snapshot(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)

    def __enter__(self) -> Receiver:
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


# -- watching a history database from outside ---------------------------------------------------


class Probe:
    """Reads a history database while `radar run` processes write it (never writes itself)."""

    def __init__(self, url: str, lockdir: Path | None) -> None:
        import sqlalchemy as sa

        from cycles.store import normalise_url

        self.url = url
        self.lockdir = lockdir  # SQLite: the directory of the run locks' files
        self.kind = "sqlite" if url.startswith("sqlite") else "postgresql"
        # SQLite: not opened before a run holds its lock (schema made, WAL mode set), so that
        # this reader never races the first run's `PRAGMA journal_mode = WAL` or migration.
        self.ready = self.kind != "sqlite"
        self.engine = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        import sqlalchemy as sa

        if not self.ready:
            return []
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        except sa.exc.ProgrammingError:  # PostgreSQL: no tables yet
            return []
        except sa.exc.OperationalError as exc:  # SQLite: no tables yet
            if "no such table" in str(exc):
                return []
            raise

    def lock_held_by(self, pid: int, app: str) -> bool:
        """Whether the run `pid` (application_name `app` on PostgreSQL) holds its run lock."""
        if self.kind == "sqlite":
            assert self.lockdir is not None
            if not self.lockdir.is_dir():
                return False
            for path in self.lockdir.glob("*.lock"):
                try:
                    if path.read_text().startswith(f"pid {pid} "):
                        self.ready = True
                        return True
                except OSError:
                    pass
            return False
        rows = self._rows(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :app "
            "AND NOT (l.classid = 0 AND l.objid = 1380009025)",  # the migration lock, "RADA"
            app=app,
        )
        return bool(rows)

    def connected(self, app: str) -> bool:
        """Whether the run has begun opening the history (SQLite: the file exists)."""
        if self.kind == "sqlite":
            return Path(self.engine.url.database or "").exists()
        rows = self._rows("SELECT 1 FROM pg_stat_activity WHERE application_name = :app", app=app)
        return bool(rows)

    def schema_version(self) -> str | None:
        """The history's schema revision (None: not created), read while no run is going."""
        if self.kind == "sqlite":
            import sqlite3

            path = Path(self.engine.url.database or "")
            if not path.exists():
                return None
            with closing(sqlite3.connect(path)) as conn:
                try:
                    rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
                except sqlite3.OperationalError:
                    return None
        else:
            rows = self._rows("SELECT version_num FROM alembic_version")
        return rows[0][0] if rows else None

    def completed(self, outcome: str, period: str) -> list[str]:
        rows = self._rows(
            "SELECT completed_stages FROM cycles WHERE outcome = :o AND period = :p",
            o=outcome, p=period,
        )  # fmt: skip
        if not rows:
            return []
        value = rows[0][0]
        return list(json.loads(value) if isinstance(value, str) else value)

    def ledger(self, outcome: str) -> dict[str, tuple[str, int]]:
        rows = self._rows("SELECT key, status, attempts FROM actions WHERE outcome = :o", o=outcome)
        return {key: (status, attempts) for key, status, attempts in rows}

    def dispose(self) -> None:
        self.engine.dispose()


# -- driving one cycle through kills ------------------------------------------------------------

# How long a stage lasts until the watcher sees it committed, before any run has shown it
# (seconds). Result includes importing pandas; the Deployment stage waits for the receiver.
FIRST_GUESS = {"start-up": 0.8, "result": 0.6, "approach": 0.015, "deployment": 0.5, "assessment": 0.015,
               "review": 0.015}  # fmt: skip


@dataclass
class Kill:
    outcome: str
    target: str
    stage: str  # where it landed: start-up, a stage, or "exit" (after the review was recorded)
    detail: str = ""  # Deployment: what the action being run had got to
    after: float = 0.0  # seconds after the process started


@dataclass
class Timeline:
    """What the watcher saw of one run (monotonic seconds)."""

    spawned: float
    first_due: int  # index of the first stage not completed when the run started
    lock: float | None = None
    commits: dict[str, float] = field(default_factory=dict)


class Driver:
    """Runs one outcome's cycle again and again, killing runs inside chosen stages.

    Each run's target is the stage (not yet completed) with the fewest kills so far over all
    drivers, the earliest on a tie; the kill comes a random delay after the watcher sees that
    stage open, drawn over the stage's usual duration. `quota` kills land inside stages; a run
    that ends before its kill gives its share to the other drivers.
    """

    def __init__(self, suite: Suite, outcome: str, quota: int, startup_kill: bool) -> None:
        self.suite = suite
        self.outcome = outcome
        self.quota = quota
        self.app = f"radar-crash-{outcome}-{uuid.uuid4().hex[:6]}"
        self.kills: list[Kill] = []
        self.runs = 0
        self.failures: list[str] = []
        self.output: dict[str, Any] | None = None
        self.done = False
        self.target: str | None = None
        self._startup_kill = startup_kill
        self._progress = 0  # stages completed when the next run starts
        self._calm = False  # after a kill past the review: no more kills for this cycle
        self._proc: subprocess.Popen[str] | None = None
        self._deadline: float | None = None
        self._inside = False  # the run was asked to kill itself inside its target stage
        self._idle_until = 0.0

    @property
    def stage_kills(self) -> int:
        return sum(k.stage in STAGES for k in self.kills)

    def start(self) -> None:
        suite = self.suite
        run_dir = suite.root / "runs"
        run_dir.mkdir(exist_ok=True)
        self.runs += 1
        self._out = run_dir / f"{self.outcome}-{self.runs}.out"
        self._err = run_dir / f"{self.outcome}-{self.runs}.err"
        self._kill_file = run_dir / f"{self.outcome}-{self.runs}.kill"
        env = {**suite.env, "RADAR_DATABASE_URL": suite.url_for(self.app),
               "RADAR_CRASH_KILL_FILE": str(self._kill_file)}  # fmt: skip
        decl = suite.declarations[self.outcome]
        command = [sys.executable, str(CHILD), "run", str(decl), "--period", suite.period,
                   "--review", "--json", "--no-prefect"]  # fmt: skip
        with self._out.open("w") as out, self._err.open("w") as err:
            self._proc = subprocess.Popen(
                command, cwd=decl.parent, env=env, stdout=out, stderr=err, text=True
            )
        self._line = Timeline(time.monotonic(), self._progress)
        self.target, self._deadline, self._idle_until, self._inside = None, None, 0.0, False
        if self._startup_kill:  # while the fresh history is being created (migrated)
            self._startup_kill = False
            self.target = "start-up"

    def step(self) -> None:
        """Watch the running process once: note progress, kill when due, re-run when killed."""
        proc, line, probe, suite = self._proc, self._line, self.suite.probe, self.suite
        assert proc is not None
        now = time.monotonic()
        if proc.poll() is not None:
            if self._inside and proc.returncode == -signal.SIGKILL:
                self._killed()  # by itself, inside its target stage (or just after it)
            else:
                self._finished(proc.returncode)
            return
        if self._deadline is not None and now >= self._deadline:
            self._kill()
            return
        if now < self._idle_until:
            return
        if now - line.spawned > RUN_TIMEOUT:
            proc.kill()
            proc.wait()
            self.failures.append(f"run {self.runs} of {self.outcome} hung: {self._stderr()}")
            self.done = True
            return
        if line.lock is None and probe.lock_held_by(proc.pid, self.app):
            line.lock = now
        completed = probe.completed(self.outcome, suite.period) if line.lock else []
        for i, stage in enumerate(STAGES):
            if stage in completed and i >= line.first_due and stage not in line.commits:
                line.commits[stage] = now
                opened = line.lock if i == line.first_due else line.commits.get(STAGES[i - 1])
                if opened is not None:
                    suite.samples[stage, line.first_due > 0].append(now - opened)
        if self._deadline is None and self.target == "start-up":
            if line.lock is not None or probe.connected(self.app):
                self._deadline = now + suite.random.uniform(0, FIRST_GUESS["start-up"])
        elif self._deadline is None and line.lock is not None and not self._calm:
            self._arm(len(completed), now)
        if self._deadline is not None and now >= self._deadline:
            self._kill()
            return
        # Look again at once only while waiting for the target stage to open; else later, to
        # leave the CPU to the runs (the watcher shares two cores with them).
        if self._deadline is not None:
            self._idle_until = self._deadline
        elif line.lock is None:
            self._idle_until = now + 0.002
        elif self._calm or self.target is None or self._inside:
            self._idle_until = now + 0.02

    def _arm(self, progress: int, now: float) -> None:
        if progress >= len(STAGES):
            return
        if self.target is None or STAGES.index(self.target) < progress:
            if self.target is None and not self._may_kill():
                self._calm = True
                return
            candidates = STAGES[progress:]
            if len(candidates) > 1 and self.quota - self.stage_kills > 1:
                candidates = candidates[:-1]  # a Review kill that comes late ends the cycle
            self.target = min(candidates, key=lambda s: (self.suite.load(s, self), STAGES.index(s)))
        if self._inside:
            return
        window = self.suite.window(self.target, self._line.first_due > 0)
        if STAGES.index(self.target) == progress:  # open already: killed from here
            self._deadline = now + self.suite.random.uniform(0, window)
        else:  # the run kills itself once the stage opens (see crash_child.py), timed from the
            # stage's start, so within the stage's own shortest span (Approach: a few ms)
            delay = self.suite.random.uniform(0, min(window, self.suite.shortest[self.target]))
            ready = self._kill_file.with_suffix(".tmp")
            ready.write_text(f"{self.target} {delay}")
            ready.replace(self._kill_file)
            self._inside = True

    def _may_kill(self) -> bool:
        if self.stage_kills < self.quota:
            return True
        if self.suite.spare > 0:
            self.suite.spare -= 1
            self.quota += 1
            return True
        return False

    def _kill(self) -> None:
        """SIGKILL the run, see where it was, and start it again."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()
        self._killed()

    def _killed(self) -> None:
        """The run was SIGKILLed: see where it was, and start it again."""
        proc, line, probe, suite = self._proc, self._line, self.suite.probe, self.suite
        assert proc is not None
        now = time.monotonic()
        if line.lock is None and probe.lock_held_by(proc.pid, self.app):
            line.lock = now  # SQLite: the lock file still names the killed holder
        completed = probe.completed(self.outcome, suite.period) if line.lock else []
        stage = "start-up" if line.lock is None else next(
            (s for s in STAGES if s not in completed), "exit"
        )  # fmt: skip
        detail = ""
        if stage == "start-up":
            created = probe.schema_version() is not None
            detail = "history created" if created else "history not yet created"
        if stage == "deployment":
            pending = [k for k, (status, _) in probe.ledger(self.outcome).items()
                       if status == "pending"]  # fmt: skip
            hits = [h for h in suite.receiver.snapshot()
                    if h.key in pending and h.arrived >= line.spawned]  # fmt: skip
            if not pending:
                detail = "between actions"
            elif not hits:
                detail = "action begun, request not received"
            elif any(h.answered is None or h.answered > now for h in hits):
                detail = "request in flight"
            else:
                detail = "request answered, outcome not recorded"
        self.kills.append(
            Kill(self.outcome, self.target or "?", stage, detail, round(now - line.spawned, 3))
        )
        if stage == "exit":
            self._calm = True  # the re-run re-reviews (asked for again); it is not killed
            self._progress = len(STAGES)
        else:
            self._progress = len(completed)
        self.start()

    def _finished(self, code: int) -> None:
        err = self._stderr()
        self.done = True
        self.target = None
        self.suite.spare += max(0, self.quota - self.stage_kills)
        if code != 0:
            self.failures.append(f"run {self.runs} of {self.outcome} exited {code}: {err[-2000:]}")
            return
        try:
            self.output = json.loads(self._out.read_text())
        except ValueError:
            self.failures.append(f"run {self.runs} of {self.outcome} printed no JSON: {err}")

    def _stderr(self) -> str:
        try:
            return self._err.read_text().strip()
        except OSError:
            return ""


@dataclass
class Suite:
    """One history database, the outcomes' declarations, and the drivers that run them."""

    root: Path
    url: str
    receiver: Receiver
    period: str
    random: random.Random
    env: dict[str, str]
    declarations: dict[str, Path]
    shortest: dict[str, float]  # each stage's shortest start-to-commit time in the calm runs
    drivers: list[Driver] = field(default_factory=list)
    samples: dict[tuple[str, bool], list[float]] = field(
        default_factory=lambda: {(s, resumed): [] for s in STAGES for resumed in (False, True)}
    )  # how long each stage stayed open: (stage, run resumed a cycle) -> seconds
    spare: int = 0  # kills that drivers whose runs ended first could not make

    def __post_init__(self) -> None:
        lockdir = None
        if self.url.startswith("sqlite"):
            database = Path(self.url.removeprefix("sqlite:///"))
            lockdir = database.with_name(database.name + ".locks")
        self.probe = Probe(self.url, lockdir)

    def url_for(self, app: str) -> str:
        """The history URL one run uses (PostgreSQL: tagged with an application_name)."""
        if self.url.startswith("sqlite"):
            return self.url
        import sqlalchemy as sa

        url = sa.make_url(self.url).update_query_dict({"application_name": app})
        return url.render_as_string(hide_password=False)

    def window(self, stage: str, resumed: bool) -> float:
        """The span to draw a kill delay from, once `stage` has opened: the lower quartile of
        how long it stayed open so far. Aim early: a kill that comes too late often finds the
        run past the short Assessment and Review of a run that read the metric already, and
        past the end, and then the cycle is done before its kills are.

        `resumed`: the run started past the Result stage, so an Assessment reads the metric
        itself (and imports pandas) instead of reusing what the Result stage read.
        """
        seen = sorted(self.samples[stage, resumed])
        if seen:
            return max(seen[len(seen) // 4], 0.004)
        return 0.6 if resumed and stage == "assessment" else FIRST_GUESS[stage]

    def load(self, stage: str, asking: Driver) -> int:
        """Kills that landed in `stage`, plus the other drivers' runs aiming at it now."""
        landed = sum(k.stage == stage for d in self.drivers for k in d.kills)
        return landed + sum(d.target == stage for d in self.drivers if d is not asking)

    def owed(self) -> int:
        """Kills still wanted: those runs ended without, or one per stage never hit."""
        missed = set(STAGES) - {k.stage for d in self.drivers for k in d.kills}
        return max(self.spare, len(missed))

    def drive(self, concurrent: int, deadline: float, reserve: list[Driver]) -> None:
        """Run every driver to the end, `concurrent` at once; if, when all are done, some kills
        are still owed (runs that ended before their kill), the reserve drivers make them."""
        waiting, active = list(self.drivers), []
        while waiting or active or (reserve and self.owed()):
            if not waiting and not active:
                extra = reserve.pop(0)
                extra.quota, self.spare = self.owed(), 0
                self.drivers.append(extra)
                waiting.append(extra)
            starting = any(d.target == "start-up" for d in active)  # alone on a fresh history
            while waiting and len(active) < concurrent and not starting:
                driver = waiting.pop(0)
                driver.start()
                active.append(driver)
            for driver in list(active):
                driver.step()
                if driver.done:
                    active.remove(driver)
            if time.monotonic() > deadline:
                for driver in active:
                    if driver._proc is not None and driver._proc.poll() is None:
                        driver._proc.kill()
                        driver._proc.wait()
                raise AssertionError("the crash test ran out of time")
            time.sleep(0.001)


# -- set-up ---------------------------------------------------------------------------------------


def _write_outcomes(root: Path, receiver: Receiver, period: Period) -> dict[str, Path]:
    past = months(str(period - len(BASELINE)), len(BASELINE))
    out = {}
    for name, spec in OUTCOMES.items():
        directory = root / name
        values = dict(zip(past, BASELINE, strict=True)) | {str(period): spec["current"]}
        broken = {str(period): spec["broken"]} if "broken" in spec else None
        write_monthly_csv(directory / "data" / "rate.csv", values, broken=broken)
        decl = write_declaration(directory, outcome=name)
        actions = _actions_yaml(receiver.url, name)
        text = decl.read_text()
        anchor = "    adjust: {usd: {step: 10, max: 40}}\n"
        assert anchor in text
        decl.write_text(text.replace(anchor, anchor + actions))
        out[name] = decl
    return out


def _databases() -> list[str]:
    return ["sqlite"] + (["postgresql"] if os.environ.get("RADAR_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=_databases())
def histories(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh, empty histories: (for the uninterrupted runs, for the killed runs)."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'calm' / 'history.db'}",
               f"sqlite:///{tmp_path / 'crash' / 'history.db'}")  # fmt: skip
        return
    import sqlalchemy as sa

    from cycles.store import normalise_url

    base = normalise_url(os.environ["RADAR_TEST_POSTGRES_URL"])
    names = [f"radar_crash_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    url = sa.make_url(base)
    calm, crash = (
        url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
        for name in names
    )
    try:
        yield calm, crash
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def _history(url: str, outcome: str) -> list[Any]:
    from cycles.store import Store

    store = Store(url, migrate=False)
    try:
        return store.cycles(outcome)
    finally:
        store.dispose()


def _uninterrupted(
    url: str, declarations: dict[str, Path], period: str
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each outcome's cycle run once, start to end, in this process: the reference records, and
    the shortest time each stage took from its start to its commit (seconds)."""
    from cycles.declaration import find
    from cycles.engine import Cycle, preflight, run_cycle
    from cycles.store import Store

    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}

    def timed(cycle: Cycle, stage: Any) -> None:
        clock = time.perf_counter()
        Cycle.run(cycle, stage)
        spans[stage.value].append(time.perf_counter() - clock)

    store = Store(url)
    try:
        for decl in declarations.values():
            outcome = find(str(decl))
            preflight(outcome)
            run_cycle(outcome, period, store=store, review=True, runner=timed)
        shortest = {stage: min(seen) for stage, seen in spans.items()}
        return {name: store.cycles(name) for name in declarations}, shortest
    finally:
        store.dispose()


def _verdict(record: Any) -> dict[str, Any]:
    """What must not depend on how often the runs were killed."""
    limits = record.limits
    return {
        "decision": record.decision and record.decision.value,
        "reasons": record.reasons,
        "approach": record.approach and record.approach.model_dump(),
        "next_approach": record.next_approach and record.next_approach.model_dump(),
        "result_value": record.result_value,
        "standing": record.standing,
        "signal": record.signal and record.signal.value,
        "checks": (record.checks.passed, record.checks.failed),
        "limits": limits and (limits.centre, limits.lower, limits.upper),
    }


def _counts(details: Counter[tuple[str, str]], stage: str) -> str:
    return ", ".join(f"{d} {n}" for (s, d), n in details.items() if s == stage) or "none"


def _report(suite: Suite, hits: list[Hit], seed: int, seconds: float, cpu: float) -> str:
    kills = [k for d in suite.drivers for k in d.kills]
    per_stage = Counter(k.stage for k in kills)
    details = Counter((k.stage, k.detail) for k in kills if k.detail)
    sent = Counter(h.key for h in hits)
    resent = {key: n - 1 for key, n in sent.items() if n > 1}
    order = ("start-up", *STAGES, "exit")
    lines = [
        f"crash test on {suite.probe.kind} (seed {seed}): {len(kills)} kills "
        f"({sum(k.stage in STAGES for k in kills)} inside a stage) in "
        f"{sum(d.runs for d in suite.drivers)} runs, {seconds:.1f} s (this process: {cpu:.1f} s of CPU)",
        "kills per stage: " + ", ".join(f"{s} {per_stage[s]}" for s in order if per_stage[s]),
        "start-up kills: " + _counts(details, "start-up"),
        "deployment kills: " + _counts(details, "deployment"),
        f"requests {len(hits)} for {len(sent)} keys; re-sent with the same key "
        f"{sum(resent.values())}" + (f" ({', '.join(sorted(resent))})" if resent else ""),
        "kill-delay spans (s; in runs that resumed a cycle): "
        + ", ".join(
            f"{s} {suite.window(s, False):.3f} ({suite.window(s, True):.3f})" for s in STAGES
        ),
        "shortest calm spans (s): " + ", ".join(f"{s} {suite.shortest[s]:.4f}" for s in STAGES),
    ]
    for d in suite.drivers:
        path = " -> ".join(f"{k.stage}@{k.after:.2f}s" for k in d.kills)
        lines.append(f"  {d.outcome}: {path or 'no kill'} -> done in run {d.runs}")
    return "\n".join(lines)


# -- the test -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_runs_deliver_every_action_once_and_decide_the_same(
    tmp_path: Path, histories: tuple[str, str]
) -> None:
    began, cpu = time.monotonic(), time.process_time()
    seed = int(os.environ.get("RADAR_CRASH_SEED") or random.SystemRandom().randrange(10**6))
    period = str(Period.containing(datetime.now(UTC).date(), Cadence.monthly))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect")}
    env.pop("PREFECT_API_URL", None)
    calm_url, crash_url = histories

    with Receiver(seed) as receiver:
        declarations = _write_outcomes(
            tmp_path / "outcomes", receiver, Period.parse(period, Cadence.monthly)
        )

        # 1. every cycle uninterrupted, on a history of its own: the reference verdicts
        reference, shortest = _uninterrupted(calm_url, declarations, period)
        expected = {name: _verdict(cycles[0]) for name, cycles in reference.items()}
        assert {v["decision"] for v in expected.values()} == {"adjust", "keep", "switch", "hold"}
        calm_hits = len(receiver.snapshot())
        assert calm_hits == len(OUTCOMES) * len(ACTIONS)

        # 2. the same cycles on a fresh history through `radar run`, killed again and again
        suite = Suite(tmp_path / "crash", crash_url, receiver, period, random.Random(seed), env,
                      declarations, shortest)  # fmt: skip
        suite.root.mkdir()
        names = [name for name in OUTCOMES if name not in RESERVE]
        share, extra = divmod(MIN_KILLS + SPARE_KILLS, len(names))
        suite.drivers = [Driver(suite, name, share + (i < extra), startup_kill=i == 0)
                         for i, name in enumerate(names)]  # fmt: skip
        reserve = [Driver(suite, name, 0, startup_kill=False) for name in RESERVE]
        try:  # generous: a loaded machine slows every run down, it does not break the test
            suite.drive(CONCURRENT, time.monotonic() + 600, reserve)
        finally:
            suite.probe.dispose()
        hits = receiver.snapshot()[calm_hits:]

    report = _report(suite, hits, seed, time.monotonic() - began, time.process_time() - cpu)
    print("\n" + report)

    # every run either was killed or succeeded; none found a killed run's lock still held
    failures = [f for d in suite.drivers for f in d.failures]
    assert not failures, f"{failures}\n{report}"
    kills = [k for d in suite.drivers for k in d.kills]
    assert sum(k.stage in STAGES for k in kills) >= MIN_KILLS, report
    assert set(STAGES) <= {k.stage for k in kills}, f"not every stage was hit\n{report}"

    # every action delivered, under its own key only; same-key re-sends bounded by attempts
    ran = [d.outcome for d in suite.drivers]
    expected_keys = {f"{name}/{period}/{APPROACH}/{a}" for name in ran for a in ACTIONS}
    sent = Counter(h.key for h in hits)
    assert set(sent) == expected_keys, f"keys seen {sorted(map(str, sent))}\n{report}"
    for h in hits:
        outcome, _, _, action = str(h.key).split("/")
        assert h.path == f"/hooks/{outcome}/{action}", (h, report)
        assert h.body == {"usd": 20, "period": period}, (h, report)

    for d in suite.drivers:
        cycles = _history(crash_url, d.outcome)
        assert [c.period for c in cycles] == [period], f"{d.outcome}: {cycles}\n{report}"
        [record] = cycles  # none missing, none doubled
        ledger = {a.key: a for a in record.actions}
        assert set(ledger) == {k for k in expected_keys if k.startswith(f"{d.outcome}/")}, report
        for key, run in ledger.items():
            assert (run.status, run.reach) == ("succeeded", 10.0), (run, report)
            assert 1 <= sent[key] <= run.attempts, (
                f"{key}: {sent[key]} requests but {run.attempts} attempts recorded\n{report}"
            )
        assert record.completed_stages == list(STAGES), (record.completed_stages, report)
        assert record.status == "reviewed", report
        # each stage completed once; a run killed after its review was recorded is re-run with
        # --review, which re-assesses and re-reviews (as asked): one more of those two each
        again = sum(k.stage == "exit" for k in d.kills)
        runs = Counter(r.stage.value for r in record.stage_runs if r.status == "completed")
        want = {s: 1 + (again if s in ("assessment", "review") else 0) for s in STAGES}
        assert runs == want, f"{d.outcome}: completed stage runs {dict(runs)}\n{report}"
        assert all(r.status == "completed" for r in record.stage_runs), report
        assert _verdict(record) == expected[d.outcome], (
            f"{d.outcome}: after the kills {_verdict(record)}, "
            f"uninterrupted {expected[d.outcome]}\n{report}"
        )
        assert d.output is not None and d.output["decision"] == expected[d.outcome]["decision"]
