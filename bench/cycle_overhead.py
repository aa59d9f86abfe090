"""What running a RADAR cycle as a Prefect flow costs over a bare Prefect flow of five tasks.

Measured, in one process against one Prefect temporary server (started by the warm-up):
  cycle  `cycles.flow.run_in_flow(outcome, period)` for a past period: all five stage tasks,
         reading 24 months of CSV data, checks, limits, policy and writing the history;
  bare   a flow of five no-op tasks (same task/flow options) called like `run_in_flow` calls its
         flow: inside `without_heartbeats()` and the same tags;
  local  `cycles.engine.run_cycle` on the same outcome without Prefect, for context;
  untagged  the bare flow without the tags, for context: a task run that carries tags asks the
         server for tag concurrency slots (one more write request per task);
  quiet  the cycle with `cycles.flow.publish` switched off, for context: what the review,
         recent and chart artifacts (one server request each) add.
The outcome's history is deleted (untimed) before every cycle, so each one does the same work.
Target: median(cycle) / median(bare) <= 1.2.

Method. Prefect's SQLite temporary server sometimes answers 503 ("database locked") and its
client then backs off ~2 s, which would swamp a sub-second measurement on whichever side it hit.
Back to back, it is mostly the request creating the next flow run (POST /flow_runs/); after a
short pause, mostly the tag concurrency-slot request of a tagged task run. So: (1) the kinds of
run are interleaved, rotating their order every repetition, so both sides see the same server
conditions; (2) an untimed settle pause follows every run (as `radar demo` does), which makes
503s rarer without being part of any figure; (3) every 5xx/429 answer is counted (by wrapping
`httpx.Client.send` and `httpx.AsyncClient.send`), a run that got one is left out of the
medians, and the number left out is printed.

Run: .venv/bin/python bench/cycle_overhead.py [--reps 20] [--settle 0.2] [--strict]
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
from cycles.flow import run_in_flow, without_heartbeats  # noqa: E402
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
    parser.add_argument("--reps", type=int, default=20, help="measured runs of each kind")
    parser.add_argument("--settle", type=float, default=0.2, help="untimed pause after each run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()

    decl, months = _sample.write_sample(TMP)
    outcome, period = load(decl), months[-1]
    store = Store()

    def fresh() -> None:  # untimed: the next cycle finds no history and runs all five stages
        store.delete_outcome(outcome.outcome)

    def cycle() -> None:
        record = run_in_flow(outcome, period)
        assert len(record.stages) == len(Stage), record.stages

    def quiet_cycle() -> None:  # context: the cycle without its three artifact requests
        publish, cycles.flow.publish = cycles.flow.publish, lambda record: None
        try:
            cycle()
        finally:
            cycles.flow.publish = publish

    def bare() -> None:
        with without_heartbeats(), tags("outcome:bare", "cadence:monthly"):
            bare_flow(period=period)

    def local() -> None:
        record = run_cycle(outcome, period, store=store)
        assert len(record.stages) == len(Stage), record.stages

    def untagged() -> None:
        with without_heartbeats():
            bare_flow(period=period)

    kinds = {"cycle": cycle, "bare": bare, "local": local, "untagged": untagged,
             "quiet": quiet_cycle}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in kinds}
    retried: dict[str, list[float]] = {name: [] for name in kinds}

    print(f"temp dir {TMP}; outcome {outcome.outcome!r}, period {period}, {len(months)} months")
    started = time.perf_counter()
    # The first flow run starts the temporary server; then each kind runs once more.
    for fn in (bare, cycle, bare, cycle, local, untagged):
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

    labels = {
        "cycle": "cycle via run_in_flow",
        "bare": "bare flow, 5 no-op tasks",
        "local": "run_cycle, no Prefect",
        "untagged": "bare flow without tags",
        "quiet": "cycle without artifacts",
    }
    print(f"{'run':28} {'median':>9}   (min, n kept)          excluded (5xx retry)")
    for name, label in labels.items():
        print(f"{label:28} {_sample.stats(times[name]):36} {len(retried[name])}")
    print(f"5xx/429 answers seen while measuring: {RETRYABLE['count']}")

    if not times["cycle"] or not times["bare"]:
        print("FAIL: no run without a retry on one side; nothing to compare")
        return 1 if args.strict else 0
    med = {name: statistics.median(v) if v else float("nan") for name, v in times.items()}
    ratio = med["cycle"] / med["bare"]
    print(
        f"\nratio cycle/bare {ratio:.2f} (of the minima "
        f"{min(times['cycle']) / min(times['bare']):.2f}); cycle - bare = "
        f"{(med['cycle'] - med['bare']) * 1000:.0f} ms; "
        f"run_cycle alone {med['local'] * 1000:.0f} ms"
    )
    print(f"ratio bare/untagged {med['bare'] / med['untagged']:.2f} (what the two tags cost)")
    print(
        f"ratio cycle without artifacts/bare {med['quiet'] / med['bare']:.2f} (the three "
        f"artifact requests cost {(med['cycle'] - med['quiet']) * 1000:.0f} ms)"
    )
    ok = ratio <= TARGET
    print(_sample.verdict(ok, f"cycle/bare ratio {ratio:.2f} (target <= {TARGET})"))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
