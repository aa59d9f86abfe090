"""A monthly tick of many outcomes through Prefect workers, against the same turns in-process.

Set-up (untimed unless it says): N generated outcomes `bench-0000`... in a temp project (the
`_sample.py` outcome: 24 months of daily CSV rows, each outcome its own copy); the history in a
fresh PostgreSQL database; a real `prefect server start` on 127.0.0.1 (`--server postgres`, the
default: its own fresh PostgreSQL database through asyncpg; `sqlite`: Prefect's default file)
with the settings README "Running many outcomes" recommends (SERVER_SETTINGS; `--stock-server`
for Prefect's defaults, `--server-setting NAME=VALUE` to try others).
`radar deploy --shards S` (timed, reported) deploys the outcomes and S tick deployments
`radar-tick/monthly-<k>of<S>`. Every outcome's previous month M-1 is opened in-process (as the
tick of M-1 would have opened it), then W `prefect worker start --pool radar` process workers
start and are waited for.

Measured:
  worker      the tick of month M: one run per tick deployment, scheduled now, timed from their
              creation until every run is final (polled every second). Each tick run ticks its
              shard's outcomes in one process, `--concurrency` at a time: per outcome a subflow
              run `<outcome>/M` (result, approach, deployment) with its review subflow run
              `<outcome>/M-1` (assessment, review), and their artifacts. Checked afterwards:
              every outcome's M-1 reviewed and M opened once in the history, every subflow run
              and stage task run present once and completed, each outcome ticked by one run.
  in-process  the same turns (`cycles.turn.plan`, then `run_cycle` for the due review and the
              opening, as `radar tick` does) in a loop without Prefect, on an identically seeded
              history: the work itself.
Also reported: peak RSS per worker (the worker process and the tick runs it started, sampled
every 0.5 s) with each tick run's RSS at a quarter, half and three quarters of its life (flat
memory), the answers of 5xx/429 the server gave and the API requests per cycle (its access
log), and the load average.
`--strict`: exit 0 only when N outcomes were ticked in under 10 minutes with 0 failed runs.

`--mode per-outcome` measures what the issue started from instead: N runs of the outcomes'
own deployments (`{"period": M-1}`, all five stages each), each a new process of the worker
(`--limit` of them at once, default 4), against `run_cycle` in a loop.

Run: .venv/bin/python bench/scheduled_cycles.py --outcomes 1000 --concurrency 8 --strict
     [--shards 2 --workers 2] [--stock-server] [--server postgres|sqlite]
     [--pg postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import _sample

TMP = _sample.isolate("radar-bench-scheduled-")  # before Prefect is imported
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from prefect_server import RADAR, PrefectServer, _tree, run_cli  # noqa: E402

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# The server settings README "Running many outcomes" recommends (`--stock-server`: Prefect's
# defaults): database connections kept open instead of opened and type-introspected per request
# beyond 5, and task runs recorded from their events 25 at a time (or each second) instead of
# one database write per event.
SERVER_SETTINGS = {
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "25",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}
TARGET_S = 600.0  # 1,000 outcomes in under 10 minutes: at least 100 cycles/min


# -- set-up ------------------------------------------------------------------------------------


def write_outcomes(project: Path, n: int) -> tuple[list[Path], list[str]]:
    """N declarations `flows/bench-NNNN/bench-NNNN.yaml` with their data; the sample's months."""
    sample, months = _sample.write_sample(TMP / "sample")
    text = sample.read_text()
    paths = []
    for i in range(n):
        oid = f"bench-{i:04d}"
        directory = project / "flows" / oid
        (directory / "data").mkdir(parents=True)
        shutil.copy(TMP / "sample" / "data" / "rate.csv", directory / "data" / "rate.csv")
        path = directory / f"{oid}.yaml"
        path.write_text(text.replace("outcome: bench\n", f"outcome: {oid}\n", 1))
        paths.append(path)
    return paths, months


def fresh_database(base: str, name: str) -> str:
    """Drop and create database `name` on the PostgreSQL server at `base`; its URL (psycopg2)."""
    import sqlalchemy as sa

    base = base.replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{base}/{name}"


def seed(paths: list[Path], month: str, url: str) -> float:
    """Open `month` for every outcome, in-process, as its tick would have (no review yet)."""
    from cycles.declaration import load
    from cycles.engine import run_cycle
    from cycles.store import Store

    store, started = Store(url), time.perf_counter()
    first = date.fromisoformat(f"{month}-01")
    for path in paths:
        run_cycle(load(path), month, store=store, today=first)
    store.dispose()
    return time.perf_counter() - started


def wait_online(pool: str, count: int, timeout: float = 180) -> float:
    from prefect import get_client

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(pool)
        online = [w for w in workers if str(getattr(w.status, "value", w.status)) == "ONLINE"]
        if len(online) >= count:
            return time.monotonic() - started
        time.sleep(0.5)
    sys.exit(f"fewer than {count} workers came online for pool {pool!r} within {timeout} s")


# -- measuring ---------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """Every 0.5 s: each worker's RSS with its children's (its run processes), and each run
    process's RSS over its life."""

    def __init__(self, workers: list[Any]) -> None:
        super().__init__(daemon=True)
        self.workers, self.stop = workers, threading.Event()
        self.peak: dict[int, float] = {}  # worker number -> peak RSS of its tree
        self.runs: dict[int, list[float]] = {}  # run process pid -> RSS samples

    def run(self) -> None:
        while not self.stop.is_set():
            for number, worker in enumerate(self.workers):
                tree = _tree(worker.proc.pid)
                self.peak[number] = max(self.peak.get(number, 0.0), sum(map(rss_mb, tree)))
                for pid in tree - {worker.proc.pid}:
                    mb = rss_mb(pid)
                    if mb > 50:  # a run process, not a short-lived helper
                        self.runs.setdefault(pid, []).append(mb)
            self.stop.wait(0.5)


def access_log(log: Path, start: int = 0, end: int | None = None) -> str:
    """The server's log from byte `start` to `end`."""
    with log.open("rb") as f:
        f.seek(start)
        return f.read(None if end is None else end - start).decode(errors="replace")


ANSWER = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (\S+) HTTP/[\d.]+" (\d\d\d)')


def answers(text: str) -> Counter[tuple[str, str, str]]:
    """The requests the server answered (its access log), by method, path (ids as `{id}`, no
    query) and status."""
    found: Counter[tuple[str, str, str]] = Counter()
    for m in ANSWER.finditer(text):
        path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", m[2].split("?")[0])
        found[(m[1], path, m[3])] += 1
    return found


def access_errors(text: str) -> Counter[str]:
    """5xx and 429 answers in the server's access log, by status and path."""
    found: Counter[str] = Counter()
    for (method, path, status), count in answers(text).items():
        if status.startswith("5") or status == "429":
            found[f"{status} {method} {path}"] += count
    return found


def api_requests(text: str) -> Counter[str]:
    """Every request the server answered, by method and path."""
    found: Counter[str] = Counter()
    for (method, path, _), count in answers(text).items():
        found[f"{method} {path}"] += count
    return found


def create_runs(deployments: list[Any], parameters: dict[str, Any], at_once: int = 8) -> list[Any]:
    """One run per deployment, scheduled now; a 5xx answer is retried after 1 s."""
    from prefect import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.states import Scheduled

    gate = asyncio.Semaphore(at_once)

    async def create(client: Any, deployment_id: Any) -> Any:
        async with gate:
            for attempt in range(30):
                try:
                    run = await client.create_flow_run_from_deployment(
                        deployment_id, parameters=parameters,
                        state=Scheduled(scheduled_time=datetime.now(UTC)),
                    )  # fmt: skip
                    return run.id
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code < 500 or attempt == 29:
                        raise
                    await asyncio.sleep(1)

    async def main() -> list[Any]:
        async with get_client() as client:
            return list(await asyncio.gather(*(create(client, d) for d in deployments)))

    return asyncio.run(main())


def wait_final(ids: list[Any], timeout: float, progress: Any) -> tuple[float, list[Any]]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    started, last = time.perf_counter(), 0.0
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
            )
        states = [r.state_type.value if r.state_type else "?" for r in runs]
        elapsed = time.perf_counter() - started
        if elapsed - last >= 15:
            print(f"  {elapsed:6.1f} s: {progress()}; runs {dict(Counter(states))}", flush=True)
            last = elapsed
        if len(runs) == len(ids) and all(s in FINAL for s in states):
            return elapsed, runs
        if elapsed > timeout:
            print(f"  gave up after {timeout} s")
            return elapsed, runs
        time.sleep(1)


def all_runs(**filters: Any) -> list[Any]:
    """Every flow run matching the filters (paged)."""
    from prefect import get_client

    found, offset = [], 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_flow_runs(limit=200, offset=offset, **filters)
            found += page
            offset += len(page)
            if len(page) < 200:
                return found


def all_task_runs(**filters: Any) -> list[Any]:
    from prefect import get_client

    found, offset = [], 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_task_runs(limit=200, offset=offset, **filters)
            found += page
            offset += len(page)
            if len(page) < 200:
                return found


def check_prefect(outcomes: list[str], months: tuple[str, str], ticks: list[Any]) -> list[str]:
    """What the Prefect UI shows: each outcome's two subflow runs with their stage tasks, once,
    completed, under one tick run. Problems, one line each."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    closed, opened = months
    problems: list[str] = []
    runs = all_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=outcomes)))
    names = Counter(r.name for r in runs)
    for oid in outcomes:
        for period in months:
            if names[f"{oid}/{period}"] != 1:
                problems.append(f"{oid}/{period}: {names[f'{oid}/{period}']} flow runs")
    bad = [r.name for r in runs if r.state_type is None or r.state_type.value != "COMPLETED"]
    problems += [f"{name}: not completed" for name in bad[:10]]
    by_run = {r.id: r.name for r in runs}
    expected = 5 * len(outcomes)
    deadline = time.monotonic() + 120  # task runs are recorded from their events, a bit later
    while True:
        tasks = all_task_runs()
        stages = Counter(
            (by_run[t.flow_run_id], t.name)
            for t in tasks
            if t.flow_run_id in by_run and t.state_type and t.state_type.value == "COMPLETED"
            and t.name in ("result", "approach", "deployment", "assessment", "review")
        )  # fmt: skip
        if sum(stages.values()) >= expected or time.monotonic() > deadline:
            break
        time.sleep(2)
    for oid in outcomes:
        for period, wanted in ((closed, ("assessment", "review")),
                               (opened, ("result", "approach", "deployment"))):  # fmt: skip
            for stage in wanted:
                seen = stages[(f"{oid}/{period}", stage)]
                if seen != 1:
                    problems.append(f"{oid}/{period}: task {stage} x{seen}")
    # each outcome's turn is a child of exactly one tick run (through its tracking task run)
    parents = {t.id: t.flow_run_id for t in tasks}
    tick_ids = {t.id for t in ticks}
    owner = Counter(
        r.name.split("/")[0] for r in runs
        if r.name.endswith(f"/{opened}") and parents.get(r.parent_task_run_id) in tick_ids
    )  # fmt: skip
    problems += [f"{oid}: under {owner[oid]} tick runs" for oid in outcomes if owner[oid] != 1]
    return problems


def check_history(url: str, outcomes: list[str], months: tuple[str, str]) -> list[str]:
    """Every outcome: M-1 reviewed with each stage completed once, M opened once."""
    import sqlalchemy as sa

    closed, opened = months
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.outcome, c.period, s.stage, count(*) FROM cycles c JOIN stage_runs s "
            "ON s.cycle_id = c.id WHERE s.status = 'completed' AND c.period IN (:a, :b) "
            "GROUP BY c.outcome, c.period, s.stage"
        ), {"a": closed, "b": opened}).all()  # fmt: skip
    engine.dispose()
    seen = {(o, p, s): n for o, p, s, n in rows}
    problems = []
    for oid in outcomes:
        for period in months:
            for stage in ("result", "approach", "deployment", "assessment", "review"):
                want = 1 if period == closed or stage in ("result", "approach", "deployment") else 0
                if seen.get((oid, period, stage), 0) != want:
                    problems.append(f"{oid}/{period} {stage}: {seen.get((oid, period, stage), 0)}")
    return problems


def reviewed_count(url: str, month: str) -> Any:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def count() -> str:
        with engine.connect() as conn:
            n = conn.execute(
                sa.text("SELECT count(*) FROM cycles WHERE period = :p AND status = 'reviewed'"),
                {"p": month},
            ).scalar()
        return f"{n} outcomes reviewed {month}"

    return count


def in_process(paths: list[Path], url: str) -> float:
    """The same turns without Prefect: plan, the due reviews, the opening (`radar tick`)."""
    from cycles import clock
    from cycles.declaration import load
    from cycles.engine import run_cycle
    from cycles.hierarchy import declarations_fixed
    from cycles.store import Store
    from cycles.turn import plan

    outcomes = [load(p) for p in paths]
    store = Store(url)
    now = clock.now()
    started = time.perf_counter()
    with declarations_fixed():  # as a tick run reads them: once
        for outcome in outcomes:
            turn = plan(outcome, store.cycles(outcome.outcome, light=True), now, now)
            for due in turn.closing:
                run_cycle(outcome, due.period, store=store, review=True, repeat_review=False)
            run_cycle(outcome, turn.opening, store=store)
    wall = time.perf_counter() - started
    store.dispose()
    return wall


# -- the modes ---------------------------------------------------------------------------------


def shards_mode(
    args: argparse.Namespace, project: Path, paths: list[Path], months: list[str]
) -> int:
    n = len(paths)
    closed, opened = months[-1], current_month()
    base, tag = args.pg.rstrip("/"), f"{os.getpid()}"
    history_url = fresh_database(base, f"radar_bench_{tag}")
    server_db = None
    if args.server == "postgres":
        server_db = fresh_database(base, f"prefect_bench_{tag}").replace("+psycopg2", "+asyncpg")
    settings = {} if args.stock_server else dict(SERVER_SETTINGS)
    settings.update(s.split("=", 1) for s in args.server_setting)
    print(f"{n} outcomes; tick of {opened} (reviews {closed}); {os.cpu_count()} CPUs; "
          f"load {load_average()}; server on {args.server}; temp dir {TMP}")  # fmt: skip
    print("server settings: " + (" ".join(f"{k}={v}" for k, v in settings.items())
                                 or "Prefect's defaults"))  # fmt: skip
    print(f"seeded {n} openings of {closed} in {seed(paths, closed, history_url):.1f} s")
    started = time.perf_counter()
    with PrefectServer.start(
        TMP / "server", database_url=server_db,
        # the access log (every request, 5xx answers) goes to the console handler
        server_env={"PREFECT_SERVER_LOGGING_LEVEL": "INFO",
                    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO", **settings},
    ) as server:  # fmt: skip
        print(f"server healthy after {time.perf_counter() - started:.1f} s ({server.url})")
        env = server.env(RADAR_DATABASE_URL=history_url,
                         PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING")  # fmt: skip
        started = time.perf_counter()
        deployed = run_cli([RADAR, "deploy", "--shards", str(args.shards),
                            "--concurrency", str(args.concurrency)],
                           env=env, cwd=project, timeout=3600)  # fmt: skip
        if deployed.returncode != 0:
            sys.exit(f"radar deploy failed:\n{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")
        deploy_s = time.perf_counter() - started
        print(f"radar deploy --shards {args.shards}: {n} outcome deployments and {args.shards} "
              f"tick deployments in {deploy_s:.1f} s")  # fmt: skip
        with server.settings():
            from prefect import get_client

            with get_client(sync_client=True) as client:
                ticks = [client.read_deployment_by_name(f"radar-tick/monthly-{k}of{args.shards}")
                         for k in range(1, args.shards + 1)]  # fmt: skip
            workers = []
            with contextlib_exit() as stack:
                for k in range(args.workers):
                    workers.append(stack.enter_context(server.worker(
                        env=env, cwd=project, args=["--limit", str(args.limit)], name=f"w{k}"
                    )))  # fmt: skip
                online = wait_online("radar", args.workers)
                print(f"{args.workers} worker(s) online after {online:.1f} s (--limit "
                      f"{args.limit}); load {load_average()}")  # fmt: skip
                sampler = Sampler(workers)
                sampler.start()
                started, mark = time.perf_counter(), server.log.stat().st_size
                ids = create_runs([t.id for t in ticks], {})
                wall, runs = wait_final(ids, args.timeout, reviewed_count(history_url, closed))
                wall = time.perf_counter() - started
                sampler.stop.set()
                load_after = load_average()
                tails = [w.tail(15) for w in workers]
                retried = sum(
                    w.log.read_text(errors="replace").count("the API refused its turn")
                    for w in workers
                )
            problems = check_history(history_url, [p.stem for p in paths], (closed, opened))
            problems += check_prefect([p.stem for p in paths], (closed, opened), runs)
    before, during = access_log(server.log, 0, mark), access_log(server.log, mark)
    errors, requests = access_errors(during), api_requests(during)
    set_up_errors = sum(access_errors(before).values())
    inproc_url = fresh_database(base, f"radar_bench_{tag}_inproc")
    seed(paths, closed, inproc_url)
    local = in_process(paths, inproc_url)

    states = Counter(r.state_type.value if r.state_type else "?" for r in runs)
    failed = len(runs) - states.get("COMPLETED", 0)
    per_min, local_min = n / wall * 60, n / local * 60
    print()
    print(f"worker:     {n} cycles in {wall:6.1f} s = {per_min:6.1f} cycles/min ({args.shards} "
          f"tick run(s), {args.workers} worker(s), {args.concurrency} outcomes at a time each; "
          f"server on {args.server}; load {load_after} at the end)")  # fmt: skip
    print(f"in-process: {n} cycles in {local:6.1f} s = {local_min:6.1f} cycles/min (plan + "
          f"run_cycle per outcome, no Prefect)")  # fmt: skip
    print(f"ratio:      in-process does {wall / local:.1f}x the worker's cycles per minute "
          f"({wall / n * 1000:.0f} ms vs {local / n * 1000:.0f} ms per cycle)")  # fmt: skip
    print(f"            tick runs {dict(states)}; each cycle: flow runs <outcome>/{opened} "
          f"(result, approach, deployment), <outcome>/{closed} (assessment, review)")  # fmt: skip
    for number in sorted(sampler.peak):
        print(
            f"            worker w{number}: peak RSS {sampler.peak[number]:.0f} MB "
            "(the worker and its tick runs)"
        )
    for pid, samples in sorted(sampler.runs.items()):
        quarter = [samples[len(samples) * q // 4] for q in (1, 2, 3)]
        print(f"            tick run process {pid}: RSS {', '.join(f'{m:.0f}' for m in quarter)}"
              f" MB at 1/4, 1/2, 3/4 of its life; peak {max(samples):.0f} MB")  # fmt: skip
    print(f"            API error answers (5xx/429): {sum(errors.values())} during the tick, "
          f"{set_up_errors} while deploying; turns tried again after one: {retried}"
          + (f" {dict(errors.most_common(5))}" if errors else ""))  # fmt: skip
    print(
        f"            API requests during the tick: {sum(requests.values()) / n:.1f} per cycle; "
        "the most: "
        + ", ".join(f"{path} {count / n:.1f}" for path, count in requests.most_common(14))
    )
    if problems:
        print(f"\n{len(problems)} problems; the first: " + "; ".join(problems[:10]))
        for tail in tails:
            print(tail)
    ok = not problems and failed == 0 and states.get("COMPLETED", 0) == len(ids)
    if args.strict:
        fast = wall < TARGET_S
        said = f"{n} outcomes ticked in {wall:.0f} s (< {TARGET_S:.0f} s), {failed} failed runs"
        print(_sample.verdict(ok and fast, said))
        return 0 if ok and fast else 1
    return 0 if ok else 1


def contextlib_exit() -> Any:
    import contextlib

    return contextlib.ExitStack()


def current_month() -> str:
    from cycles import clock

    return f"{clock.now():%Y-%m}"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def per_outcome_mode(
    args: argparse.Namespace, project: Path, paths: list[Path], months: list[str]
) -> int:
    """N runs of the outcomes' own deployments, one process each, vs `run_cycle` in a loop."""
    n, period = len(paths), months[-1]
    print(f"{n} outcomes, period {period}, {os.cpu_count()} CPUs; load {load_average()}")
    with PrefectServer.start(TMP / "server") as server:
        env = server.env(RADAR_DATABASE_URL=f"sqlite:///{TMP / 'worker-history.db'}",
                         PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING")  # fmt: skip
        with server.settings():
            from cycles.declaration import load
            from cycles.deploy import deploy, ensure_pool

            ensure_pool("radar")
            ids = [deploy(load(p), pool="radar", workdir=project) for p in paths]
            with server.worker(env=env, cwd=project, args=["--limit", str(args.limit)]):
                wait_online("radar", 1)
                started = time.perf_counter()
                run_ids = create_runs(ids, {"period": period})
                _, runs = wait_final(run_ids, args.timeout, lambda: "")
                wall = time.perf_counter() - started
    from cycles.declaration import load
    from cycles.engine import run_cycle
    from cycles.store import Store

    store = Store(f"sqlite:///{TMP / 'in-process.db'}")
    outcomes = [load(p) for p in paths]
    started = time.perf_counter()
    for outcome in outcomes:
        run_cycle(outcome, period, store=store)
    local = time.perf_counter() - started
    durations = [(r.end_time - r.start_time).total_seconds() for r in runs
                 if r.start_time and r.end_time]  # fmt: skip
    states = Counter(r.state_type.value if r.state_type else "?" for r in runs)
    print(f"worker:     {n} cycles in {wall:6.1f} s = {n / wall * 60:6.1f} cycles/min (one "
          f"process per run, --limit {args.limit}); states {dict(states)}")  # fmt: skip
    if durations:
        print(f"            run start to end: median {statistics.median(durations):.2f} s")
    print(f"in-process: {n} cycles in {local:6.1f} s = {n / local * 60:6.1f} cycles/min")
    print(f"ratio:      in-process does {wall / local:.0f}x the worker's cycles per minute")
    return 0 if states.get("COMPLETED", 0) == n else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=100)
    parser.add_argument("--mode", choices=["shards", "per-outcome"], default="shards")
    parser.add_argument("--shards", type=int, default=1, help="tick deployments")
    parser.add_argument("--workers", type=int, default=1, help="process workers on the pool")
    parser.add_argument("--concurrency", type=int, default=4, help="outcomes at once per tick")
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        help="runs at once per worker "
        "(default: shards / workers, so the workers split the tick runs)",
    )
    parser.add_argument("--server", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--pg", default=os.environ.get("RADAR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    )
    parser.add_argument(
        "--stock-server",
        action="store_true",
        help="Prefect's default server settings, not SERVER_SETTINGS",
    )
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the Prefect server process (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless under 10 minutes")
    args = parser.parse_args()
    if not args.limit:
        args.limit = 4 if args.mode == "per-outcome" else -(-args.shards // args.workers)
    project = TMP / "project"
    paths, months = write_outcomes(project, args.outcomes)
    os.chdir(project)
    if args.mode == "per-outcome":
        return per_outcome_mode(args, project, paths, months)
    return shards_mode(args, project, paths, months)


if __name__ == "__main__":
    sys.exit(main())
