"""Choosing approaches: the declared order with wrap-around, the evidence-based choice, an oracle.

Design (issue 14): each simulated outcome declares 3 to 5 approaches with different true
effects: one clearly best (+`--best` σ), the others null (0) or harmful (−1 σ or −2 σ), in a
random declared order. Its result metric has 12 baseline periods and then 36 monthly cycles, with
N(0, 1) noise per period as in bench/signal_quality.py; a period's value is the baseline level
plus the true effect of the approach in force plus its noise. The target is out of reach, so only
the signals decide. Every approach has one adjustable parameter (two steps to its bound); it does
not change the effect. The noise of a period is the same under every policy (common random
numbers), so the comparison is not sampling noise.

Each cycle runs through the real code: `cycles.stages.choose_approach` opens it, then
`cycles.replay.assess` and `cycles.replay.review` (the engine's Assessment and Review in memory:
`stages.review`, `cycles.policy.decide`, the signals of the default `policy.signals`).
- declared order, wrap-around (today's choice): `policy.choice: order`; where it holds with
  "every approach tried", the bench does what the policy did before issue 14: a switch to the
  next declared approach (wrapping to the first) with its declared parameters.
- evidence: `policy.choice: evidence` (the default), Thompson sampling seeded by outcome and
  period.
- oracle: the best approach in every period (regret 0 by definition).
- before issue 14, for reference: the declared order with wrap-around and, as well, an adjust
  that moves nothing decided as an `adjust` (counted toward `max_adjustments`) instead of a
  switch. This arm differs from the others in two rules, not in the choice alone.

Half the approaches (at random) have one adjustable parameter, two steps from its bound; the
others have none. Parameters do not change the effect.

Measures: cumulative regret against the oracle over the 36 periods (the sum of the best effect
minus the effect of the approach in force, in σ), its mean and 95 % interval over the simulated
outcomes, and the share of periods on the best approach. Target: the evidence-based regret is at
most 50 % of the declared order's with wrap-around (`--strict`: exit 0 only then); the line
after it says how it compares with the policy before issue 14.

    .venv/bin/python bench/approach_choice.py            # --outcomes 300 --seed 14 --strict
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycles import replay, stages
from cycles.declaration.model import Outcome
from cycles.periods import Cadence, Period
from cycles.record import CycleRecord
from cycles.values import ApproachRef, DecisionKind, PeriodValue

BASELINE, PERIODS, FIRST = 12, 36, "2024-01"
TARGET_RATIO = 0.5
HARMFUL = (0.0, -1.0, -2.0)  # effects of the other approaches, drawn uniformly


@dataclass
class Run:
    regret: float  # cumulative, σ
    on_best: int  # periods on the best approach
    switches: int


def outcome(names: list[str], adjustable: set[str], choice: str, tag: str) -> Outcome:
    """A declaration with these approaches (Python form, a csv source that is never read)."""
    step = {"intensity": {"step": 1, "max": 3}}
    return Outcome.model_validate(
        {
            "outcome": tag, "title": "simulated", "cadence": "monthly",
            "result": {"metric": "rate", "target": 1e6, "direction": "increase"},
            "metrics": {"rate": {"connector": "none", "period": "day", "value": "rate"}},
            "connectors": {"none": {"type": "csv", "path": "never-read.csv"}},
            "approaches": [
                {"name": n, "params": {"intensity": 1}, "adjust": step if n in adjustable else {}}
                for n in names
            ],
            "policy": {"choice": choice},
        }
    )  # fmt: skip


def run_policy(
    decl: Outcome,
    effects: dict[str, float],
    noise: list[float],
    *,
    wrap: bool = False,
    empty_adjust: bool = False,
) -> tuple[Run, list[CycleRecord]]:
    """36 cycles of `decl` whose values follow the approach in force."""
    start = Period.parse(FIRST, Cadence.monthly)
    labels = [str(start + i) for i in range(BASELINE + PERIODS)]
    values = {
        p: PeriodValue(period=p, value=noise[i], rows=1) for i, p in enumerate(labels[:BASELINE])
    }
    best = max(effects.values())
    history: list[CycleRecord] = []
    regret, on_best = 0.0, 0
    names = [a.name for a in decl.approaches]
    for i, label in enumerate(labels[BASELINE:], BASELINE):
        approach, _ = stages.choose_approach(decl, history)
        effect = effects[approach.name]
        regret += best - effect
        on_best += effect == best
        values[label] = PeriodValue(period=label, value=effect + noise[i], rows=1)
        began = stages.approach_start(history, approach.name, Period.parse(label, Cadence.monthly))
        window = replay.window(decl, label, str(began))
        metrics = {"rate": [values.get(p) or PeriodValue(period=p, value=None) for p in window]}
        assessed = replay.assess(decl, label, approach, metrics, history)
        record = replay.review(decl, assessed, history)
        said = record.reasons
        if empty_adjust and any(r.startswith("nothing left to adjust") for r in said):
            # before issue 14: an adjust that changes nothing, counted as an adjustment
            record.decision, record.next_approach = DecisionKind.adjust, approach
        elif wrap and any(r.startswith("every approach tried") for r in said):
            # before issue 14: the next declared approach, wrapping to the first
            nxt = decl.approaches[(names.index(approach.name) + 1) % len(names)]
            record.decision = DecisionKind.switch
            record.next_approach = ApproachRef(name=nxt.name, params=dict(nxt.params))
        history.append(record)
    switches = sum(c.decision is DecisionKind.switch for c in history)
    return Run(regret, on_best, switches), history


def scenario(
    rng: random.Random, best_effect: float
) -> tuple[list[str], dict[str, float], set[str]]:
    k = rng.randint(3, 5)
    names = [f"a{i + 1}" for i in range(k)]
    effects = {n: rng.choice(HARMFUL) for n in names}
    effects[rng.choice(names)] = best_effect
    return names, effects, {n for n in names if rng.random() < 0.5}


def summary(name: str, runs: list[Run]) -> str:
    regrets = [r.regret for r in runs]
    mean = statistics.fmean(regrets)
    half = 1.96 * statistics.stdev(regrets) / math.sqrt(len(regrets)) if len(regrets) > 1 else 0.0
    share = sum(r.on_best for r in runs) / (PERIODS * len(runs))
    switches = statistics.fmean(r.switches for r in runs)
    return (f"{name:<44} {mean:8.2f} ± {half:4.2f} σ   {100 * share:6.1f} %   "
            f"{switches:5.1f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--outcomes", type=int, default=300, help="simulated outcomes")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--best", type=float, default=2.0, help="the best approach's effect, in σ")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless the target is met")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    arms: dict[str, list[Run]] = {"today": [], "wrap": [], "evidence": []}
    for i in range(args.outcomes):
        names, effects, adjustable = scenario(rng, args.best)
        noise = [rng.gauss(0, 1) for _ in range(BASELINE + PERIODS)]
        tag = f"sim-{args.seed}-{i}"
        by_order = outcome(names, adjustable, "order", tag)
        by_evidence = outcome(names, adjustable, "evidence", tag)
        arms["today"].append(run_policy(by_order, effects, noise, wrap=True, empty_adjust=True)[0])
        arms["wrap"].append(run_policy(by_order, effects, noise, wrap=True)[0])
        arms["evidence"].append(run_policy(by_evidence, effects, noise)[0])
    oracle = [Run(0.0, PERIODS, 0) for _ in range(args.outcomes)]

    print(f"Approach choice: {args.outcomes} simulated outcomes, 3-5 approaches (one "
          f"+{args.best:g}σ, the others 0, −1σ or −2σ),\n{BASELINE} baseline + {PERIODS} monthly "
          f"cycles, N(0, 1) noise, seed {args.seed}\n")  # fmt: skip
    print(f"{'policy':<44} {'cumulative regret':>19}   {'on best':>8}   switches")
    print(summary("declared order, wrap-around (today's choice)", arms["wrap"]))
    print(summary("evidence (Thompson sampling)", arms["evidence"]))
    print(summary("oracle (always the best)", oracle))
    print(summary("before issue 14 (also: empty adjusts)", arms["today"]))
    mean = {k: statistics.fmean(r.regret for r in v) for k, v in arms.items()}
    ratio = mean["evidence"] / mean["wrap"]
    ok = ratio <= TARGET_RATIO
    print(f"\n{'PASS' if ok else 'FAIL'} evidence-based regret is {100 * ratio:.0f} % of the "
          f"declared order's with wrap-around (target ≤ {100 * TARGET_RATIO:g} %)")  # fmt: skip
    print(
        f"against the policy before issue 14: {100 * mean['evidence'] / mean['today']:.0f} % "
        "(its adjusts that move nothing gave each approach more periods to show a signal)"
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
