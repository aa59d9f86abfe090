"""Crash safety: `radar run` SIGKILLed at random moments in every stage, then re-run.

Four outcomes (one cycle each, the current period, `--review`, so all five stages run and the
Deployment stage really executes) each have an approach with an action of every sink kind, run
in this order:
- `ask` and, last, `thank`: webhooks to a slow receiver on 127.0.0.1, which answers
  `200 {"reach": 10}` 0.6-0.8 s after a request arrives, so kills land while requests are in
  flight. It honours `Idempotency-Key`: it acts (notes the key in its effects) on the first
  complete request for a key only, and answers every request the same. It logs every request,
  so raw requests and effects are counted per key (a request cut off by a kill, its body
  incomplete, is logged as such and never acted on);
- `flag`: an `sql` action inserting one row into `outreach` in a real database (a SQLite file; a
  PostgreSQL schema on PostgreSQL), rows counted per key;
- `export`: a `file` action writing `out/{period}-{outcome}.csv`. Every write is a new file
  renamed onto the old one (a new inode), and a run writes it at most once, so the watcher
  counts writes by looking at the export's inode after every run ends;
- `note`: a `python` callable appending `context.key` to a log. It ignores the key, so a re-run
  after a kill may call it twice: counted and reported, not asserted.

First the same outcomes run uninterrupted on a fresh history, receiver and sinks of their own:
that gives the decisions to compare with and how long each stage and each action takes. Then,
on another fresh history, each cycle is driven by a loop that starts `radar run ...`
(`crash_child.py`), watches the history database (completed stages; the run lock: SQLite's lock
file names its holder's pid, PostgreSQL's advisory lock shows in pg_locks under the run's
application_name) and SIGKILLs the process at a random moment inside a target stage (a random
delay after the stage opened, drawn over that stage's measured duration), then re-runs it,
until a run completes. A target stage that has not opened yet when the watcher picks it is left
to the run itself (`crash_child.py`: a timer thread SIGKILLs the process that delay after the
stage opens), as polling from outside cannot hit a stage of a few milliseconds.

Some Deployment kills are planned at the points that matter for delivering once (`PLANS`):
while the receiver holds a webhook's request (the watcher kills the run then); and, carried out
by `crash_child.py`, after an action acted and before the ledger recorded it, for every sink
kind, at a random moment inside the sql action (mid-transaction), and between the file
action's two renames. Until the planned kills have
landed, the Deployment stage is aimed at three times as often as the others. Where a kill
really landed is read back from the history and the sinks after the kill (first stage not
completed; for the Deployment stage also which action's ledger row was pending and whether its
sink had acted), not assumed from the target.

The test then asserts: at least 20 kills; every stage was hit; the planned kills with a
request in flight, after acting and between the file action's renames landed; every action key reached its sink and no other
key ever did; the receiver acted once per webhook key, the sql table holds one row per key and
each export was written once; a key requested (or a callable called) more than once has a
ledger row `resent`, and never more often than the ledger counted attempts; every ledger row is
`succeeded` or `resent` (`sql` and `file` always `succeeded`: their sink recognises its key);
every cycle is in the history once with each stage completed exactly once and no failed stage
run; no re-run failed (in particular not with "already running": the lock of a killed run must
not outlive it); and each cycle's decision, reasons and approaches equal those of the
uninterrupted run.

With `RADAR_TEST_POSTGRES_URL` set, the whole thing also runs on PostgreSQL, in schemas the
test creates and drops (the histories and the sql actions' databases). Run with `-s` to see the
report (it is also in assertion messages).
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
# the approach's actions, in the order they run, and their sink kinds
ACTIONS = {"ask": "webhook", "flag": "sql", "export": "file", "note": "python", "thank": "webhook"}
SINKS = ("webhook", "sql", "file", "python")
REACH = {"webhook": 10.0, "sql": 1.0, "file": 1.0, "python": 1.0}
FINAL = ("succeeded", "resent")  # how a delivered action's ledger row may end
APPROACH = "incentive"
RECEIVER_DELAY = (0.6, 0.8)  # seconds the receiver takes to answer
# Deployment kills planned at the points that matter: `flight:` while the receiver holds the
# webhook's request (the watcher kills the run), and, carried out by crash_child.py, `in:` a
# random moment inside the action, `after:` it acted and the ledger has not recorded it,
# `mid:` between the file action's two renames. Those in REQUIRED must land (the test goes on
# until they have).
PLANS = ("flight:ask", "after:ask", "in:flag", "after:flag", "mid:export", "after:export",
         "after:note", "flight:thank")  # fmt: skip
REQUIRED = frozenset(PLANS) - {"in:flag", "flight:thank"}
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


def _actions_yaml(receiver: str, outcome: str, sink: str) -> str:
    """The approach's actions: one of every sink kind, and a second webhook last."""
    lines = ["    actions:"]
    for name, kind in ACTIONS.items():
        lines += [f"      - name: {name}", f"        type: {kind}"]
        if kind == "webhook":
            lines += [
                f"        url: {receiver}/hooks/{outcome}/{name}",
                '        payload: {usd: "{params.usd}", period: "{period}"}',
            ]
        elif kind == "sql":
            lines += [
                f"        url: {json.dumps(sink)}",
                "        statement: >-",
                "          INSERT INTO outreach (action_key, outcome, period, usd)",
                "          VALUES ({key}, {outcome}, {period}, {params.usd})",
            ]
        elif kind == "file":
            lines += [
                '        path: "out/{period}-{outcome}.csv"',
                '        rows: [{key: "{key}", usd: "{params.usd}"}]',
            ]
        else:
            lines += ["        callable: hooks:note"]
    return "\n".join(lines) + "\n"


HOOKS = """\
from pathlib import Path

LOG = Path({log!r})


def note(context):
    \"\"\"Append the key to the log: called again after a kill, it appends it again.\"\"\"
    with LOG.open("a") as log:
        log.write(context.key + "\\n")
    return 1
"""


# -- the webhook receiver ------------------------------------------------------------------------


@dataclass
class Hit:
    key: str | None
    path: str
    body: Any
    arrived: float  # time.monotonic()
    complete: bool = True  # False: the body was cut off (its sender was killed mid-request)
    answered: float | None = None  # when the reply was written (None: never)


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1 that logs every request and answers after a delay.

    It honours `Idempotency-Key`: the first complete request for a key has its effect (the key
    is appended to `effects`), a repeat has none, and every request gets the same answer."""

    def __init__(self, seed: int, delay: tuple[float, float] = RECEIVER_DELAY) -> None:
        self.hits: list[Hit] = []
        self.effects: list[str] = []
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
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        key = handler.headers.get("Idempotency-Key")
        hit = Hit(key, handler.path, body, time.monotonic(), complete=len(raw) == length)
        with self._lock:
            self.hits.append(hit)
            if hit.complete and key is not None and key not in self.effects:
                self.effects.append(key)  # the effect: once per key
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

    def requests(self) -> Counter[str]:
        """Requests per key, each one (cut off or not), as raw deliveries."""
        return Counter(str(h.key) for h in self.snapshot())

    def acted(self) -> Counter[str]:
        """Effects per key."""
        with self._lock:
            return Counter(self.effects)

    def __enter__(self) -> Receiver:
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


# -- the other sinks -----------------------------------------------------------------------------


def _prepare_sink(url: str) -> None:
    """The sql actions' table (SQLite: in WAL mode, so that counting never waits for a run)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if url.startswith("sqlite"):
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            conn.exec_driver_sql(
                "CREATE TABLE outreach (action_key VARCHAR(200) NOT NULL, outcome VARCHAR(200), "
                "period VARCHAR(20), usd INTEGER)"
            )  # no unique key: a second insert of a key would show as a second row
    finally:
        engine.dispose()


@dataclass
class Sinks:
    """Where one set of projects' actions land, and how often each key got there."""

    receiver: Receiver
    sql: str  # the sql actions' database
    projects: Path  # a directory per outcome, holding its declaration and its export
    log: Path  # the python callable's log
    period: str
    writes: Counter[str] = field(default_factory=Counter)  # export writes seen, per key
    _inodes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import sqlalchemy as sa

        _prepare_sink(self.sql)
        options = {"connect_args": {"timeout": 10}} if self.sql.startswith("sqlite") else {}
        self.engine = sa.create_engine(self.sql, isolation_level="AUTOCOMMIT", **options)

    def key(self, outcome: str, action: str) -> str:
        return f"{outcome}/{self.period}/{APPROACH}/{action}"

    def export(self, outcome: str) -> Path:
        return self.projects / outcome / "out" / f"{self.period}-{outcome}.csv"

    def look_at_export(self, outcome: str) -> None:
        """Count a write if the export is a new file since last looked. Called after every run
        of `outcome` ends; a run writes it at most once, into a new file created while the old
        one still exists (so with another inode), then renamed onto it."""
        try:
            inode = self.export(outcome).stat().st_ino
        except FileNotFoundError:
            return
        if self._inodes.get(outcome) != inode:
            self._inodes[outcome] = inode
            self.writes[self.key(outcome, "export")] += 1

    def rows(self) -> Counter[str]:
        """Rows per key in the sql actions' table."""
        import sqlalchemy as sa

        sql = "SELECT action_key, COUNT(*) FROM outreach GROUP BY action_key"
        with self.engine.connect() as conn:
            return Counter({str(key): int(n) for key, n in conn.execute(sa.text(sql))})

    def calls(self) -> Counter[str]:
        """Calls of the python callable per key."""
        try:
            return Counter(self.log.read_text().splitlines())
        except FileNotFoundError:
            return Counter()

    def deliveries(self) -> dict[str, Counter[str]]:
        """Raw deliveries per key, by sink kind (webhook: requests, cut off ones included)."""
        return {"webhook": self.receiver.requests(), "sql": self.rows(),
                "file": Counter(self.writes), "python": self.calls()}  # fmt: skip

    def effects(self) -> dict[str, Counter[str]]:
        """Effects per key, by sink kind: the receiver's once per key, the others' every one."""
        return self.deliveries() | {"webhook": self.receiver.acted()}

    def dispose(self) -> None:
        self.engine.dispose()


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
        """Each action key of `outcome`: its ledger status and attempts."""
        rows = self._rows("SELECT key, status, attempts FROM actions WHERE outcome = :o", o=outcome)
        return {key: (status, attempts) for key, status, attempts in rows}

    def dispose(self) -> None:
        self.engine.dispose()


# -- driving one cycle through kills ------------------------------------------------------------

# How long a stage lasts until the watcher sees it committed, before any run has shown it
# (seconds). Result includes importing pandas; the Deployment stage waits for the receiver.
FIRST_GUESS = {"start-up": 0.8, "result": 0.6, "approach": 0.015, "deployment": 1.6, "assessment": 0.015,
               "review": 0.015}  # fmt: skip


@dataclass
class Kill:
    outcome: str
    target: str
    stage: str  # where it landed: start-up, a stage, or "exit" (after the review was recorded)
    detail: str = ""  # Deployment: what the action being run had got to
    after: float = 0.0  # seconds after the process started
    plan: str = ""  # the planned kill (PLANS) that the run carried out, if one


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
    stage open, drawn over the stage's usual duration. A run aiming at the Deployment stage
    carries out instead the planned kills (PLANS) still to land that it can reach: the first
    one its actions come to. `quota` kills land inside stages; a run that ends before its kill
    gives its share to the other drivers.
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
        self._planned = False  # ... at one of the planned points of the Deployment stage
        self._flight: dict[str, str] = {}  # webhook key -> its `flight:` plan, to kill from here
        self._flying = ""  # the `flight:` plan this watcher's kill carries out
        self._idle_until = 0.0
        self._attempts: dict[str, int] = {}  # ledger attempts per key when the run started
        self._delivered: dict[str, Counter[str]] = {}  # deliveries per sink then

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
        self._attempts = {k: a for k, (_, a) in suite.probe.ledger(self.outcome).items()}
        self._delivered = suite.sinks.deliveries()
        decl = suite.declarations[self.outcome]
        command = [sys.executable, str(CHILD), "run", str(decl), "--period", suite.period,
                   "--review", "--json", "--no-prefect"]  # fmt: skip
        with self._out.open("w") as out, self._err.open("w") as err:
            self._proc = subprocess.Popen(
                command, cwd=decl.parent, env=env, stdout=out, stderr=err, text=True
            )
        self._line = Timeline(time.monotonic(), self._progress)
        self.target, self._deadline, self._idle_until, self._inside = None, None, 0.0, False
        self._planned, self._flight, self._flying = False, {}, ""
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
        if self._flight and self._deadline is None:  # kill while the receiver holds the request
            for hit in suite.receiver.snapshot():
                if hit.key in self._flight and hit.arrived >= line.spawned and hit.complete:
                    self._flying = self._flight[hit.key]
                    self._deadline = hit.arrived + suite.random.uniform(0, RECEIVER_DELAY[0])
                    break
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
            if self._planned:  # the stage passed without its planned kill: aim anew
                self._inside = self._planned = False
                self._flight = {}
            if self.target is None and not self._may_kill():
                self._calm = True
                return
            candidates = STAGES[progress:]
            if len(candidates) > 1 and self.quota - self.stage_kills > 1:
                candidates = candidates[:-1]  # a Review kill that comes late ends the cycle
            self.target = min(candidates, key=lambda s: (self.suite.load(s, self), STAGES.index(s)))
        if self._inside:
            return
        plans = self._reachable() if self.target == "deployment" else []
        if plans:  # the run is killed at the first of these it comes to (crash_child.py; the
            # watcher for `flight:`)
            self._ask("deployment", 0.0, plans)
            self._inside = self._planned = True
            self._flight = {self.suite.sinks.key(self.outcome, p.partition(":")[2]): p
                            for p in plans if p.startswith("flight:")}  # fmt: skip
            return
        window = self.suite.window(self.target, self._line.first_due > 0)
        if STAGES.index(self.target) == progress:  # open already: killed from here
            self._deadline = now + self.suite.random.uniform(0, window)
        else:  # the run kills itself once the stage opens (see crash_child.py), timed from the
            # stage's start, so within the stage's own shortest span (Approach: a few ms)
            delay = self.suite.random.uniform(0, min(window, self.suite.shortest[self.target]))
            self._ask(self.target, delay, [])
            self._inside = True

    def _ask(self, stage: str, delay: float, plans: list[str]) -> None:
        """Write the run's kill request (read by crash_child.py), atomically."""
        ready = self._kill_file.with_suffix(".tmp")
        ready.write_text(f"{stage} {delay}\n" + (f"plans {' '.join(plans)}\n" if plans else ""))
        ready.replace(self._kill_file)

    def _reachable(self) -> list[str]:
        """The planned kills still to land that this run will come to: their action has not
        been delivered, nor begun by this run. An `in:` plan carries its delay (drawn over the
        action's span in the uninterrupted runs)."""
        suite, ledger = self.suite, self.suite.probe.ledger(self.outcome)
        plans = []
        for plan in suite.plans:
            action = plan.partition(":")[2]
            key = suite.sinks.key(self.outcome, action)
            status, attempts = ledger.get(key, ("", 0))
            if status in FINAL or attempts != self._attempts.get(key, 0):
                continue
            if plan.startswith("in:"):
                plan += f"@{suite.random.uniform(0, suite.spans[action]):.4f}"
            plans.append(plan)
        return plans

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
        suite.sinks.look_at_export(self.outcome)
        if stage == "deployment":
            detail = self._deployment_detail(now)
        fired = Path(f"{self._kill_file}.fired")
        plan = fired.read_text() if fired.exists() else self._flying
        if plan in suite.plans:
            suite.plans.remove(plan)
        self.kills.append(Kill(self.outcome, self.target or "?", stage, detail,
                               round(now - line.spawned, 3), plan))  # fmt: skip
        if stage == "exit":
            self._calm = True  # the re-run re-reviews (asked for again); it is not killed
            self._progress = len(STAGES)
        else:
            self._progress = len(completed)
        self.start()

    def _deployment_detail(self, now: float) -> str:
        """Which action the run was killed in, and how far it had got."""
        pending = [k for k, (status, _) in self.suite.probe.ledger(self.outcome).items()
                   if status == "pending"]  # fmt: skip
        if not pending:
            return "between actions"
        key = pending[0]
        kind = ACTIONS[key.rsplit("/", 1)[-1]]
        if kind == "webhook":
            hits = [h for h in self.suite.receiver.snapshot()
                    if h.key == key and h.arrived >= self._line.spawned]  # fmt: skip
            if not hits:
                return "webhook: request not sent"
            if not any(h.complete for h in hits):
                return "webhook: request cut off"
            if any(h.answered is None or h.answered > now for h in hits):
                return "webhook: request in flight"
            return "webhook: answered, not recorded"
        if self.suite.sinks.deliveries()[kind][key] > self._delivered[kind][key]:
            return f"{kind}: acted, not recorded"
        return f"{kind}: not acted"

    def _finished(self, code: int) -> None:
        self.suite.sinks.look_at_export(self.outcome)
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
    sinks: Sinks
    period: str
    random: random.Random
    env: dict[str, str]
    declarations: dict[str, Path]
    shortest: dict[str, float]  # each stage's shortest start-to-commit time in the calm runs
    spans: dict[str, float]  # each action's shortest span in the calm runs (seconds)
    drivers: list[Driver] = field(default_factory=list)
    plans: list[str] = field(default_factory=lambda: list(PLANS))  # planned kills to land
    samples: dict[tuple[str, bool], list[float]] = field(
        default_factory=lambda: {(s, resumed): [] for s in STAGES for resumed in (False, True)}
    )  # how long each stage stayed open: (stage, run resumed a cycle) -> seconds
    spare: int = 0  # kills that drivers whose runs ended first could not make

    @property
    def receiver(self) -> Receiver:
        return self.sinks.receiver

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

    def load(self, stage: str, asking: Driver) -> float:
        """Kills that landed in `stage`, plus the other drivers' runs aiming at it now. While
        planned kills are still to land, Deployment kills count for a third; once the kills
        wanted are made, required planned kills still to land make it the target."""
        kills = [k for d in self.drivers for k in d.kills]
        landed: float = sum(k.stage == stage for k in kills)
        if stage == "deployment" and self.plans:
            if REQUIRED & set(self.plans) and sum(k.stage in STAGES for k in kills) >= MIN_KILLS:
                return -1.0
            landed /= 3
        return landed + sum(d.target == stage for d in self.drivers if d is not asking)

    def owed(self) -> int:
        """Kills still wanted: those runs ended without, or one per stage never hit and per
        required planned kill still to land."""
        missed = set(STAGES) - {k.stage for d in self.drivers for k in d.kills}
        return max(self.spare, len(missed) + len(REQUIRED & set(self.plans)))

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


def _write_outcomes(
    root: Path, receiver: Receiver, sink: str, names: list[str], period: Period
) -> dict[str, Path]:
    """A project per outcome under `root`; its actions go to `receiver`, `sink` and
    `root/note.log`."""
    past = months(str(period - len(BASELINE)), len(BASELINE))
    out = {}
    for name in names:
        spec = OUTCOMES[name]
        directory = root / name
        values = dict(zip(past, BASELINE, strict=True)) | {str(period): spec["current"]}
        broken = {str(period): spec["broken"]} if "broken" in spec else None
        write_monthly_csv(directory / "data" / "rate.csv", values, broken=broken)
        (directory / "hooks.py").write_text(HOOKS.format(log=str(root / "note.log")))
        decl = write_declaration(directory, outcome=name)
        actions = _actions_yaml(receiver.url, name, sink)
        text = decl.read_text()
        anchor = "    adjust: {usd: {step: 10, max: 40}}\n"
        assert anchor in text
        decl.write_text(text.replace(anchor, anchor + actions))
        out[name] = decl
    return out


def _databases() -> list[str]:
    return ["sqlite"] + (["postgresql"] if os.environ.get("RADAR_TEST_POSTGRES_URL") else [])


@dataclass(frozen=True)
class Databases:
    """Fresh, empty databases: histories and sql actions' targets, for each set of runs."""

    calm: str  # the history of the uninterrupted runs
    crash: str  # the history of the killed runs
    calm_sink: str  # the uninterrupted runs' sql actions write here
    crash_sink: str  # the killed runs' sql actions write here


@pytest.fixture(params=_databases())
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    if request.param == "sqlite":
        (tmp_path / "sinks").mkdir()
        yield Databases(f"sqlite:///{tmp_path / 'calm' / 'history.db'}",
                        f"sqlite:///{tmp_path / 'crash' / 'history.db'}",
                        f"sqlite:///{tmp_path / 'sinks' / 'calm.db'}",
                        f"sqlite:///{tmp_path / 'sinks' / 'crash.db'}")  # fmt: skip
        return
    import sqlalchemy as sa

    from cycles.store import normalise_url

    base = normalise_url(os.environ["RADAR_TEST_POSTGRES_URL"])
    names = [f"radar_crash_{uuid.uuid4().hex[:8]}" for _ in range(4)]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    url = sa.make_url(base)
    urls = [
        url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
        for name in names
    ]
    try:
        yield Databases(*urls)
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
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """Each outcome's cycle run once, start to end, in this process: the reference records, and
    the shortest time each stage took from its start to its commit and each action from its
    ledger mark to its record (seconds)."""
    from cycles.declaration import find
    from cycles.engine import Cycle, preflight, run_cycle
    from cycles.store import Store

    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    actions: dict[str, list[float]] = {action: [] for action in ACTIONS}
    begun: dict[str, float] = {}

    def timed(cycle: Cycle, stage: Any) -> None:
        clock = time.perf_counter()
        Cycle.run(cycle, stage)
        stages[stage.value].append(time.perf_counter() - clock)

    store = Store(url)
    begin, finish = store.begin_action, store.finish_action

    def begin_timed(**ids: Any) -> Any:
        begun[ids["key"]] = time.perf_counter()
        return begin(**ids)

    def finish_timed(key: str, **result: Any) -> Any:
        actions[key.rsplit("/", 1)[-1]].append(time.perf_counter() - begun[key])
        return finish(key, **result)

    store.begin_action = begin_timed  # type: ignore[method-assign]
    store.finish_action = finish_timed  # type: ignore[method-assign]
    try:
        for decl in declarations.values():
            outcome = find(str(decl))
            preflight(outcome)
            run_cycle(outcome, period, store=store, review=True, runner=timed)
        shortest = {stage: min(seen) for stage, seen in stages.items()}
        spans = {action: min(seen) for action, seen in actions.items()}
        return {name: store.cycles(name) for name in declarations}, shortest, spans
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
    return ", ".join(f"{d} {n}" for (s, d), n in sorted(details.items()) if s == stage) or "none"


def _per_key(counts: Counter[str], keys: set[str]) -> str:
    """`12 keys: 1 x10, 2 x2` (how many keys got each number of deliveries)."""
    spread = Counter(counts[key] for key in keys)
    return f"{len(keys)} keys: " + ", ".join(f"{n} x{k}" for n, k in sorted(spread.items()))


def _report(
    suite: Suite, keys: dict[str, set[str]], ledger: dict[str, str], seed: int, seconds: float,
    cpu: float,
) -> str:  # fmt: skip
    kills = [k for d in suite.drivers for k in d.kills]
    per_stage = Counter(k.stage for k in kills)
    details = Counter((k.stage, k.detail) for k in kills if k.detail)
    order = ("start-up", *STAGES, "exit")
    delivered, effects = suite.sinks.deliveries(), suite.sinks.effects()
    hits = suite.receiver.snapshot()
    lines = [
        f"crash test on {suite.probe.kind} (seed {seed}): {len(kills)} kills "
        f"({sum(k.stage in STAGES for k in kills)} inside a stage) in "
        f"{sum(d.runs for d in suite.drivers)} runs, {seconds:.1f} s (this process: {cpu:.1f} s of CPU)",
        "kills per stage: " + ", ".join(f"{s} {per_stage[s]}" for s in order if per_stage[s]),
        "start-up kills: " + _counts(details, "start-up"),
        "deployment kills: " + _counts(details, "deployment"),
        "planned kills: "
        + (", ".join(f"{k.plan} ({k.outcome}: {k.detail or k.stage})" for k in kills if k.plan)
           or "none")
        + (f"; not landed: {', '.join(suite.plans)}" if suite.plans else ""),
        "deliveries per key, raw (effective):",
    ]  # fmt: skip
    for kind in SINKS:
        raw, done = delivered[kind], effects[kind]
        extra = sum(max(0, raw[k] - 1) for k in keys[kind])
        dupes = sum(max(0, done[k] - 1) for k in keys[kind])
        resent = sum(ledger.get(k) == "resent" for k in keys[kind])
        line = (
            f"  {kind}: {_per_key(raw, keys[kind])} ({_per_key(done, keys[kind])}); "
            f"raw duplicates {extra}, effective duplicates {dupes}; ledger resent {resent}"
        )
        if kind == "webhook":
            cut = sum(not h.complete for h in hits)
            line += f"; {len(hits)} requests, {cut} cut off by a kill"
        if kind == "file":
            stray = list(suite.sinks.projects.glob("*/out/.*.tmp"))
            line += f"; {len(stray)} temporary files left by killed runs"
        lines.append(line)
    lines += [
        "kill-delay spans (s; in runs that resumed a cycle): "
        + ", ".join(
            f"{s} {suite.window(s, False):.3f} ({suite.window(s, True):.3f})" for s in STAGES
        ),
        "shortest calm spans (s): " + ", ".join(f"{s} {suite.shortest[s]:.4f}" for s in STAGES)
        + "; actions: " + ", ".join(f"{a} {t:.4f}" for a, t in suite.spans.items()),
    ]  # fmt: skip
    for d in suite.drivers:
        path = " -> ".join(f"{k.stage}@{k.after:.2f}s" for k in d.kills)
        lines.append(f"  {d.outcome}: {path or 'no kill'} -> done in run {d.runs}")
    return "\n".join(lines)


# -- the test -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_runs_deliver_every_action_once_and_decide_the_same(
    tmp_path: Path, databases: Databases
) -> None:
    began, cpu = time.monotonic(), time.process_time()
    seed = int(os.environ.get("RADAR_CRASH_SEED") or random.SystemRandom().randrange(10**6))
    period = str(Period.containing(datetime.now(UTC).date(), Cadence.monthly))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect")}
    env.pop("PREFECT_API_URL", None)
    names = [name for name in OUTCOMES if name not in RESERVE]
    projects = tmp_path / "projects"

    with Receiver(seed) as calm_receiver, Receiver(seed + 1) as receiver:
        calm = Sinks(calm_receiver, databases.calm_sink, projects / "calm",
                     projects / "calm" / "note.log", period)  # fmt: skip
        sinks = Sinks(receiver, databases.crash_sink, projects / "crash",
                      projects / "crash" / "note.log", period)  # fmt: skip
        month = Period.parse(period, Cadence.monthly)

        # 1. every cycle uninterrupted, on a history and sinks of their own: the reference
        calm_decls = _write_outcomes(calm.projects, calm_receiver, calm.sql, names, month)
        reference, shortest, spans = _uninterrupted(databases.calm, calm_decls, period)
        expected = {name: _verdict(cycles[0]) for name, cycles in reference.items()}
        assert {v["decision"] for v in expected.values()} == {"adjust", "keep", "switch", "hold"}
        webhooks = [a for a, kind in ACTIONS.items() if kind == "webhook"]
        assert sum(calm_receiver.requests().values()) == len(names) * len(webhooks)

        # 2. the same cycles on a fresh history and sinks through `radar run`, killed again and
        # again
        declarations = _write_outcomes(sinks.projects, receiver, sinks.sql, list(OUTCOMES), month)
        suite = Suite(tmp_path / "crash", databases.crash, sinks, period, random.Random(seed),
                      env, declarations, shortest, spans)  # fmt: skip
        suite.root.mkdir()
        share, extra = divmod(MIN_KILLS + SPARE_KILLS, len(names))
        suite.drivers = [Driver(suite, name, share + (i < extra), startup_kill=i == 0)
                         for i, name in enumerate(names)]  # fmt: skip
        reserve = [Driver(suite, name, 0, startup_kill=False) for name in RESERVE]
        try:  # generous: a loaded machine slows every run down, it does not break the test
            suite.drive(CONCURRENT, time.monotonic() + 600, reserve)
        finally:
            suite.probe.dispose()
        ran = [d.outcome for d in suite.drivers]

        # the reserves that ran: their reference, uninterrupted (after the kills, not to slow
        # down the runs being killed)
        spare = [name for name in ran if name in RESERVE]
        if spare:
            more = _write_outcomes(calm.projects, calm_receiver, calm.sql, spare, month)
            extra_reference = _uninterrupted(databases.calm, more, period)[0]
            expected |= {name: _verdict(cycles[0]) for name, cycles in extra_reference.items()}
        hits = receiver.snapshot()
        keys = {kind: {sinks.key(name, a) for name in ran for a, k in ACTIONS.items() if k == kind}
                for kind in SINKS}  # fmt: skip
        records = {d.outcome: _history(databases.crash, d.outcome) for d in suite.drivers}
        ledger = {a.key: a for cycles in records.values() for c in cycles for a in c.actions}
        report = _report(suite, keys, {k: a.status for k, a in ledger.items()}, seed,
                         time.monotonic() - began, time.process_time() - cpu)  # fmt: skip
        delivered, effects = sinks.deliveries(), sinks.effects()
        exports = {name: sinks.export(name).read_text() for name in ran}
        calm.dispose()
        sinks.dispose()
    print("\n" + report)

    # every run either was killed or succeeded; none found a killed run's lock still held
    failures = [f for d in suite.drivers for f in d.failures]
    assert not failures, f"{failures}\n{report}"
    kills = [k for d in suite.drivers for k in d.kills]
    assert sum(k.stage in STAGES for k in kills) >= MIN_KILLS, report
    assert set(STAGES) <= {k.stage for k in kills}, f"not every stage was hit\n{report}"
    landed = {k.plan for k in kills if k.plan and k.stage == "deployment"}
    assert landed >= REQUIRED, f"planned kills that did not land: {REQUIRED - landed}\n{report}"

    # every action delivered to its sink, under its own key only; the effect once per key
    for kind in SINKS:
        assert set(delivered[kind]) == keys[kind], f"{kind}: {sorted(delivered[kind])}\n{report}"
        if kind != "python":  # a callable that ignores its key may act twice: reported only
            once = {key: effects[kind][key] for key in keys[kind]}
            assert once == dict.fromkeys(keys[kind], 1), f"{kind}: {once}\n{report}"
    for h in hits:
        outcome, _, _, action = str(h.key).split("/")
        assert h.path == f"/hooks/{outcome}/{action}", (h, report)
        assert h.body == {"usd": 20, "period": period} or not h.complete, (h, report)
    for name, text in exports.items():
        assert text.splitlines() == ["key,usd", f"{sinks.key(name, 'export')},20"], report

    for d in suite.drivers:
        cycles = records[d.outcome]
        assert [c.period for c in cycles] == [period], f"{d.outcome}: {cycles}\n{report}"
        [record] = cycles  # none missing, none doubled
        actions = {a.key: a for a in record.actions}
        assert set(actions) == {sinks.key(d.outcome, a) for a in ACTIONS}, report
        for key, run in actions.items():
            kind = ACTIONS[run.name]
            sent = delivered[kind][key]
            assert run.status in FINAL and run.reach == REACH[kind], (run, report)
            # sql and file recognise their own key: a repeat after a kill is no resend
            assert run.status == "succeeded" or kind in ("webhook", "python"), (run, report)
            # the same key sent (or called) again only after an attempt whose outcome is
            # unknown, and so recorded
            assert sent == 1 or run.status == "resent", (f"{key}: {sent} deliveries", run, report)
            assert sent <= run.attempts, (
                f"{key}: {sent} deliveries but {run.attempts} attempts recorded\n{report}"
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
