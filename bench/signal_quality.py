"""Signal quality of the rules in cycles.signals: false signals on stable series, speed on shifts.

Design (issue 7): series of 12 baseline periods + 12 reviewed periods, N(0, 1) noise; stable
series, and series whose mean shifts by 1, 2 or 3 σ from the first reviewed period on (direction
"increase", so an upward shift is an improvement). The same noise serves every scenario and rule
set (common random numbers), so differences between rule sets are not sampling noise.

Definitions (what `detect` says at each review, using only the data up to that period):
- false/period: share of (stable series, reviewed period) pairs on which an improvement is
  claimed, averaged with the same share for deterioration (the rules are symmetric): the rate
  of false `keep` (or of false `switch`) decisions. "either" counts both (about twice as much).
- 12 per.: share of stable series with at least one signal, either direction, in 12 reviews.
- shifts: share of shifted series with an improvement claimed at one of the first 1, 3, 6
  reviews after the shift.

The rules are vectorised here with numpy, following cycles.signals; a cross-check runs `detect`
itself on a sample of the series and reports any disagreement. A binomial scenario (referral
rates: n ≈ 10,000 a period, p = 0.2) shows what the beta-binomial evidence adds.

    .venv/bin/python bench/signal_quality.py            # --series 2000 --seed 2026 --strict
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycles.signals import (
    D2,
    DEFAULT,
    NHS,
    SINGLE_POINT,
    Rule,
    RuleSet,
    beta_binomial_improvement,
    detect,
)
from cycles.stats import SCALE
from cycles.values import SignalKind

BASELINE, PERIODS, SHIFTS, WITHIN = 12, 12, (1.0, 2.0, 3.0), (1, 3, 6)
TARGET_FALSE, TARGET_CAUGHT = 0.01, 0.60  # false per period; 2σ caught within 3 periods
P0, N_TRIALS, TAU = 0.2, 10_000, 0.008  # binomial scenario; TAU: between-period sd of p
NHS_REF = RuleSet.of(["point", "two_of_three", "run_of_7"])

Arrays = tuple[np.ndarray, np.ndarray]  # (improvement, deterioration) claimed, series × reviews
Signal = Callable[..., Arrays]
Shifted = dict[float, np.ndarray]  # shift in σ -> series


@dataclass
class Quality:
    false_dir: float  # per period and direction
    false_any: float  # per period, either direction
    false_12: float  # share of stable series with a signal in 12 reviews
    caught: dict[float, list[float]]  # shift -> share detected within WITHIN periods


# --- the rules, vectorised ---


def _chart(x: np.ndarray, b: int, rs: RuleSet) -> tuple[Arrays, Arrays]:
    """(point up, point down) and (other rules up, other rules down) at every review."""
    base, phase = x[:, :b], x[:, b:]
    centre = base.mean(1, keepdims=True)
    mr_base = np.abs(np.diff(base, axis=1)).sum(1, keepdims=True)
    u = (phase - centre) / (SCALE * mr_base / (b - 1))
    p = phase.shape[1]
    t = np.arange(1, p + 1)
    none = np.zeros(phase.shape, bool)
    point = (u > 1, u < -1) if Rule.point in rs.rules else (none, none)
    up, down = none.copy(), none.copy()
    for sign, out in ((1, up), (-1, down)):
        v = sign * u
        if Rule.two_of_three in rs.rules:
            near = np.pad(v > 2 / 3, ((0, 0), (2, 0)))  # two reviews of padding: none near
            count = near[:, 2:].astype(int) + near[:, 1:-1] + near[:, :-2]
            out |= near[:, 2:] & (count >= 2)
        if Rule.run_of_7 in rs.rules:
            side = np.cumsum(v > 0, 1)
            out[:, 6:] |= (side - np.pad(side, ((0, 0), (7, 0)))[:, :p])[:, 6:] == 7
        if Rule.trend_of_7 in rs.rules:
            steps = np.pad(np.cumsum(np.sign(np.diff(sign * phase, axis=1)), 1), ((0, 0), (1, 0)))
            out[:, 6:] |= steps[:, 6:] - steps[:, :-6] == 6
    # σ at review t: baseline and phase moving ranges up to t, not the one between them
    mr_phase = np.pad(np.cumsum(np.abs(np.diff(phase, axis=1)), 1), ((0, 0), (1, 0)))
    sigma = (mr_base + mr_phase) / (b - 1 + t - 1) / D2
    if Rule.ewma in rs.rules:
        lam, z = rs.ewma_lambda, np.empty(phase.shape)
        prev = centre[:, 0]
        for j in range(p):
            prev = z[:, j] = lam * phase[:, j] + (1 - lam) * prev
        keep = 1 - lam
        se = sigma * np.sqrt(lam / (2 - lam) * (1 - keep ** (2 * t)) + (1 - keep**t) ** 2 / b)
        stat = (z - centre) / se
        up |= stat > rs.ewma_width
        down |= stat < -rs.ewma_width
    if Rule.cusum in rs.rules:
        k, h = rs.cusum_k, rs.cusum_h
        for j in range(p):  # the whole path again with the σ known at review j
            d = (phase[:, : j + 1] - centre) / sigma[:, j : j + 1]
            hi = lo = np.zeros(len(x))
            for i in range(j + 1):
                hi, lo = np.maximum(0, hi + d[:, i] - k), np.maximum(0, lo - d[:, i] - k)
            up[:, j] |= (hi >= lo) & (hi > h)
            down[:, j] |= (lo > hi) & (lo > h)
    return point, (up, down)


def kinds(point: Arrays, other: Arrays) -> Arrays:
    """Improvement and deterioration claimed: the point's kind, else the others' if they agree."""
    (pu, pd), (up, down) = point, other
    return pu | (~pd & up & ~down), pd | (~pu & down & ~up)


def rule_signal(rs: RuleSet, b: int = BASELINE) -> Signal:
    return lambda x: kinds(*_chart(x, b, rs))


def _bayes(s: np.ndarray, n: np.ndarray, b: int, corrected: bool = True) -> np.ndarray:
    """P(improvement) at each review, as `detect` computes it.

    A normal approximation of the two Beta posteriors, then the module's exact value wherever the
    approximation is within 0.02 of a threshold used here (its error is far smaller than that).
    """
    sb, nb = s[:, :b].sum(1, keepdims=True), n[:, :b].sum(1, keepdims=True)
    pbar = sb / nb
    phi = np.ones_like(pbar)
    if corrected:
        x2 = (s[:, :b] - n[:, :b] * pbar) ** 2 / (n[:, :b] * pbar * (1 - pbar))
        phi = np.maximum(1.0, x2.sum(1, keepdims=True) / (b - 1))
    a1, b1 = 1 + np.round(sb / phi), 1 + np.round(nb / phi) - np.round(sb / phi)
    sc, nc = s[:, b:], n[:, b:]
    a2, b2 = 1 + np.round(sc / phi), 1 + np.round(nc / phi) - np.round(sc / phi)
    m1, m2 = a1 / (a1 + b1), a2 / (a2 + b2)
    v1 = a1 * b1 / ((a1 + b1) ** 2 * (a1 + b1 + 1))
    v2 = a2 * b2 / ((a2 + b2) ** 2 * (a2 + b2 + 1))
    prob = 0.5 * (1 + _erf((m2 - m1) / np.sqrt(2 * (v1 + v2))))
    near = np.zeros(prob.shape, bool)
    for threshold in (0.95, 0.99):
        near |= (np.abs(prob - threshold) < 0.02) | (np.abs(1 - prob - threshold) < 0.02)
    for i, j in zip(*np.nonzero(near), strict=True):
        prob[i, j] = _exact(a2[i, j], b2[i, j], a1[i, 0], b1[i, 0])
    return prob


def _exact(a_b: float, b_b: float, a_a: float, b_a: float) -> float:
    """P(current > baseline) by Evan Miller's closed form, as cycles.signals sums it, in numpy."""
    forms = ((a_b, b_b, a_a, b_a, False), (a_a, b_a, a_b, b_b, True),
             (b_a, a_a, b_b, a_b, False), (b_b, a_b, b_a, a_a, True))  # fmt: skip
    a1, b1, a2, b2, flip = min(forms, key=lambda f: f[0])
    i = np.arange(int(a1) - 1)
    logs = np.r_[0.0, np.cumsum(np.log((a2 + i) * (b1 + i) / ((a2 + b1 + b2 + i) * (1 + i))))]
    top = logs.max()
    log_t0 = _lbeta(a2, b1 + b2) - _lbeta(a2, b2)
    p = math.exp(log_t0 + top + math.log(np.exp(logs - top).sum()))
    return 1 - p if flip else p


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


_erf = np.vectorize(math.erf, otypes=[float])


def quality(signal: Signal, stable: np.ndarray, shifted: Shifted) -> Quality:
    """`signal(x)` -> (improvement, deterioration) arrays; the figures of the module docstring."""
    imp, det = signal(stable)
    caught = {d: [signal(x)[0][:, :k].any(1).mean() for k in WITHIN] for d, x in shifted.items()}
    either = imp | det
    return Quality((imp.mean() + det.mean()) / 2, either.mean(), either.any(1).mean(), caught)


def calibrate(
    rs: RuleSet, field: str, target: float, stable: np.ndarray, lo: float, hi: float
) -> RuleSet:
    """The value of `field` (a width or interval) whose false rate per direction is `target`."""
    for _ in range(30):
        mid = (lo + hi) / 2
        imp, det = rule_signal(rs.model_copy(update={field: mid}))(stable)
        lo, hi = (mid, hi) if (imp.mean() + det.mean()) / 2 > target else (lo, mid)
    return rs.model_copy(update={field: round(hi, 3)})


# --- scenarios ---


def normal_series(n: int, seed: int, b: int = BASELINE) -> tuple[np.ndarray, Shifted]:
    noise = np.random.default_rng(seed).standard_normal((n, b + PERIODS))
    step = np.r_[np.zeros(b), np.ones(PERIODS)]
    return noise, {d: noise + d * step for d in SHIFTS}


def binomial_series(n: int, seed: int, tau: float, shift: float) -> Arrays:
    """(successes, trials): trials ~ Poisson(N_TRIALS), p = P0 (+ N(0, tau)) (+ shift later)."""
    rng = np.random.default_rng(seed)
    trials = rng.poisson(N_TRIALS, (n, BASELINE + PERIODS)).astype(float)
    later = shift * np.r_[np.zeros(BASELINE), np.ones(PERIODS)]
    p = np.clip(P0 + tau * rng.standard_normal(trials.shape) + later, 0, 1)
    return rng.binomial(trials.astype(int), p).astype(float), trials


# --- cross-checks against cycles.signals ---


def cross_check(
    x: np.ndarray,
    rule_sets: list[RuleSet],
    b: int = BASELINE,
    trials: np.ndarray | None = None,
) -> tuple[int, int]:
    """Reviews where the vectorised rules and `detect` disagree (0 expected), and reviews made.

    With `trials`, `x` holds successes: the chart runs on x / trials, the counts feed bayes.
    """
    periods = [f"p{i:02d}" for i in range(x.shape[1])]
    values = x if trials is None else x / trials
    wrong = 0
    for rs in rule_sets:
        if trials is None:
            imp, det = rule_signal(rs, b)(x)
        else:
            imp, det = bayes_signal(rs, b)((x, trials))
        for i, row in enumerate(values):
            counts = None if trials is None else list(zip(x[i], trials[i], strict=True))
            for j in range(PERIODS):
                end = b + j + 1
                kind = detect(
                    list(row[:end]), periods[:end], baseline_end=b, direction="increase",
                    rules=rs, counts=None if counts is None else counts[:end],
                ).kind  # fmt: skip
                want = SignalKind.none
                if imp[i, j] or det[i, j]:
                    want = SignalKind.improvement if imp[i, j] else SignalKind.deterioration
                wrong += kind is not want
    return wrong, len(rule_sets) * len(x) * PERIODS


def bayes_check(s: np.ndarray, n: np.ndarray, k: int) -> tuple[float, float]:
    """Largest difference from the module's exact probability: of the normal approximation, and
    of the numpy closed form used near the thresholds."""
    approx = _bayes(s[:k], n[:k], BASELINE)
    worst = worst_exact = 0.0
    for i in range(k):
        base = [(s[i, j], n[i, j]) for j in range(BASELINE)]
        pbar = sum(c for c, _ in base) / sum(t for _, t in base)
        x2 = sum((c - t * pbar) ** 2 / (t * pbar * (1 - pbar)) for c, t in base)
        phi = max(1.0, x2 / (BASELINE - 1))
        sa, na = sum(c for c, _ in base) / phi, sum(t for _, t in base) / phi
        for j in (0, PERIODS - 1):
            cur = (s[i, BASELINE + j] / phi, n[i, BASELINE + j] / phi)
            exact = beta_binomial_improvement([(c / phi, t / phi) for c, t in base], cur)
            worst = max(worst, abs(exact - approx[i, j]))
            a_b, b_b = 1 + round(cur[0]), 1 + round(cur[1]) - round(cur[0])
            mine = _exact(a_b, b_b, 1 + round(sa), 1 + round(na) - round(sa))
            worst_exact = max(worst_exact, abs(exact - mine))
    return worst, worst_exact


# --- the binomial scenario ---


def bayes_signal(rs: RuleSet, b: int = BASELINE, corrected: bool = True) -> Signal:
    """Chart rules on the proportions, plus the beta-binomial if `rs.bayes`."""

    def signal(sn: Arrays) -> Arrays:
        s, t = sn
        point, (up, down) = _chart(s / t, b, rs)
        if rs.bayes:
            prob, threshold = _bayes(s, t, b, corrected), rs.bayes_threshold
            rate = s[:, b:] / t[:, b:]
            pbar = s[:, :b].sum(1, keepdims=True) / t[:, :b].sum(1, keepdims=True)
            moved = np.sign(rate - pbar) * ~np.isclose(rate, pbar, rtol=1e-9, atol=1e-12)
            up = up | ((prob >= threshold) & (moved > 0))
            down = down | ((1 - prob >= threshold) & (moved < 0))
        return kinds(point, (up, down))

    return signal


def binomial_table(n: int, seed: int) -> list[str]:
    sd = math.sqrt(P0 * (1 - P0) / N_TRIALS)
    scen = {
        "stable binomial": binomial_series(n, seed + 1, 0.0, 0.0),
        "stable overdisp.": binomial_series(n, seed + 2, TAU, 0.0),
        "drift +0.002": binomial_series(n, seed + 3, 0.0, 0.002),
        "2σ shift binomial": binomial_series(n, seed + 4, 0.0, 2 * sd),
        "2σ shift overdisp.": binomial_series(n, seed + 5, TAU, 2 * math.hypot(TAU, sd)),
    }
    bayes_only = RuleSet(rules=[], bayes=True)
    sets: list[tuple[str, Signal]] = [
        ("DEFAULT on the proportions", bayes_signal(DEFAULT)),
        ("single point on the proportions", bayes_signal(SINGLE_POINT)),
        ("bayes ≥ 0.95 alone, plain pooled baseline", bayes_signal(bayes_only, corrected=False)),
        ("bayes ≥ 0.95 alone, dispersion-corrected", bayes_signal(bayes_only)),
        ("bayes ≥ 0.99 alone, dispersion-corrected",
         bayes_signal(bayes_only.model_copy(update={"bayes_threshold": 0.99}))),
        ("DEFAULT + bayes ≥ 0.95 (bayes: true)",
         bayes_signal(DEFAULT.model_copy(update={"bayes": True}))),
        ("DEFAULT + bayes ≥ 0.99",
         bayes_signal(DEFAULT.model_copy(update={"bayes": True, "bayes_threshold": 0.99}))),
    ]  # fmt: skip
    lines = [
        f"Binomial scenario: p = {P0}, trials ~ Poisson({N_TRIALS:,}) a period "
        f"(binomial sd {sd:.4f}); overdisp.: p varies",
        f"between periods with sd {TAU:g}; drift +0.002 = 0.5 binomial sd, 1 % relative. stable: "
        "false signals per period",
        "and direction / share of series with any in 12 reviews; changes: share detected "
        "within 1, 3, 6 periods",
    ]
    head = f"{'rule set':<42}" + "".join(f" | {nm:<18}" for nm in scen)
    lines += [head, "-" * len(head)]
    for name, sig in sets:
        cells = []
        for nm, sn in scen.items():
            imp, det = sig(sn)
            if nm.startswith("stable"):
                rate, any12 = (imp.mean() + det.mean()) / 2, (imp | det).any(1).mean()
                cells.append(f"{100 * rate:5.2f}% / {pct(any12)}%")
            else:
                cells.append(" ".join(pct(imp[:, :k].any(1).mean()) for k in WITHIN))
        lines.append(f"{name:<42}" + "".join(f" | {c:<18}" for c in cells))
    k = min(30, n)
    s, t = scen["stable overdisp."]
    worst, worst_exact = bayes_check(s, t, k)
    with_bayes = DEFAULT.model_copy(update={"bayes": True})
    wrong, made = cross_check(s[:k], [with_bayes], trials=t[:k])
    s2, t2 = scen["2σ shift binomial"]
    wrong2, made2 = cross_check(s2[:k], [with_bayes], trials=t2[:k])
    lines += [
        f"beta-binomial vs the module's exact value: normal approximation within {worst:.1e} "
        "(so it only decides cells",
        f"≥ 0.02 from a threshold); the numpy closed form used near thresholds within "
        f"{worst_exact:.1e}; DEFAULT + bayes",
        f"vs detect with counts: {wrong + wrong2} disagreements in {made + made2} reviews",
    ]
    return lines


# --- report ---


def pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def table(rows: list[tuple[str, Quality]]) -> str:
    head = f"{'rule set':<48} {'false/period':>12} {'either':>6} {'12 per.':>7} |"
    head += "".join(f" {d:g}σ ≤1   ≤3   ≤6 |" for d in SHIFTS)
    lines = [head, "-" * len(head)]
    for name, q in rows:
        cells = f"{name:<48} {100 * q.false_dir:11.2f}% {pct(q.false_any)}% {pct(q.false_12)}% |"
        cells += "".join(" " + " ".join(pct(v) for v in q.caught[d]) + " |" for d in SHIFTS)
        lines.append(cells)
    return "\n".join(lines)


def rule_sets() -> list[tuple[str, RuleSet]]:
    ewma = RuleSet.of(["ewma"], ewma_width=2.8)
    return [
        ("single point (DESIGN.md)", SINGLE_POINT),
        ("two_of_three alone", RuleSet.of(["two_of_three"])),
        ("run_of_7 alone", RuleSet.of(["run_of_7"])),
        ("trend_of_7 alone", RuleSet.of(["trend_of_7"])),
        ("NHS reference: point, two_of_three, run_of_7", NHS_REF),
        ("NHS full: + trend_of_7", NHS),
        (f"DEFAULT: point + ewma λ={DEFAULT.ewma_lambda:g} L={DEFAULT.ewma_width:g}", DEFAULT),
        ("point + ewma λ=0.2 L=2.8", DEFAULT.model_copy(update={"ewma_width": 2.8})),
        ("point + ewma λ=0.2 L=3.2", DEFAULT.model_copy(update={"ewma_width": 3.2})),
        ("point + ewma λ=0.3 L=3", DEFAULT.model_copy(update={"ewma_lambda": 0.3})),
        ("ewma alone λ=0.2 L=2.8 (no point rule)", ewma),
        ("ewma alone λ=0.2 L=3 (no point rule)", ewma.model_copy(update={"ewma_width": 3.0})),
        ("cusum alone k=0.5 h=5", RuleSet.of(["cusum"])),
        ("point + cusum k=1 h=3", RuleSet.of(["point", "cusum"], cusum_k=1.0, cusum_h=3.0)),
        ("point + ewma + two_of_three + run_of_7",
         RuleSet.of(["point", "ewma", "two_of_three", "run_of_7"])),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--check-series", type=int, default=30, help="series checked with detect")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    stable, shifted = normal_series(args.series, args.seed)
    sets = rule_sets()
    rows = [(name, quality(rule_signal(rs), stable, shifted)) for name, rs in sets]
    nhs_false = rows[4][1].false_dir
    ewma = RuleSet.of(["ewma"])
    calibrated = [  # (name, rule set, field calibrated, target false rate, search range)
        ("ewma alone at the NHS false rate", ewma, "ewma_width", nhs_false, (1.5, 4.0)),
        ("point + ewma at the NHS false rate", DEFAULT, "ewma_width", nhs_false, (1.5, 4.0)),
        ("ewma alone at 1 %", ewma, "ewma_width", TARGET_FALSE, (1.5, 4.0)),
        ("cusum k=0.5 alone at 1 %", RuleSet.of(["cusum"]), "cusum_h", TARGET_FALSE, (2, 12)),
        ("cusum k=1 alone at 1 %", RuleSet.of(["cusum"], cusum_k=1.0), "cusum_h", TARGET_FALSE,
         (1.0, 10.0)),
    ]  # fmt: skip
    # Does any default that keeps DESIGN.md's point rule meet both targets? The point rule alone
    # is just under 1 %: tune each addition to exactly 1 % together with it.
    kept = [
        (
            f"point + ewma λ={lam:g} at 1 %",
            DEFAULT.model_copy(update={"ewma_lambda": lam}),
            "ewma_width",
            TARGET_FALSE,
            (2.0, 8.0),
        )
        for lam in (0.1, 0.2, 0.3, 0.5)
    ]
    kept += [(f"point + cusum k={k:g} at 1 %", RuleSet.of(["point", "cusum"], cusum_k=k),
              "cusum_h", TARGET_FALSE, (1.0, 20.0)) for k in (0.5, 1.0)]  # fmt: skip
    first_kept = len(rows) + len(calibrated)
    for name, rs, field, target, (lo, hi) in [*calibrated, *kept]:
        tuned = calibrate(rs, field, target, stable, lo, hi)
        label = f"{name} ({'L' if field == 'ewma_width' else 'h'}={getattr(tuned, field):g})"
        rows.append((label, quality(rule_signal(tuned), stable, shifted)))
    stable6, shifted6 = normal_series(args.series, args.seed, b=6)
    rows.append(("DEFAULT, 6-period baseline (the minimum)",
                 quality(rule_signal(DEFAULT, 6), stable6, shifted6)))  # fmt: skip
    rows.append(("single point, 6-period baseline",
                 quality(rule_signal(SINGLE_POINT, 6), stable6, shifted6)))  # fmt: skip

    print(f"Signal quality: {args.series} series per scenario, {BASELINE} baseline + {PERIODS} "
          f"reviewed periods, seed {args.seed}")  # fmt: skip
    print("false/period: false improvement (or deterioration) claims per reviewed period; either: "
          "both directions;")  # fmt: skip
    print("12 per.: share of stable series with any signal in 12 reviews; shifts: share detected "
          "(improvement)")  # fmt: skip
    print("within 1, 3, 6 periods\n")
    print(table(rows))
    print()
    print("\n".join(binomial_table(args.series, args.seed)))

    k = min(args.check_series, args.series)
    check_sets = [DEFAULT, NHS, RuleSet.of(["cusum"]), RuleSet.of(list(Rule))]
    wrong, made = cross_check(np.vstack([stable[:k], shifted[2.0][:k]]), check_sets)
    wrong6, made6 = cross_check(stable6[:k], [DEFAULT], b=6)
    wrong, made = wrong + wrong6, made + made6
    print(f"\ncross-check with cycles.signals.detect: {wrong} disagreements in {made} reviews")

    d = rows[6][1]
    ok_false, ok_caught = d.false_dir <= TARGET_FALSE, d.caught[2.0][1] >= TARGET_CAUGHT
    print(f"\n{'PASS' if ok_false else 'FAIL'} default false signals per period "
          f"{100 * d.false_dir:.2f} % ≤ {100 * TARGET_FALSE:g} % "
          f"(the point rule alone: {100 * rows[0][1].false_dir:.2f} %)")  # fmt: skip
    print(f"{'PASS' if ok_caught else 'FAIL'} default catches a 2σ shift within 3 periods in "
          f"{100 * d.caught[2.0][1]:.1f} % ≥ {100 * TARGET_CAUGHT:g} %")  # fmt: skip
    name, best = max(rows[first_kept : first_kept + len(kept)], key=lambda r: r[1].caught[2.0][1])
    print(f"with the point rule kept, the best addition at 1 % false ({name}) catches "
          f"{100 * best.caught[2.0][1]:.1f} % of 2σ shifts within 3 periods")  # fmt: skip
    print(f"{'PASS' if wrong == 0 else 'FAIL'} vectorised rules agree with detect")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if args.strict and not (ok_false and ok_caught and wrong == 0) else 0


if __name__ == "__main__":
    sys.exit(main())
