"""What a declaration's policy would do on series shaped like its own data (`radar simulate`).

The result metric's baseline is read through the declaration's connector: its level and XmR σ
(mean moving range / 1.128), and for a proportion with counts the binomial noise its counts imply
(the rest of σ is variation between periods). With `policy.seasonality` or `policy.trend` the
series follow the seasonal and trended line fitted to the baseline (cycles.baseline), σ is the
residuals' around it, and the detector judges them against such a line, as the reviews do.
Simulated series have that baseline and then
`periods` reviewed periods, stable or shifted by 1, 2 or 3 σ the better way (and by the gap to
the target); the real detector (`cycles.signals.detect` with the declaration's
`policy.signals`) judges each reviewed period from the data up to it, as a review would. The
policy itself (`cycles.replay.assess` and `review`: the engine's Assessment and Review) runs the
declared first approach on series where it works (+2σ) and where it does nothing, to count how
often a good approach is switched away from and a null one stays. Seeded: the same declaration
and baseline give the same figures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from cycles.baseline import fit, spec_of
from cycles.errors import RadarError
from cycles.numbers import better_sign, fmt, is_increase
from cycles.periods import Cadence, Period
from cycles.signals import D2, detect
from cycles.stats import MIN_BASELINE, xmr_limits
from cycles.values import PeriodValue, Value

if TYPE_CHECKING:
    import numpy as np

    from cycles.declaration.model import Outcome

SHIFTS = (1, 2, 3)  # in σ
WITHIN = (1, 3, 6)  # periods
GOOD = 2.0  # a good approach's effect, in σ
# series per case: a few seconds with the default rules (each review of each series calls the
# detector; its t quantiles cost most of it); shares within ±3.5 % (95 %), `--series` for finer
SERIES = 200
PER_YEAR = {Cadence.weekly: 52, Cadence.monthly: 12, Cadence.quarterly: 4}
UNIT = {Cadence.weekly: "week", Cadence.monthly: "month", Cadence.quarterly: "quarter"}


class Baseline(Value):
    """The result metric over the baseline window, as the connector reads it."""

    periods: list[str]  # the window (every period, with or without a value)
    values: list[float]  # the values present, oldest first
    index: list[int] = Field(default_factory=list)  # their positions (Period.index)
    trials: list[float] = Field(default_factory=list)  # a proportion's denominators
    successes: list[float] = Field(default_factory=list)

    @property
    def level(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def sigma(self) -> float:
        limits = xmr_limits(self.values)
        return 0.0 if limits is None else limits.moving_range / D2

    @property
    def proportion(self) -> bool:
        return bool(self.trials) and len(self.trials) == len(self.values)

    @property
    def binomial_sd(self) -> float | None:
        """One period's binomial sd at the pooled rate and the mean number of trials."""
        if not self.proportion:
            return None
        p = sum(self.successes) / sum(self.trials)
        return math.sqrt(p * (1 - p) / (sum(self.trials) / len(self.trials)))


class Simulation(Value):
    outcome: str
    metric: str
    direction: str
    cadence: Cadence
    baseline: list[str]  # the window read
    baseline_values: int
    level: float
    sigma: float
    binomial_sd: float | None = None
    rules: list[str]
    series: int
    periods: int
    seed: int
    false_per_period: float  # improvement claimed per reviewed period on a stable process
    caught: dict[str, list[float]]  # "1", "2", "3" (σ) -> share caught within 1, 3, 6 periods
    unit_shift: dict[str, float]  # "1", "2", "3" -> that shift in the metric's units
    target_shift: float | None = None  # the gap from the level to the target, the better way
    target_caught: list[float] | None = None
    policy_series: int = 0
    approach: str = ""
    good_switched: float | None = None  # a +2σ approach switched away from within `periods`
    null_kept: float | None = None  # a null approach still in force after `periods`
    notes: list[str] = Field(default_factory=list)

    @property
    def false_per_year(self) -> float:
        return self.false_per_period * PER_YEAR[self.cadence]

    def to_json_dict(self) -> dict[str, Any]:
        """The contract's keys first: false_per_period, caught, sigma, unit_shift."""
        data = self.model_dump(mode="json")
        return {
            "false_per_period": self.false_per_period,
            "caught": self.caught,
            "sigma": self.sigma,
            "unit_shift": self.unit_shift,
            "false_per_year": self.false_per_year,
            **{k: v for k, v in data.items() if k not in ("false_per_period", "caught", "sigma",
                                                          "unit_shift")},
        }  # fmt: skip


# -- the baseline, through the declaration's connector --------------------------------------------


def read_baseline(outcome: Outcome, before: Period) -> Baseline:
    """The `policy.baseline_periods` periods before `before`, read like a cycle reads them."""
    from cycles.engine import locate_schema_error, open_connector
    from cycles.errors import SchemaError
    from cycles.periods import Window

    count = outcome.policy.baseline_periods
    window = Window(tuple(before - count + i for i in range(count)), outcome.timezone)
    spec = outcome.result_metric
    connector = open_connector(outcome, spec.connector)
    try:
        measured = connector.measure(spec, window)
    except SchemaError as exc:
        raise locate_schema_error(outcome, outcome.result.metric, exc) from None
    finally:
        connector.close()
    present = [v for v in measured.values if v.value is not None]
    if len(present) < MIN_BASELINE:
        raise RadarError(
            f"{outcome.result.metric} has {len(present)} values in the {count} periods before "
            f"{before} ({window.periods[0]} … {window.periods[-1]}): {MIN_BASELINE} are needed "
            "for XmR limits (--before names another period)"
        )
    counted = spec.is_proportion and all(_counted(v) for v in present)
    return Baseline(
        periods=[str(p) for p in window.periods],
        values=[float(v.value) for v in present if v.value is not None],
        index=[Period.parse(v.period, outcome.cadence).index for v in present],
        trials=[float(v.denominator or 0) for v in present] if counted else [],
        successes=[float(v.numerator or 0) for v in present] if counted else [],
    )


def _counted(v: PeriodValue) -> bool:
    return (
        v.numerator is not None
        and v.denominator is not None
        and v.denominator > 0
        and 0 <= v.numerator <= v.denominator
    )


# -- the simulation -------------------------------------------------------------------------------


def simulate(
    outcome: Outcome,
    baseline: Baseline,
    *,
    periods: int = 12,
    series: int = SERIES,
    policy_series: int | None = None,
    seed: int = 2026,
) -> Simulation:
    """False signals, shifts caught, and the policy's switches on `series` simulated series
    (the policy's on `policy_series`, by default a tenth as many: each runs whole reviews)."""
    policy_series = max(20, series // 10) if policy_series is None else policy_series
    import numpy as np

    rng = np.random.default_rng(seed)
    direction = outcome.result.direction.value
    better = better_sign(direction)
    policy = outcome.policy
    # the centre line the reviews judge against: the mean, or with policy.seasonality and
    # policy.trend a seasonal and trended line fitted to the baseline (cycles.baseline)
    model = spec_of(policy.seasonality, policy.trend, outcome.cadence.value)
    index = baseline.index or list(range(len(baseline.values)))
    line, notes = fit(index, baseline.values, model)
    if line is None:
        raise RadarError(f"{outcome.result.metric}: too little baseline for XmR limits")
    sigma = line.moving_range() / D2
    if not sigma > 0:
        raise RadarError(
            f"{outcome.result.metric} does not vary over {baseline.periods[0]} … "
            f"{baseline.periods[-1]}: no signal can be simulated (XmR σ is 0)"
        )
    n_base = len(baseline.values)
    first = Period.parse(baseline.periods[-1], outcome.cadence) - (n_base - 1)
    labels = [str(first + i) for i in range(n_base + periods)]
    positions = [(first + i).index for i in range(n_base + periods)]
    centre = np.array([line.centre(i) for i in positions])
    rules = policy.signals
    horizon = max(WITHIN)

    def series_of(n: int, shift: float) -> tuple[np.ndarray, np.ndarray | None]:
        return _series(rng, baseline, centre, sigma, n, n_base, shift)

    def claims(shift: float, n: int, reviews: int) -> np.ndarray:
        """Improvement claimed at each of the first `reviews` reviewed periods, per series."""
        values, counts = series_of(n, shift * better)
        out = np.zeros((n, reviews), dtype=bool)
        for i in range(n):
            for t in range(reviews):
                end = n_base + t + 1
                found = detect(
                    list(values[i, :end]), labels[:end], baseline_end=n_base,
                    direction=direction, rules=rules,
                    counts=None if counts is None else [tuple(c) for c in counts[i, :end]],
                    index=positions[:end], model=model,
                )  # fmt: skip
                if found.kind.value == "improvement":
                    out[i, t] = True
                    if shift:  # a shift is caught: the later reviews do not matter
                        break
        return out

    stable = claims(0.0, series, periods)
    caught = {}
    for k in SHIFTS:
        found = claims(k * sigma, series, min(horizon, periods))
        caught[str(k)] = [float(found[:, :w].any(1).mean()) for w in WITHIN]
    gap = better * (outcome.result.target - line.level)
    target_caught = None
    if gap > 0:
        found = claims(gap, series, min(horizon, periods))
        target_caught = [float(found[:, :w].any(1).mean()) for w in WITHIN]
    good, null = (
        _policy(outcome, series_of(policy_series, effect), labels, n_base, policy_series)
        for effect in (GOOD * sigma * better, 0.0)
    )
    return Simulation(
        outcome=outcome.outcome, metric=outcome.result.metric, direction=direction,
        cadence=outcome.cadence, baseline=baseline.periods, baseline_values=n_base,
        level=line.level, sigma=sigma, binomial_sd=baseline.binomial_sd,
        rules=rules.names, series=series, periods=periods, seed=seed,
        false_per_period=float(stable.mean()), caught=caught,
        unit_shift={str(k): k * sigma * better for k in SHIFTS},
        target_shift=gap * better if gap > 0 else None, target_caught=target_caught,
        policy_series=policy_series, approach=outcome.approaches[0].name,
        good_switched=good[0], null_kept=None if null[0] is None else 1 - null[0],
        notes=notes,
    )  # fmt: skip


def _series(
    rng: np.random.Generator,
    baseline: Baseline,
    centre: np.ndarray,
    sigma: float,
    n: int,
    start: int,
    shift: float,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`n` series around the `centre` line (the baseline's level, or its seasonal and trended
    line) with noise σ, `shift` added from period `start` on; a proportion as counts: trials
    drawn from the baseline's, the rate varying between periods by what σ holds beyond the
    binomial noise."""
    import numpy as np

    length = len(centre)
    step = np.r_[np.zeros(start), np.ones(length - start)] * shift
    if not baseline.proportion:
        return centre + sigma * rng.standard_normal((n, length)) + step, None
    binomial = baseline.binomial_sd or 0.0
    between = math.sqrt(max(0.0, sigma**2 - binomial**2))
    trials = rng.choice(np.asarray(baseline.trials), size=(n, length)).round()
    rate = np.clip(centre + between * rng.standard_normal((n, length)) + step, 0.0, 1.0)
    successes = rng.binomial(trials.astype(np.int64), rate).astype(float)
    return successes / trials, np.stack([successes, trials], axis=-1)


def _policy(
    outcome: Outcome,
    simulated: tuple[np.ndarray, np.ndarray | None],
    labels: list[str],
    n_base: int,
    n: int,
) -> tuple[float | None, int]:
    """Share of the `n` simulated series in which the first declared approach, whose effect
    they hold, is switched away from in their reviewed periods (the real policy, as the engine
    runs it)."""
    if n <= 0 or len(outcome.approaches) < 2:
        return None, 0
    from cycles import replay, stages
    from cycles.record import CycleRecord

    values, counts = simulated
    metric = outcome.result.metric
    switched = 0
    for i in range(n):
        known = {
            p: PeriodValue(
                period=p, value=float(values[i, j]),
                numerator=None if counts is None else float(counts[i, j, 0]),
                denominator=None if counts is None else float(counts[i, j, 1]),
            )
            for j, p in enumerate(labels)
        }  # fmt: skip
        history: list[CycleRecord] = []
        first = outcome.approaches[0].name
        for label in labels[n_base:]:
            approach, _ = stages.choose_approach(outcome, history)
            if approach.name != first:
                switched += 1
                break
            began = stages.approach_start(history, approach.name,
                                          Period.parse(label, outcome.cadence))  # fmt: skip
            window = replay.window(outcome, label, str(began))
            metrics = {metric: [known.get(p) or PeriodValue(period=p, value=None) for p in window]}
            record = replay.assess(outcome, label, approach, metrics, history)
            history.append(replay.review(outcome, record, history))
    return switched / n, switched


# -- how it reads ---------------------------------------------------------------------------------


def render(sim: Simulation) -> list[str]:
    """The lines `radar simulate` prints (rich markup)."""
    from cycles.console import escape

    unit = UNIT[sim.cadence]
    rise = "rise" if is_increase(sim.direction) else "fall"
    span = f"{sim.baseline[0]} … {sim.baseline[-1]}"
    noise = f"XmR σ {fmt(sim.sigma)}"
    if sim.binomial_sd is not None:
        noise += f" (binomial noise of its counts {fmt(sim.binomial_sd)})"
    lines = [
        f"[bold]{escape(sim.outcome)}[/]: {escape(sim.metric)} simulated like its baseline "
        f"{span} ({sim.baseline_values} {unit}s with a value): level {fmt(sim.level)}, {noise}",
        f"policy.signals: {', '.join(sim.rules) or 'none'}; {sim.series} series per case, "
        f"{sim.periods} reviewed {unit}s each, seed {sim.seed}",
        "",
        f"false improvement signals on a stable process: {100 * sim.false_per_period:.1f} % of "
        f"{unit}s, {sim.false_per_year:.2f} a year",
    ]
    for k, shares in sim.caught.items():
        lines.append(
            f"a {rise} of {_signed(sim.unit_shift[k])} ({k}σ) in {escape(sim.metric)} is caught "
            f"within {' / '.join(map(str, WITHIN))} {unit}s {_shares(shares)} of the time"
        )
    if sim.target_shift is not None and sim.target_caught is not None:
        lines.append(
            f"the target is {_signed(sim.target_shift)} away "
            f"({abs(sim.target_shift) / sim.sigma:.1f}σ): a sustained {rise} that large is caught "
            f"within {' / '.join(map(str, WITHIN))} "
            f"{unit}s {_shares(sim.target_caught)} of the time"
        )
    else:
        lines.append("the target is met at the baseline's level already")
    if sim.good_switched is not None and sim.null_kept is not None:
        lines.append(
            f"{escape(sim.approach)} ({sim.policy_series} series, {sim.periods} {unit}s): with "
            f"a {GOOD:g}σ effect it is switched away from in {100 * sim.good_switched:.0f} %; "
            f"with none it is still in force after {sim.periods} {unit}s in "
            f"{100 * sim.null_kept:.0f} %"
        )
    lines += [f"[dim]{escape(n)}[/]" for n in sim.notes]
    return lines


def _signed(x: float) -> str:
    return f"{x:+.3g}"


def _shares(shares: list[float]) -> str:
    return " / ".join(f"{100 * s:.0f}" for s in shares) + " %"
