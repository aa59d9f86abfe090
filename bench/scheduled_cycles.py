"""Throughput of deployed cycles through one Prefect process worker vs the same cycles in-process.

Set-up (untimed except where it says): a real `prefect server start` (SQLite, its own
PREFECT_HOME, 127.0.0.1) from tests/prefect_server.py; N generated outcomes `bench-000`... (the
`_sample.py` outcome with 24 months of daily CSV rows, each with its own copy of the data) in a
temp project; each deployed with `cycles.deploy.deploy` in this process (timed, reported: the
same call `radar deploy` makes per outcome); one `prefect worker start --pool radar` process
worker, waited for until it is online.

Measured:
  worker      the N cycles of one past month: N flow runs created through the client
              (`create_flow_run_from_deployment`, parameters {"period": <month>}, 8 requests in
              flight, as the scheduler would create them in bulk), timed from the first creation
              until every run is Completed (polled every 0.5 s). Each run is a
              subprocess of the worker (`python -m prefect.engine`): pull step, flow load, five
              stage tasks, history write, artifacts.
  in-process  the same N cycles with `cycles.engine.run_cycle` in a loop, no Prefect, into a
              fresh history database: the work itself.
Reported: cycles per minute both ways and their ratio; pickup latency (creation to first start),
per-run duration (start to end) and the most runs seen running at once. No target: it prints
the figures and exits 0 (1 if a run did not complete).

Worker settings (flags below): PREFECT_WORKER_QUERY_SECONDS=1 (default 10), prefetch default
(10 s; it only matters for runs scheduled in the future), `--limit` = the worker's concurrency
limit (default 4: each run process spends ~3 s of CPU importing Prefect, pandas and Great
Expectations, so on 2 vCPUs 2/4/8 at once gave 7.7/10.0/11.6 cycles/min for 20 outcomes, and at
8 the SQLite server answered run creations with 503 for minutes; an unlimited worker would start
all N run processes at once, ~250 MB each). Creations answered 5xx are retried (counted).

Run: .venv/bin/python bench/scheduled_cycles.py [--outcomes 100] [--limit 4] [--query-seconds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _sample

TMP = _sample.isolate("radar-bench-scheduled-")  # before Prefect is imported
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from prefect_server import PrefectServer  # noqa: E402

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def write_outcomes(project: Path, n: int) -> tuple[list[Path], str]:
    """N declarations `flows/bench-NNN/bench-NNN.yaml` with their data; and the past month."""
    sample, months = _sample.write_sample(TMP / "sample")
    text = sample.read_text()
    paths = []
    for i in range(n):
        oid = f"bench-{i:03d}"
        directory = project / "flows" / oid
        (directory / "data").mkdir(parents=True)
        shutil.copy(TMP / "sample" / "data" / "rate.csv", directory / "data" / "rate.csv")
        path = directory / f"{oid}.yaml"
        path.write_text(text.replace("outcome: bench\n", f"outcome: {oid}\n", 1))
        paths.append(path)
    return paths, months[-1]


def wait_online(server: PrefectServer, pool: str, timeout: float = 120) -> float:
    from prefect import get_client

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(pool)
        if any(str(getattr(w.status, "value", w.status)).upper() == "ONLINE" for w in workers):
            return time.monotonic() - started
        time.sleep(0.5)
    sys.exit(f"no worker came online for pool {pool!r} within {timeout} s")


async def create_runs(deployments: list, period: str, at_once: int = 8) -> tuple[list, int]:
    """One run per deployment, `at_once` requests in flight (as the scheduler creates runs in
    bulk); a 5xx answer (the SQLite server is busy) is retried after 1 s and counted."""
    from prefect import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    gate, refused = asyncio.Semaphore(at_once), [0]

    async def create(client: Any, deployment_id: Any) -> Any:
        async with gate:
            for attempt in range(30):
                try:
                    run = await client.create_flow_run_from_deployment(
                        deployment_id, parameters={"period": period}
                    )
                    return run.id
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code < 500 or attempt == 29:
                        raise
                    refused[0] += 1
                    await asyncio.sleep(1)

    async with get_client() as client:
        ids = await asyncio.gather(*(create(client, d) for d in deployments))
    return list(ids), refused[0]


def through_worker(server: PrefectServer, deployments: list, period: str, timeout: float) -> dict:
    """Create one run per deployment, then poll until all are final; timings and states."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    started = time.perf_counter()
    ids, refused = asyncio.run(create_runs(deployments, period))
    created = time.perf_counter() - started
    most_running, last_print, runs = 0, 0.0, []
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
            )
        states = [r.state_type.value if r.state_type else "?" for r in runs]
        most_running = max(most_running, states.count("RUNNING"))
        elapsed = time.perf_counter() - started
        done = sum(s in FINAL for s in states)
        if elapsed - last_print >= 15:
            print(f"  {elapsed:6.1f} s: {done}/{len(ids)} final, {states.count('RUNNING')} running")
            last_print = elapsed
        if done == len(ids):
            break
        if elapsed > timeout:
            print(f"  gave up after {timeout} s with {done}/{len(ids)} runs final")
            break
        time.sleep(0.5)
    wall = time.perf_counter() - started
    starts = [r.start_time for r in runs if r.start_time]
    first_created = min(r.created for r in runs if r.created)
    return {
        "wall": wall,
        "create": created,
        "refused": refused,
        "states": {s: states.count(s) for s in set(states)},
        "pickup": (min(starts) - first_created).total_seconds() if starts else float("nan"),
        "durations": [
            (r.end_time - r.start_time).total_seconds() for r in runs if r.start_time and r.end_time
        ],
        "most_running": most_running,
    }


def in_process(paths: list[Path], period: str) -> float:
    from cycles.declaration import load
    from cycles.engine import run_cycle
    from cycles.store import Store

    outcomes = [load(p) for p in paths]
    store = Store(f"sqlite:///{TMP / 'in-process.db'}")
    started = time.perf_counter()
    for outcome in outcomes:
        record = run_cycle(outcome, period, store=store)
        assert record.decision is not None, record
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=100)
    parser.add_argument("--limit", type=int, default=4, help="worker concurrency limit (0: none)")
    parser.add_argument("--query-seconds", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    args = parser.parse_args()
    n = args.outcomes

    project = TMP / "project"
    paths, period = write_outcomes(project, n)
    os.chdir(project)  # `cycles.deployed` finds declarations under ./flows
    print(f"{n} outcomes, period {period}, {os.cpu_count()} CPUs; temp dir {TMP}")

    t = time.perf_counter()
    with PrefectServer.start(TMP / "server") as server:
        print(f"server healthy after {time.perf_counter() - t:.1f} s ({server.url})")
        env = server.env(
            RADAR_DATABASE_URL=f"sqlite:///{TMP / 'worker-history.db'}",
            PREFECT_WORKER_QUERY_SECONDS=f"{args.query_seconds:g}",
            PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING",
        )
        with server.settings():
            from prefect import get_client

            from cycles.declaration import load
            from cycles.deploy import deploy, ensure_pool

            ensure_pool("radar")
            t = time.perf_counter()
            ids = [deploy(load(p), pool="radar", workdir=project) for p in paths]
            deploy_s = time.perf_counter() - t
            print(f"deployed {n} outcomes in {deploy_s:.1f} s ({deploy_s / n:.2f} s each)")
            limit = ["--limit", str(args.limit)] if args.limit else []
            with server.worker(env=env, cwd=project, args=limit) as worker:
                online = wait_online(server, "radar")
                print(f"worker online after {online:.1f} s (--limit {args.limit or 'none'}, "
                      f"PREFECT_WORKER_QUERY_SECONDS={args.query_seconds:g})")  # fmt: skip
                from uuid import UUID

                worker_run = through_worker(server, [UUID(i) for i in ids], period, args.timeout)
                worker_tail = worker.tail(30)
            with get_client(sync_client=True) as client:
                scheduled = client.count_flow_runs()
    local = in_process(paths, period)

    from cycles.store import Store

    # outcomes with a cycle written by the worker's runs
    recorded = Store(f"sqlite:///{TMP / 'worker-history.db'}").outcomes()
    wall = worker_run["wall"]
    durations = worker_run["durations"]
    completed = worker_run["states"].get("COMPLETED", 0)
    per_min = n / wall * 60
    print()
    print(f"worker:     {n} cycles in {wall:6.1f} s = {per_min:6.1f} cycles/min "
          f"(creating the runs: {worker_run['create']:.1f} s, "
          f"{worker_run['refused']} creations answered 5xx and retried)")  # fmt: skip
    print(f"            states {worker_run['states']}; history has cycles of {len(recorded)} "
          f"outcomes; {scheduled - n} auto-scheduled future runs on the server")  # fmt: skip
    print(f"            first run started {worker_run['pickup']:.1f} s after the first was "
          f"created; at most {worker_run['most_running']} seen running at once")  # fmt: skip
    if durations:
        print(f"            run start to end: median {statistics.median(durations):.2f} s, "
              f"max {max(durations):.2f} s")  # fmt: skip
    print(f"in-process: {n} cycles in {local:6.1f} s = {n / local * 60:6.1f} cycles/min "
          f"(run_cycle loop, no Prefect)")  # fmt: skip
    print(f"ratio:      in-process does {wall / local:.0f}x the worker's cycles per minute "
          f"({wall / n:.2f} s vs {local / n:.3f} s per cycle)")  # fmt: skip
    if completed != n:
        print(f"\n{n - completed} runs did not complete; last lines of the worker's log:")
        print(worker_tail)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
