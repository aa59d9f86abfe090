"""What running a RADAR cycle as a Prefect flow costs over a bare Prefect flow of five tasks.

Measured, in one process against one Prefect temporary server (started by the warm-up):
  bare      a flow of five no-op tasks at Prefect's default settings (the issue's baseline:
            its ~1.1 s includes up to 1 s joining the flow-run heartbeat thread at exit);
  deployed  the outcome's cycle flow called at the same default settings, heartbeats included,
            as a worker's flow-run process runs a deployment: all five stage tasks, reading 24
            months of CSV data, checks, limits, policy, the history and the three artifacts;
  cycle     `cycles.flow.run_in_flow(outcome, period)`, as `radar run --prefect` and `radar demo`
            run a cycle: heartbeats off (the calling process watches the run itself);
  bare-quiet  the bare flow with the same heartbeat opt-out as `run_in_flow`;
  quiet     `run_in_flow` with `cycles.flow.publish` switched off: what the review, recent and
            chart artifacts (one server request each) add;
  local     `cycles.engine.run_cycle` on the same outcome without Prefect, for context.
Every flow carries the `outcome:` and `cadence:` tags, as `run_in_flow` adds them.
The outcome's history is deleted (untimed) before every cycle, so each one does the same work.
Target: median(deployed) / median(bare) <= 1.2, both at Prefect's default settings. Also
printed: run_in_flow against both bare flows (with heartbeats off on both sides the fixed
cost shrinks to ~0.16 s and the three artifact requests show: see the README's Performance).

Method. Prefect's SQLite temporary server sometimes answers 503 ("database locked") and its
client then backs off ~2 s, which would swamp a sub-second measurement on whichever side it hit.
Back to back, it is mostly the request creating the next flow run (POST /flow_runs/); after a
short pause, mostly the tag concurrency-slot request of a tagged task run. So: (1) the kinds of
run are interleaved, rotating their order every repetition, so both sides see the same server
conditions; (2) an untimed settle pause follows every run (as `radar demo` does), which makes
503s rarer without being part of any figure; (3) every 5xx/429 answer is counted (by wrapping
`httpx.Client.send` and `httpx.AsyncClient.send`), a run that got one is left out of the
medians, and the number left out is printed.

Run: .venv/bin/python bench/cycle_overhead.py [--reps 15] [--settle 0.2] [--strict]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import _sample

TMP = _sample.isolate()  # before Prefect is imported: its settings are read at import

import httpx  # noqa: E402

RETRYABLE = {"count": 0}
_sync_send, _async_send = httpx.Client.send, httpx.AsyncClient.send


def _note(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 500 or response.status_code == 429:
        RETRYABLE["count"] += 1
    return response


def _counting_send(self, request, **kwargs):  # type: ignore[no-untyped-def]
    return _note(_sync_send(self, request, **kwargs))


async def _counting_async_send(self, request, **kwargs):  # type: ignore[no-untyped-def]
    return _note(await _async_send(self, request, **kwargs))


httpx.Client.send = _counting_send  # type: ignore[method-assign]
httpx.AsyncClient.send = _counting_async_send  # type: ignore[method-assign]

from prefect import flow, tags, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

import cycles.flow  # noqa: E402
from cycles.declaration import load  # noqa: E402
from cycles.engine import run_cycle  # noqa: E402
from cycles.flow import flow_of, run_in_flow, without_heartbeats  # noqa: E402
from cycles.record import CycleRecord  # noqa: E402
from cycles.store import Store  # noqa: E402
from cycles.values import Stage  # noqa: E402

TARGET = 1.2


def _noop(cycle: object, stage: Stage) -> None:
    return None


NOOP_TASKS = [
    task(_noop, name=s.value, task_run_name=s.value, cache_policy=NO_CACHE, persist_result=False)
    for s in Stage
]


@flow(name="bare", flow_run_name="bare/{period}", persist_result=False, log_prints=False)
def bare_flow(period: str | None = None, review: bool = False, dry_run: bool = False) -> dict:
    for noop, stage in zip(NOOP_TASKS, Stage, strict=True):
        noop(None, stage)
    return {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="measured runs of each kind")
    parser.add_argument("--settle", type=float, default=0.2, help="untimed pause after each run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()

    decl, months = _sample.write_sample(TMP)
    outcome, period = load(decl), months[-1]
    labels = ("outcome:bench", "cadence:monthly")
    store = Store()

    def fresh() -> None:  # untimed: the next cycle finds no history and runs all five stages
        store.delete_outcome(outcome.outcome)

    def check(record: CycleRecord) -> None:
        assert len(record.stages) == len(Stage), record.stages

    def deployed() -> None:  # Prefect's defaults, heartbeats included, as a worker runs it
        with tags(*labels):
            check(CycleRecord.model_validate_json(flow_of(outcome)(period=period)))

    def cycle() -> None:
        check(run_in_flow(outcome, period))

    def quiet() -> None:  # context: the cycle without its three artifact requests
        publish, cycles.flow.publish = cycles.flow.publish, lambda record: None
        try:
            cycle()
        finally:
            cycles.flow.publish = publish

    def bare() -> None:
        with tags(*labels):
            bare_flow(period=period)

    def bare_quiet() -> None:
        with without_heartbeats():
            bare()

    def local() -> None:
        check(run_cycle(outcome, period, store=store))

    kinds = {"bare": bare, "deployed": deployed, "cycle": cycle, "bare-quiet": bare_quiet,
             "quiet": quiet, "local": local}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in kinds}
    retried: dict[str, list[float]] = {name: [] for name in kinds}

    print(f"temp dir {TMP}; outcome {outcome.outcome!r}, period {period}, {len(months)} months")
    started = time.perf_counter()
    # The first flow run starts the temporary server; then each kind runs once more.
    for fn in (bare_quiet, cycle, *kinds.values()):
        fresh()
        fn()
        time.sleep(args.settle)
    print(f"warm-up (server start included): {time.perf_counter() - started:.1f} s\n")

    order = list(kinds)
    for rep in range(args.reps):
        shift = rep % len(order)
        for name in order[shift:] + order[:shift]:
            fresh()
            before = RETRYABLE["count"]
            clock = time.perf_counter()
            kinds[name]()
            elapsed = time.perf_counter() - clock
            (retried if RETRYABLE["count"] > before else times)[name].append(elapsed)
            time.sleep(args.settle)

    descriptions = {
        "bare": "bare flow, Prefect defaults",
        "deployed": "cycle flow, Prefect defaults",
        "cycle": "cycle via run_in_flow",
        "bare-quiet": "bare flow, no heartbeats",
        "quiet": "run_in_flow, no artifacts",
        "local": "run_cycle, no Prefect",
    }
    print(f"{'run':30} {'median':>7}   (min, n kept)          excluded (5xx retry)")
    for name, label in descriptions.items():
        print(f"{label:30} {_sample.stats(times[name]):36} {len(retried[name])}")
    print(f"5xx/429 answers seen while measuring: {RETRYABLE['count']}\n")

    if not times["deployed"] or not times["bare"]:
        print("FAIL: no run without a retry on one side; nothing to compare")
        return 1 if args.strict else 0
    med = {name: statistics.median(v) if v else float("nan") for name, v in times.items()}

    def ratio(a: str, b: str, what: str) -> float:
        value = med[a] / med[b]
        print(f"{value:5.2f}  {descriptions[a]} / {descriptions[b]}: {what}")
        return value

    target = ratio("deployed", "bare", "the target, both at Prefect's defaults")
    ratio("cycle", "bare", "what `radar run --prefect` costs against a plain Prefect flow")
    ratio("cycle", "bare-quiet", "both without heartbeats")
    ratio("quiet", "bare-quiet", "both without heartbeats, the cycle without artifacts")
    print(
        f"\ncycle - bare, both without heartbeats: {(med['cycle'] - med['bare-quiet']) * 1000:.0f}"
        f" ms, of which the three artifact requests {(med['cycle'] - med['quiet']) * 1000:.0f} ms"
        f" and run_cycle's own work {med['local'] * 1000:.0f} ms"
    )
    ok = target <= TARGET
    print(_sample.verdict(ok, f"deployed cycle / bare flow {target:.2f} (target <= {TARGET})"))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
