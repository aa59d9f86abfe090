"""Wall time of `radar` commands as subprocesses, against `python -c pass` measured alongside.

Measured (each a fresh process of the project's interpreter, the `radar` console script next
to it, in a temp directory with its own history database and PREFECT_HOME, no Prefect API
configured so `radar run` runs in-process):
  python -c pass                              the baseline
  radar --help
  radar validate bench.yaml                   a sample outcome with 24 months of CSV data
  radar run bench.yaml --period <past> --json all five stages; the outcome's history is deleted
                                              (untimed) before each run so each does the same
  radar demo --no-prefect / radar demo        14 cycles; fresh history (and PREFECT_HOME) each
  prefect cold flow                           the demo's baseline: a bare flow of five no-op
                                              tasks in a new process with a fresh PREFECT_HOME
                                              and no API, so Prefect starts its temporary server
The quick commands are interleaved, rotating their order, after one untimed warm-up of each.
Targets: `--help` adds < 0.3 s over `python -c pass`; `radar run` < 3 s; `radar demo` < 30 s.
The issue set the demo's 30 s where Prefect's cold flow took 9-10 s; machines differ by 2-3x
from day to day, so the demo is also judged against the cold flow measured here: at most 3x.

Run: .venv/bin/python bench/cli_startup.py [--reps 7] [--demo-reps 2] [--importtime] [--strict]
  --demo-reps 0 skips both demos; --importtime lists the heaviest imports of `radar run`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _sample

TMP = _sample.isolate()
HELP_BUDGET, RUN_BUDGET, DEMO_BUDGET, DEMO_RATIO = 0.3, 3.0, 30.0, 3.0
COLD_FLOW = """
from prefect import flow, task

@task
def noop(i):
    return i

@flow
def bare():
    for i in range(5):
        noop(i)

bare()
"""


def radar_command() -> list[str]:
    script = Path(sys.executable).with_name("radar")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cycles.cli"]


def timed(argv: list[str], env: dict[str, str] | None = None, cwd: Path = TMP) -> tuple[float, str]:
    """Seconds of one run of argv, and its stdout; a failing command stops the benchmark."""
    started = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env or dict(os.environ, COLUMNS="200"), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def heaviest_imports(argv: list[str], top: int = 12) -> None:
    """Top-level packages by cumulative import time in one run of `python -X importtime argv`."""
    cmd = [sys.executable, "-X", "importtime", "-m", "cycles.cli", *argv]
    proc = subprocess.run(cmd, cwd=TMP, capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            rows.append((int(parts[1]) / 1e6, parts[2].strip()))
    print(f"\nheaviest top-level imports of `radar {' '.join(argv)}` (cumulative, one run):")
    for seconds, name in sorted(rows, reverse=True)[:top]:
        print(f"  {seconds:6.3f} s  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="runs of each quick command")
    parser.add_argument("--demo-reps", type=int, default=2, help="runs of each demo (0: skip)")
    parser.add_argument("--importtime", action="store_true", help="list heaviest imports of run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    from cycles.store import Store  # only to reset the sample's history between runs

    decl, months = _sample.write_sample(TMP)
    period, radar = months[-1], radar_command()
    store = Store()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "radar --help": [*radar, "--help"],
        "radar validate": [*radar, "validate", decl.name],
        "radar run --json": [*radar, "run", decl.name, "--period", period, "--json"],
    }
    print(f"temp dir {TMP}; radar = {' '.join(radar)}; period {period}")

    def run_once(name: str) -> float:
        if name == "radar run --json":
            store.delete_outcome("bench")
        elapsed, out = timed(commands[name])
        if name == "radar run --json":
            assert len(json.loads(out)["stages"]) == 5, out[:500]
        return elapsed

    times: dict[str, list[float]] = {name: [] for name in commands}
    warm = {name: run_once(name) for name in commands}  # the first `run` creates the database
    order = list(commands)
    for rep in range(args.reps):
        shift = rep % len(order)
        for name in order[shift:] + order[:shift]:
            times[name].append(run_once(name))

    demos = {
        "radar demo --no-prefect": [*radar, "demo", "--no-prefect"],
        "radar demo": [*radar, "demo"],
        "prefect cold flow": [sys.executable, "-c", COLD_FLOW],
    }
    for i in range(args.demo_reps):  # interleaved, so a slow spell of the machine hits all three
        for label, argv in demos.items():
            fresh = TMP / f"{label.replace(' ', '-')}-{i}"
            fresh.mkdir()
            env = dict(os.environ, COLUMNS="200", PREFECT_HOME=str(fresh / "prefect-home"))
            env["RADAR_DATABASE_URL"] = f"sqlite:///{fresh / 'radar.db'}"
            # as radar sets them: no network, and time for a new database's first start (Prefect's
            # 20 s default is too short on a busy 2-core machine)
            env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
            env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
            times.setdefault(label, []).append(timed(argv, env, fresh)[0])

    base = statistics.median(times["python -c pass"])
    print(f"\n{'command':26} {'median':>8} {'min':>8} {'over base':>10} {'ratio':>7}  warm-up")
    for name, samples in times.items():
        med = statistics.median(samples)
        first = f"{warm[name]:.3f}" if name in warm else ""
        print(
            f"{name:26} {med:8.3f} {min(samples):8.3f} {med - base:+10.3f} {med / base:7.1f}x"
            f"  {first}   (n={len(samples)})"
        )

    median = {name: statistics.median(samples) for name, samples in times.items()}
    verdicts = [
        ("`radar --help` over `python -c pass`", median["radar --help"] - base, HELP_BUDGET),
        ("`radar run` of one past period", median["radar run --json"], RUN_BUDGET),
    ]
    if "radar demo" in median:
        verdicts.append(("`radar demo` (Prefect)", median["radar demo"], DEMO_BUDGET))
    if args.importtime:
        store.delete_outcome("bench")
        heaviest_imports(commands["radar run --json"][len(radar) :])
    print()
    failed = 0
    for what, seconds, budget in verdicts:
        ok = seconds < budget
        failed += not ok
        print(_sample.verdict(ok, f"{what}: {seconds:.3f} s (target < {budget:g} s)"))
    if "radar demo" in median:
        ratio = median["radar demo"] / median["prefect cold flow"]
        failed += ratio > DEMO_RATIO
        print(
            _sample.verdict(
                ratio <= DEMO_RATIO,
                f"`radar demo` / Prefect's cold flow ({median['prefect cold flow']:.1f} s): "
                f"{ratio:.2f} (target <= {DEMO_RATIO:g})",
            )
        )
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
