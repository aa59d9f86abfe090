"""One month's cycles for many outcomes at once (`cycles.batch.run_many`, as `radar run-all` does).

Data: N outcomes `m0000`... with 24 months of history each, a row every other day (~365 rows).
Even-numbered outcomes read a CSV file of their own (in a temp dir); odd-numbered ones read one
shared PostgreSQL table (outcome, day, rate; index on (outcome, day)) through
`query: {table: <schema>.facts, filter: {outcome: <id>}}`. The series are drawn so that every
decision occurs: adjust, keep (improvement signal), achieved, hold (a missing value fails a
check) and switch (deterioration signal), one fifth each.

History: PostgreSQL, as in production (`--history sqlite`: a SQLite file). Everything in
PostgreSQL lives in schemas `radar_bench_many_<pid>[_profile|_prefect]`, dropped at the end (and
those of earlier runs whose process is gone); the temp dir is removed at exit.
PostgreSQL: RADAR_BENCH_POSTGRES_URL, else RADAR_TEST_POSTGRES_URL, else the local default.

Measured, each against a baseline taken in the same run:
  batch    `run_many` over the declarations directory for the last whole month with `--workers`
           processes (default: one per CPU), each replaced after `--recycle` cycles on average:
           wall time and cycles/s vs the 10-minute target and vs the same cycles one after
           another in one process (from the profile); decisions; CPU of workers, of this
           process and of the PostgreSQL server. Memory: this process's RSS and the live
           workers' RSS every 100 cycles, each pool's peak worker RSS; flat = the last pool's
           peak within +10 MB of the first's and this process within +10 MB of its RSS after
           the first 100 cycles.
  history  `radar history m0000 --json` as a subprocess with the store full (13 cycles of its
           own), median of 5, vs `python -c pass`; `Store.cycles` in this process; and where the
           subprocess spends its time (imports, connecting, the query).
  profile  `--profile-cycles` cycles (half CSV, half SQL) in one fresh process with the batch
           worker's own function: exclusive time per group (declaration loading, preflight,
           reading data, checks, history reads/writes, ...), then the same cycles again under
           cProfile: top functions by cumulative time.
  prefect  only with `--prefect N`: N cycles as Prefect flow runs (`cycles.flow.run_in_flow`)
           in `--workers` threads, and 10 one after another, against a temporary
           `prefect server start`, vs `run_many` on the same N outcomes.

Run: .venv/bin/python bench/many_outcomes.py [--outcomes 1000] [--workers 2] [--recycle 100]
     [--history postgresql|sqlite] [--profile-cycles 50] [--prefect 0] [--strict]
"""

from __future__ import annotations

import argparse
import builtins
import collections
import contextlib
import functools
import io
import json
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import _sample

# Worker processes import this file again (as __mp_main__, as multiprocessing does): only the
# script itself makes (and removes at exit) a temp dir; a worker never exits through atexit.
TMP = _sample.isolate("radar-bench-many-") if __name__ == "__main__" else Path()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = (
    os.environ.get("RADAR_BENCH_POSTGRES_URL")
    or os.environ.get("RADAR_TEST_POSTGRES_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)
SCHEMA = f"radar_bench_many_{os.getpid()}"
TOTAL_TARGET_S, HISTORY_TARGET_S, FLAT_TOLERANCE_MB = 600, 0.5, 10

DECLARATION = """\
outcome: {oid}
title: Outcome {oid}
cadence: monthly
result: {{metric: rate, target: 0.30, direction: increase}}
metrics:
  rate: {{connector: src, period: day, value: rate{query}}}
connectors:
  src: {connector}
checks:
  rate:
    - expect_column_values_to_not_be_null: {{column: rate}}
    - expect_column_values_to_be_between: {{column: rate, min_value: 0, max_value: 1}}
approaches:
  - name: incentive
    params: {{usd: 20}}
    adjust: {{usd: {{step: 10, max: 40}}}}
  - name: nudge
    params: {{asks: 2}}
policy: {{sustain: 3, baseline_periods: 12, max_adjustments: 3}}
"""


# -- data and PostgreSQL ------------------------------------------------------------------------


def series(index: int, months: list[str]) -> list[tuple[str, float | None]]:
    """(day, rate) every other day; the last months shaped by index % 5 (see the docstring)."""
    rng, shape = random.Random(index), index % 5
    level = 0.18 + 0.04 * rng.random()
    rows: list[tuple[str, float | None]] = []
    for i, label in enumerate(months):
        first = date.fromisoformat(f"{label}-01")
        late = i - (len(months) - 4)  # 0..3 in the last four months
        shift = {1: 0.08 if late == 3 else 0, 2: 0.15 if late >= 1 else 0,
                 4: -0.08 if late == 3 else 0}.get(shape, 0.0)  # fmt: skip
        day = first
        while day.month == first.month:
            value = level + shift + 0.01 * (rng.random() - 0.5)
            missing = shape == 3 and late == 3 and day.day == 1
            rows.append((day.isoformat(), None if missing else round(value, 4)))
            day += timedelta(days=2)
    return rows


def write_outcomes(flows: Path, n: int, months: list[str]) -> list[Path]:
    """The declarations and CSV files; the PostgreSQL half's rows go to `load_facts`."""
    (flows / "data").mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        oid = f"m{index:04d}"
        if index % 2 == 0:
            lines = [f"{d},{'' if r is None else r}" for d, r in series(index, months)]
            (flows / "data" / f"{oid}.csv").write_text("day,rate\n" + "\n".join(lines) + "\n")
            query, connector = "", f"{{type: csv, path: data/{oid}.csv}}"
        else:
            query = f", query: {{table: {SCHEMA}.facts, filter: {{outcome: {oid}}}}}"
            connector = f"{{type: sql, url: '{PG_URL}'}}"
        paths.append(flows / f"{oid}.yaml")
        paths[-1].write_text(DECLARATION.format(oid=oid, query=query, connector=connector))
    return paths


def engine(**kwargs: Any) -> Any:
    import sqlalchemy as sa

    from cycles.store import normalise_url

    return sa.create_engine(normalise_url(PG_URL), **kwargs)


def sql(*statements: str) -> None:
    with engine(isolation_level="AUTOCOMMIT").connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def drop_stale_schemas() -> list[str]:
    """Schemas of earlier runs whose process is gone (killed before it could clean up)."""
    with engine().connect() as conn:
        names = conn.exec_driver_sql("SELECT nspname FROM pg_namespace").scalars().all()
    stale = [name for name in names if (m := re.fullmatch(r"radar_bench_many_(\d+)\w*", name))
             and not Path(f"/proc/{m.group(1)}").exists()]  # fmt: skip
    sql(*(f"DROP SCHEMA IF EXISTS {name} CASCADE" for name in stale))
    return stale


def load_facts(n: int, months: list[str]) -> int:
    """The PostgreSQL half's rows into `<schema>.facts` (COPY), indexed and analysed."""
    raw = engine().raw_connection()
    buffer, rows = io.StringIO(), 0
    for index in range(1, n, 2):
        for day, rate in series(index, months):
            buffer.write(f"m{index:04d},{day},{'' if rate is None else rate}\n")
            rows += 1
    buffer.seek(0)
    try:
        cur = raw.cursor()
        cur.execute(f"CREATE TABLE {SCHEMA}.facts (outcome text NOT NULL, day date NOT NULL, "
                    "rate float8)")  # fmt: skip
        cur.copy_expert(f"COPY {SCHEMA}.facts FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute(f"CREATE INDEX ON {SCHEMA}.facts (outcome, day)")
        raw.commit()
    finally:
        raw.close()
    sql(f"VACUUM ANALYZE {SCHEMA}.facts")
    return rows


def history_url(kind: str, suffix: str = "") -> str:
    """A fresh history: a PostgreSQL schema of its own (search_path), or a SQLite file."""
    import sqlalchemy as sa

    from cycles.store import normalise_url

    if kind == "sqlite":
        return f"sqlite:///{TMP / f'history{suffix}.db'}"
    schema = SCHEMA + suffix
    sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    url = sa.make_url(normalise_url(PG_URL)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    return url.render_as_string(hide_password=False)


# -- measuring ----------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self", key: str = "VmRSS") -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return None


def runqueue_wait(pid: int) -> float | None:
    """Seconds `pid` has spent ready to run but waiting for a CPU (/proc/PID/schedstat)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return None


def postgres_cpu() -> float:
    """CPU seconds of every `postgres` process (other clients' queries included)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if "(postgres)" in stat:
                    total += sum(int(x) for x in stat.rpartition(")")[2].split()[11:13])
    return total / tick


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def batch(flows: Path, period: str, workers: int, url: str, recycle: int) -> dict[str, Any]:
    """run_many over the directory: progress and memory every 100 cycles, CPU, decisions."""
    from cycles.batch import run_many

    decisions: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    pool_peak: dict[int, float] = {}  # pool number -> its largest worker ru_maxrss
    samples, live, wall, cpu = [], set(), [], []
    queued: dict[int, float] = {}  # worker pid -> its time waiting for a CPU, so far
    pg_before, own_before, load_before = postgres_cpu(), os.times(), load_average()
    clock = time.perf_counter()
    for done, result in enumerate(run_many([flows], period, workers=workers, store_url=url,
                                           recycle=recycle), 1):  # fmt: skip
        pool = (done - 1) // (workers * recycle)
        pool_peak[pool] = max(pool_peak.get(pool, 0.0), result.peak_mb)
        live.add(result.worker)
        queued[result.worker] = runqueue_wait(result.worker) or queued.get(result.worker, 0.0)
        wall.append(result.seconds)
        cpu.append(result.cpu_seconds)
        if result.ok:
            decisions[result.decision or "not reviewed"] += 1
        else:
            errors.append(f"{result.outcome}: {result.error}")
        if done % 100 == 0:
            workers_now = [r for r in (rss_mb(pid) for pid in live) if r]
            live = {pid for pid in live if Path(f"/proc/{pid}").exists()}
            elapsed = time.perf_counter() - clock
            samples.append((done, elapsed, rss_mb() or 0.0, max(workers_now, default=0.0)))
            print(f"  {done:5d} cycles in {elapsed:6.1f} s ({done / elapsed:5.2f}/s)", flush=True)
    seconds = time.perf_counter() - clock
    own = os.times()
    from multiprocessing import forkserver

    server_pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return {
        "wall": seconds, "n": len(wall), "decisions": dict(decisions), "errors": errors,
        "samples": samples, "pool_peak": pool_peak, "cycle_wall": wall, "cycle_cpu": cpu,
        "queued": sum(queued.values()),
        "own_cpu": own.user + own.system - own_before.user - own_before.system,
        "pg_cpu": postgres_cpu() - pg_before, "load": (load_before, load_average()),
        "parent_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "forkserver": rss_mb(server_pid, "VmHWM") if server_pid else None,
    }  # fmt: skip


def report_batch(
    r: dict[str, Any], workers: int, cpus: int, recycle: int, serial: float | None
) -> bool:
    n, wall = r["n"], r["wall"]
    rate = n / wall
    print(f"\nbatch: {n} cycles in {wall:.1f} s = {rate:.2f} cycles/s with {workers} worker "
          f"processes on {cpus} CPUs (replaced every {recycle} cycles each); load average "
          f"(1/5/15 min) {r['load'][0]} before, {r['load'][1]} after")  # fmt: skip
    versus = (
        f"{serial * rate:.2f}x the same cycles one after another in one process (the profile's "
        f"first pass, just before: {serial * 1000:.0f} ms/cycle; the load may differ); "
        if serial
        else ""
    )
    print(f"  {versus}1,000 cycles at this rate: {1000 / rate / 60:.1f} min (target "
          f"{TOTAL_TARGET_S // 60} min)")  # fmt: skip
    print(f"  decisions {dict(sorted(r['decisions'].items()))}; errors {len(r['errors'])}")
    for line in r["errors"][:5]:
        print(f"    {line}")
    mean_wall, mean_cpu = statistics.mean(r["cycle_wall"]), statistics.mean(r["cycle_cpu"])
    queued = r["queued"] / n
    blocked = mean_wall - mean_cpu - queued
    print(f"  per cycle in its worker: {mean_wall * 1000:.0f} ms wall = {mean_cpu * 1000:.0f} ms "
          f"CPU + {queued * 1000:.0f} ms waiting for a CPU (all busy: other workers, other "
          f"processes) + "
          f"{blocked * 1000:.0f} ms blocked (database round trips and commits, files)")  # fmt: skip
    busy = sum(r["cycle_wall"]) / wall
    idle = (mean_cpu + blocked) * n / workers
    print(f"  {busy:.2f} cycles under way on average (of {workers} workers); on CPUs free for "
          f"them (no wait for a CPU): ~{idle:.0f} s for these {n} cycles (estimate)")  # fmt: skip
    cpu = sum(r["cycle_cpu"]) + r["own_cpu"] + r["pg_cpu"]
    print(f"  CPU: workers {sum(r['cycle_cpu']):.1f} s, this process {r['own_cpu']:.1f} s, "
          f"PostgreSQL server {r['pg_cpu']:.1f} s ({r['pg_cpu'] / n * 1000:.0f} ms/cycle; other "
          f"clients included) = {cpu / (wall * cpus):.0%} of the {cpus} CPUs")  # fmt: skip
    print(f"  {'cycles':>7} {'seconds':>8} {'this process RSS':>17} {'largest live worker':>20}")
    for done, elapsed, own, worker in r["samples"]:
        print(f"  {done:7d} {elapsed:8.1f} {own:14.0f} MB {worker:17.0f} MB")
    peaks = [r["pool_peak"][k] for k in sorted(r["pool_peak"])]
    forkserver = f"{r['forkserver']:.0f} MB" if r["forkserver"] else "n/a"
    print(
        f"  peak RSS: this process {r['parent_peak']:.0f} MB; forkserver {forkserver}; worker "
        f"peak per pool of {workers} (in order): {', '.join(f'{p:.0f}' for p in peaks)} MB"
    )
    grew = r["samples"][-1][2] - r["samples"][0][2] if len(r["samples"]) > 1 else 0.0
    print(f"  growth: workers {peaks[-1] - peaks[0]:+.0f} MB from the first pool to the last; "
          f"this process {grew:+.1f} MB from 100 cycles to {n}")  # fmt: skip
    return peaks[-1] <= peaks[0] + FLAT_TOLERANCE_MB and grew < FLAT_TOLERANCE_MB


# -- radar history ------------------------------------------------------------------------------

PHASES = """
import json, sys, time
marks = [time.perf_counter()]
import cyclopts, rich.console; marks.append(time.perf_counter())
import cycles.record; marks.append(time.perf_counter())
import sqlalchemy.orm; marks.append(time.perf_counter())
from cycles.store.store import Store; marks.append(time.perf_counter())
store = Store(); marks.append(time.perf_counter())
records = store.cycles(sys.argv[1]); marks.append(time.perf_counter())
json.dumps([r.to_json_dict() for r in records], default=str); marks.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""
PHASE_NAMES = ["import cyclopts and rich", "import the record models (pydantic)",
               "import SQLAlchemy (core + ORM)", "import the store modules",
               "Store(): connect, check the schema version", "Store.cycles(outcome)",
               "to JSON"]  # fmt: skip


def history_times(url: str, outcome: str, reps: int = 5) -> dict[str, Any]:
    """`radar history` (a subprocess), `python -c pass`, its phases, `Store.cycles` in-process."""
    from cycles.store import Store

    env = dict(os.environ, RADAR_DATABASE_URL=url)

    def timed(args: list[str]) -> tuple[float, str]:
        clock = time.perf_counter()
        done = subprocess.run(args, env=env, cwd=TMP, capture_output=True, text=True, check=True)
        return time.perf_counter() - clock, done.stdout

    radar = [str(Path(sys.executable).parent / "radar"), "history", outcome, "--json"]
    timed(radar)  # warm the OS file cache
    runs, bare, phases = [], [], []
    for _ in range(reps):  # interleaved, so a busy moment hits each alike
        runs.append(timed(radar))
        bare.append(timed([sys.executable, "-c", "pass"])[0])
        phases.append(json.loads(timed([sys.executable, "-c", PHASES, outcome])[1]))
    store = Store(url, migrate=False)
    store.cycles(outcome)  # connect
    in_process = []
    for _ in range(reps):
        clock = time.perf_counter()
        store.cycles(outcome)
        in_process.append(time.perf_counter() - clock)
    store.dispose()
    return {
        "wall": statistics.median(r[0] for r in runs), "cycles": len(json.loads(runs[0][1])),
        "bare": statistics.median(bare), "in_process": statistics.median(in_process),
        "phases": [statistics.median(p[i] for p in phases) for i in range(len(PHASE_NAMES))],
        "load": load_average(),
    }  # fmt: skip


def report_history(h: dict[str, Any], outcome: str, stored: int) -> None:
    print(f"\nhistory: `radar history {outcome} --json` ({h['cycles']} cycles of {stored} stored): "
          f"{h['wall']:.3f} s (median of 5; target < {HISTORY_TARGET_S} s) vs `python -c pass` "
          f"{h['bare']:.3f} s: {h['wall'] / h['bare']:.0f}x; Store.cycles in this process "
          f"{h['in_process'] * 1000:.1f} ms; load average {h['load']}")  # fmt: skip
    print("  where the subprocess's time goes:")
    for name, spent in zip(PHASE_NAMES, h["phases"], strict=True):
        print(f"    {name:<44} {spent * 1000:6.0f} ms")


# -- the profile (in a fresh process) -----------------------------------------------------------


class Buckets:
    """Exclusive wall and CPU time per group: a wrapped call pauses the group of its caller."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.stack = ["engine and the rest"]
        self.start()

    def start(self) -> None:
        self.spent: collections.Counter[str] = collections.Counter()
        self.cpu: collections.Counter[str] = collections.Counter()
        self.mark, self.cpu_mark = time.perf_counter(), time.process_time()

    def account(self) -> None:
        """What passed since the last mark, to the group running now."""
        now, cpu = time.perf_counter(), time.process_time()
        self.spent[self.stack[-1]] += now - self.mark
        self.cpu[self.stack[-1]] += cpu - self.cpu_mark
        self.mark, self.cpu_mark = now, cpu

    def _switch(self, push: str | None) -> None:
        self.account()
        self.stack.append(push) if push else self.stack.pop()

    def wrap(self, group: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._switch(group)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch(None)

        return timed

    def patch(self, group: str, owner: Any, *names: str) -> None:
        for name in names:
            if hasattr(owner, name):
                setattr(owner, name, self.wrap(group, getattr(owner, name)))
            else:  # renamed since: say so rather than fail
                self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")

    def context(self, group: str, make: Any) -> Any:
        """A context manager factory whose entering and leaving count for `group`."""
        buckets = self

        class Timed:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.cm = make(*args, **kwargs)

            def __enter__(self) -> Any:
                return buckets.wrap(group, self.cm.__enter__)()

            def __exit__(self, *exc: Any) -> Any:
                return buckets.wrap(group, self.cm.__exit__)(*exc)

        return Timed


def profile_child(url: str, period: str, paths: list[str]) -> None:
    """In a fresh process: the forkserver's imports, the cycles timed by group, deleted, the
    same cycles under cProfile; prints JSON."""
    import cProfile
    import importlib
    import pstats

    from cycles.batch import PRELOAD

    clock = time.perf_counter()
    for module in PRELOAD:
        importlib.import_module(module)
    preload = time.perf_counter() - clock

    from connectors import sql as sql_connector
    from connectors import sql_checks
    from connectors.base import Checks, Connector
    from cycles import engine as cycle_engine
    from cycles import stages
    from cycles.batch import _run_one, _start_worker
    from cycles.declaration import loader
    from cycles.store import locks
    from cycles.store.store import Store

    _start_worker(url, dict(os.environ), str(Path.cwd()))  # what run_many does in each worker
    b = Buckets()
    b.patch("declaration loading", loader, "load")
    b.patch("preflight (sources answer, columns exist)", cycle_engine, "preflight")
    b.patch("reading data (connectors)", Connector, "measure")
    b.patch("reading data (connectors)", sql_connector.SqlConnector, "measure")
    b.patch("checks", Checks, "evaluate")
    b.patch("checks", sql_checks, "period_checks")
    b.patch("statistics and policy", stages, "standing", "choose_approach", "approach_start",
            "assessment_window", "baseline_limits", "review")  # fmt: skip
    b.patch("history reads", Store, "cycles_before", "get_cycle", "get_action", "cycles")
    b.patch("history writes", Store, "save_stage", "save_failure", "skip_action", "begin_action",
            "finish_action")  # fmt: skip
    locks.run_lock = b.context("run lock", locks.run_lock)  # type: ignore[assignment]
    builtins.__import__ = b.wrap("imports", builtins.__import__)

    def run_all() -> list[Any]:
        return [_run_one((p, None), period=period, review=False, dry_run=False) for p in paths]

    b.start()
    clock = time.perf_counter()
    results = run_all()
    wall = time.perf_counter() - clock
    b.account()
    groups, cpu = dict(b.spent), dict(b.cpu)  # the cProfile pass below adds to them
    builtins.__import__ = getattr(builtins.__import__, "__wrapped__", builtins.__import__)
    store = Store(url, migrate=False)
    for r in results:
        store.delete_outcome(r.outcome)
    profiler = cProfile.Profile()
    clock = time.perf_counter()
    profiler.enable()
    again = run_all()
    profiler.disable()
    profiled = time.perf_counter() - clock
    out = io.StringIO()
    shown = r"cycles/|connectors/|sqlalchemy/engine/base|ruamel/yaml/main|pandas/io|psycopg2"
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(shown, 25)
    print(json.dumps({
        "preload": preload, "wall": wall, "n": len(results), "first": results[0].seconds,
        "later": statistics.median(r.seconds for r in results[1:]),
        "errors": [r.error for r in results + again if r.error], "missing": b.missing,
        "groups": groups, "cpu": cpu, "profiled": profiled,
        "cprofile": out.getvalue(),
    }))  # fmt: skip


def profile(paths: list[Path], period: str, kind: str) -> dict[str, Any]:
    from cycles.store import Store

    url = history_url(kind, "_profile")
    Store(url).dispose()  # migrated outside the profile
    cmd = [sys.executable, __file__, "--profile-child", url, period, *map(str, paths)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=TMP)
    if done.returncode != 0:
        raise SystemExit(f"the profile failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_profile(p: dict[str, Any]) -> None:
    n, wall = p["n"], p["wall"]
    print(
        f"\nprofile: {n} cycles one after another in one fresh process: {wall:.2f} s = "
        f"{wall / n * 1000:.0f} ms/cycle (first {p['first'] * 1000:.0f} ms, median of the rest "
        f"{p['later'] * 1000:.0f} ms); the forkserver's imports, once: {p['preload']:.2f} s"
    )
    total = sum(p["groups"].values())
    print(f"  {'exclusive time per group':<44} {'wall':>12} {'share':>6} {'CPU':>12}")
    for group, spent in sorted(p["groups"].items(), key=lambda kv: -kv[1]):
        cpu = p["cpu"].get(group, 0.0)
        print(f"  {group:<44} {spent / n * 1000:6.1f} ms/cycle {spent / total:5.0%} "
              f"{cpu / n * 1000:6.1f} ms/cycle")  # fmt: skip
    if p["missing"]:
        print(f"  (not timed, no longer found: {', '.join(p['missing'])})")
    if p["errors"]:
        print(f"  errors: {p['errors'][:3]}")
    print(f"\n  the same {n} cycles under cProfile ({p['profiled']:.2f} s), by cumulative time:")
    lines = p["cprofile"].splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    site = str(Path(sys.executable).parents[1]) + "/lib/python3.11/site-packages/"
    for line in lines[start:]:
        if line.strip():
            print("  " + line.replace(str(ROOT) + "/", "").replace(site, ""))


# -- Prefect, optional --------------------------------------------------------------------------


def prefect_part(paths: list[Path], period: str, workers: int, kind: str) -> dict[str, Any]:
    """The same outcomes as flow runs in `workers` threads, and 10 one after another, against a
    temporary `prefect server start` (SQLite), vs run_many; the history emptied before each."""
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(ROOT / "tests"))
    from cycles.batch import run_many
    from cycles.declaration import load
    from cycles.store import Store

    from prefect_server import PrefectServer

    url = history_url(kind, "_prefect")
    os.environ["RADAR_DATABASE_URL"] = url  # what run_in_flow's store opens
    store, outcomes = Store(url), [load(p) for p in paths]
    out: dict[str, Any] = {"n": len(paths)}

    def timed(key: str, work: Any) -> None:
        for outcome in outcomes:
            store.delete_outcome(outcome.outcome)
        clock = time.perf_counter()
        ok = work()
        out[key] = (time.perf_counter() - clock, ok)

    timed("run_many", lambda: sum(r.ok for r in run_many(paths, period, workers=workers)))
    clock = time.perf_counter()
    with PrefectServer.start(TMP / "prefect-server", timeout=300) as server:
        out["server"] = time.perf_counter() - clock
        with server.settings():
            from cycles.flow import run_in_flow

            run_in_flow(outcomes[0], period)  # imports, client, first flow: untimed

            def in_thread(outcome: Any) -> bool:
                with server.settings():  # a context variable: per thread
                    return run_in_flow(outcome, period).decision is not None

            def threads() -> int:
                with ThreadPoolExecutor(workers) as pool:
                    return sum(pool.map(in_thread, outcomes))

            timed("threads", threads)
            timed("serial", lambda: sum(map(in_thread, outcomes[:10])))
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all()  # sent while the server still answers
            EventsWorker.drain_all()
    store.dispose()
    return out


def report_prefect(f: dict[str, Any], workers: int) -> None:
    n = f["n"]
    base = f["run_many"][0] / n
    print(f"\nprefect: {n} outcomes; a temporary `prefect server start` (SQLite), healthy after "
          f"{f['server']:.1f} s")  # fmt: skip
    rows = [("run_many", f"run_many, {workers} processes", n),
            ("threads", f"run_in_flow, {workers} threads", n),
            ("serial", "run_in_flow, one after another", min(n, 10))]  # fmt: skip
    for key, label, count in rows:
        spent, ok = f[key]
        print(f"  {label:<34} {count:4d} cycles {spent:6.1f} s = {spent / count * 1000:5.0f} "
              f"ms/cycle ({ok} reviewed); {spent / count / base:5.1f}x run_many")  # fmt: skip


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    from cycles.batch import RECYCLE, default_workers

    cpus = default_workers()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=cpus, help="default: one per CPU")
    parser.add_argument("--recycle", type=int, default=RECYCLE, help="cycles per worker process")
    parser.add_argument("--history", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--profile-cycles", type=int, default=50)
    parser.add_argument("--prefect", type=int, default=0, metavar="N",
                        help="also run N outcomes as Prefect flow runs (default: not)")  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--profile-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        url, period, *paths = args.profile_child
        profile_child(url, period, paths)
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill too
    print(f"load average (1/5/15 min) at start: {load_average()}; {cpus} CPUs")
    stale = drop_stale_schemas()
    if stale:
        print(f"dropped schemas left by killed runs: {', '.join(stale)}")
    sql(f"CREATE SCHEMA {SCHEMA}")
    try:
        return run(args, cpus)
    finally:
        sql(*(f"DROP SCHEMA IF EXISTS {SCHEMA}{s} CASCADE" for s in ("", "_profile", "_prefect")))
        print(f"dropped PostgreSQL schemas {SCHEMA}*; load average at the end: {load_average()}")


def run(args: argparse.Namespace, cpus: int) -> int:
    from cycles.batch import run_many

    months = _sample.past_months()
    period, n = months[-1], args.outcomes
    flows = TMP / "flows"
    clock = time.perf_counter()
    paths = write_outcomes(flows, n, months)
    rows = load_facts(n, months)
    print(f"{n} outcomes ({(n + 1) // 2} CSV files, {n // 2} in {SCHEMA}.facts: {rows} rows) "
          f"with {len(months)} months each, generated in {time.perf_counter() - clock:.1f} s; "
          f"cycles of {period}")  # fmt: skip
    url = history_url(args.history)
    where = f"PostgreSQL schema {SCHEMA}, as production" if args.history == "postgresql" else url
    print(f"history: {where}")

    probe = paths[0]  # `radar history` is timed on this one: 12 cycles before the batch's
    for month in months[-13:-1]:
        for r in run_many([probe], month, workers=1, store_url=url):
            assert r.ok, r.error

    sample = paths[: args.profile_cycles]
    prof = profile(sample, period, args.history) if sample else None

    print(f"\nrun_many: {args.workers} workers, recycle {args.recycle}", flush=True)
    result = batch(flows, period, args.workers, url, args.recycle)
    serial = prof["wall"] / prof["n"] if prof else None
    flat = report_batch(result, args.workers, cpus, args.recycle, serial)

    hist = history_times(url, probe.stem)
    report_history(hist, probe.stem, result["n"] + 12)
    if prof:
        report_profile(prof)
    if args.prefect:
        report_prefect(prefect_part(paths[: args.prefect], period, args.workers, args.history),
                       args.workers)  # fmt: skip

    rate = result["n"] / result["wall"]
    projected = "" if n >= 1000 else f" (1,000 at this rate: {1000 / rate:.0f} s)"
    fast = (result["wall"] if n >= 1000 else 1000 / rate) < TOTAL_TARGET_S
    print()
    checks = [
        (fast and not result["errors"],
         f"{result['n']} cycles in {result['wall']:.0f} s{projected}, {len(result['errors'])} "
         f"errors (target: 1,000 under {TOTAL_TARGET_S // 60} minutes, no errors)"),
        (flat, f"memory flat (the last pool's worker peak within +{FLAT_TOLERANCE_MB} MB of the "
               f"first's; this process within +{FLAT_TOLERANCE_MB} MB after 100 cycles)"),
        (hist["wall"] < HISTORY_TARGET_S,
         f"radar history {hist['wall']:.2f} s (target < {HISTORY_TARGET_S} s)"),
    ]  # fmt: skip
    for ok, text in checks:
        print(_sample.verdict(ok, text))
    return 1 if args.strict and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
