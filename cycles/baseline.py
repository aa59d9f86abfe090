"""The centre line a period is judged against: the baseline's mean (the XmR chart), or a seasonal
and/or trended line fitted to the baseline periods (`policy.seasonality`, `policy.trend`).

The line is fitted by least squares over the baseline's values: a level, with `trend` a slope per
period, with `seasonality: N` additive seasonal factors (one per position in the season, summing
to zero: the value is level + factor, not level × factor). Everything downstream works on the
residuals, value − line: the natural process limits are 2.66 × the residuals' mean moving range
around the line (limits on the deseasonalised, detrended values), the signal rules judge the
residuals of the approach's periods, and the effect is their mean. `cov(i, j)` is the fitted
line's own error at periods i and j, in units of σ² (the leverage x_i' (X'X)⁻¹ x_j), so that
tests and intervals account for the baseline's estimation error, not only the period's noise.

Pure Python: small normal equations (a level, a slope, N − 1 seasonal factors) solved directly.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from cycles.stats import MIN_BASELINE, SCALE, f_sf
from cycles.values import Limits, Value

SEASONS = {"weekly": (52,), "monthly": (12,), "quarterly": (4,)}  # `seasonality: auto` looks for
AUTO_P = 0.01  # a seasonal pattern is strong at F-test p ≤ AUTO_P ...
AUTO_SWING = 1.0  # ... and a seasonal swing (sd of the factors) ≥ this many σ of the noise
MIN_SEASONS = 2  # every position of the season at least this often in the baseline


class Spec(Value):
    """The centre line the declaration asks for (built from `policy` and the cadence)."""

    seasonality: int | None = None  # a declared season length, in periods
    auto: tuple[int, ...] = ()  # season lengths `seasonality: auto` looks for
    trend: bool = False

    @property
    def plain(self) -> bool:
        return self.seasonality is None and not self.auto and not self.trend


PLAIN = Spec()


def spec_of(seasonality: int | str | None, trend: bool, cadence: str) -> Spec:
    """`policy.seasonality` (a length, "auto" or None) and `policy.trend` for a cadence."""
    if seasonality == "auto":
        return Spec(auto=SEASONS.get(str(cadence), ()), trend=trend)
    return Spec(seasonality=int(seasonality) if seasonality else None, trend=trend)


@dataclass(frozen=True)
class Fit:
    """A centre line fitted to the baseline: level + slope × (i − ī) + factor[i mod season]."""

    index: tuple[int, ...]  # the baseline periods' positions (Period.index), oldest first
    values: tuple[float, ...]
    season: int | None = None
    trend: bool = False
    coef: tuple[float, ...] = ()  # level, slope (with trend), factors 0 … season − 2
    inverse: tuple[tuple[float, ...], ...] = ()  # (X'X)⁻¹
    mid: float = 0.0  # ī, the baseline's mean position (the slope's origin)
    notes: tuple[str, ...] = field(default=())  # what was fitted and why (auto, not applied)
    # (X'X)⁻¹ x_i by position: `cov` is called for every pair of periods a rule weighs
    _solved: dict[int, list[float]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def p(self) -> int:
        return len(self.coef)

    @property
    def df(self) -> int:
        """Degrees of freedom of the residuals: n − parameters."""
        return self.n - self.p

    @property
    def plain(self) -> bool:
        return self.season is None and not self.trend

    def design(self, i: int) -> list[float]:
        row = [1.0]
        if self.trend:
            row.append(i - self.mid)
        if self.season:
            pos = i % self.season
            last = self.season - 1
            row += [1.0 if pos == j else -1.0 if pos == last else 0.0 for j in range(last)]
        return row

    def centre(self, i: int) -> float:
        """The fitted line at position i (a baseline period or a later one)."""
        return sum(c * x for c, x in zip(self.coef, self.design(i), strict=True))

    def cov(self, i: int, j: int) -> float:
        """Cov(line at i, line at j) / σ²: x_i' (X'X)⁻¹ x_j."""
        return sum(a * b for a, b in zip(self.design(i), self._solve(j), strict=True))

    def var(self, weights: Sequence[float], positions: Sequence[int]) -> float:
        """Var(Σ w_a × line at position a) / σ²: u' (X'X)⁻¹ u, u = Σ w_a x_a."""
        u = [0.0] * self.p
        for w, i in zip(weights, positions, strict=True):
            u = [acc + w * x for acc, x in zip(u, self.design(i), strict=True)]
        return sum(a * sum(r * b for r, b in zip(row, u, strict=True))
                   for a, row in zip(u, self.inverse, strict=True))  # fmt: skip

    def _solve(self, i: int) -> list[float]:
        found = self._solved.get(i)
        if found is None:
            x = self.design(i)
            found = [sum(r * b for r, b in zip(row, x, strict=True)) for row in self.inverse]
            self._solved[i] = found
        return found

    def factor(self, i: int) -> float:
        """The seasonal factor at position i (0 without seasonality)."""
        if not self.season:
            return 0.0
        pos = i % self.season
        effects = self.coef[2 if self.trend else 1 :]
        return -sum(effects) if pos == self.season - 1 else effects[pos]

    @property
    def level(self) -> float:
        """The line without its seasonal factors at the baseline's mean position."""
        return self.coef[0]

    def residuals(self) -> list[float]:
        return [v - self.centre(i) for i, v in zip(self.index, self.values, strict=True)]

    @property
    def ss(self) -> float:
        """Residual sum of squares."""
        return sum(r * r for r in self.residuals())

    def shrink(self) -> float:
        """How much less consecutive residuals differ than the noise would, on average.

        A fitted line follows its own points a little (more with seasonal factors from two or
        three seasons): consecutive residuals differ by σ √(2 − h_ii − h_jj + 2 h_ij) instead of
        σ √2. The mean of √(1 − (h_ii + h_jj − 2 h_ij) / 2) over the baseline's pairs (1 for the
        plain mean, whose moving ranges are the values' own)."""
        if self.plain or self.n < 2:
            return 1.0
        shrink = [
            math.sqrt(max(1e-12, 1 - (self.cov(i, i) + self.cov(j, j) - 2 * self.cov(i, j)) / 2))
            for i, j in itertools.pairwise(self.index)
        ]
        return sum(shrink) / len(shrink)

    def moving_range(self) -> float:
        """The residuals' mean moving range, divided by `shrink`: what it would be were the line
        known (the plain mean: the values' own mean moving range)."""
        res = self.residuals()
        if len(res) < 2:
            return 0.0
        ranges = [abs(b - a) for a, b in itertools.pairwise(res)]
        return sum(ranges) / len(ranges) / self.shrink()

    def limits(self, at: int, periods: Sequence[str] = ()) -> Limits:
        """Natural process limits around the line at position `at`: ± 2.66 × `moving_range`."""
        centre, mr = self.centre(at), self.moving_range()
        return Limits(centre=centre, lower=centre - SCALE * mr, upper=centre + SCALE * mr,
                      baseline=list(periods), moving_range=mr)  # fmt: skip

    def describe(self) -> str:
        """ "seasonal (additive, 12 periods) and trended centre line", for reasons."""
        parts = []
        if self.season:
            parts.append(f"seasonal (additive factors, {self.season} periods)")
        if self.trend:
            parts.append("trended")
        return " and ".join(parts) + " centre line" if parts else "centre line (the mean)"


def fit(
    index: Sequence[int], values: Sequence[float], spec: Spec = PLAIN
) -> tuple[Fit | None, list[str]]:
    """The centre line `spec` asks for over baseline values at positions `index` (oldest first),
    and notes for the reasons (what `auto` found, why a seasonality could not be applied).

    None when fewer than MIN_BASELINE values (no chart). A seasonality needs every position of
    the season MIN_SEASONS times in the baseline; without that the chart falls back to the
    plain mean (or the trend alone), and a note says so.
    """
    if len(values) != len(index):
        raise ValueError("index and values must be aligned")
    if len(values) < MIN_BASELINE:
        return None, []
    notes: list[str] = []
    season = spec.seasonality
    if season is not None and not _enough(index, season):
        notes.append(
            f"seasonality {season} not applied: the baseline must hold every position of the "
            f"season at least {MIN_SEASONS} times ({len(values)} baseline periods, "
            f"{MIN_SEASONS * season} needed)"
        )
        season = None
    if spec.auto:
        season, note = _auto(index, values, spec.auto, spec.trend)
        notes.append(note)
    solved = _solve(index, values, season, spec.trend)
    if solved is None:  # collinear (a constant season position cannot happen; be safe)
        notes.append("seasonal or trended centre line not applied: its fit is singular")
        solved = _solve(index, values, None, False)
        assert solved is not None
    if season is not None or spec.trend:
        notes.insert(0, f"judged against a {solved.describe()} fitted to the baseline")
    return dataclasses.replace(solved, notes=tuple(notes)), notes


def _enough(index: Sequence[int], season: int) -> bool:
    counts = [0] * season
    for i in index:
        counts[i % season] += 1
    return min(counts) >= MIN_SEASONS


def _solve(
    index: Sequence[int], values: Sequence[float], season: int | None, trend: bool
) -> Fit | None:
    n, mid = len(values), sum(index) / len(index)
    if season is None and not trend:  # the plain mean, exactly as xmr_limits computes it
        return Fit(index=tuple(index), values=tuple(values), coef=(sum(values) / n,),
                   inverse=((1 / n,),), mid=mid)  # fmt: skip
    shell = Fit(index=tuple(index), values=tuple(values), season=season, trend=trend, mid=mid)
    rows = [shell.design(i) for i in index]
    p = len(rows[0])
    xtx = [[sum(r[a] * r[b] for r in rows) for b in range(p)] for a in range(p)]
    inverse = _invert(xtx)
    if inverse is None:
        return None
    xty = [sum(r[a] * v for r, v in zip(rows, values, strict=True)) for a in range(p)]
    coef = tuple(sum(inverse[a][b] * xty[b] for b in range(p)) for a in range(p))
    return Fit(index=tuple(index), values=tuple(values), season=season, trend=trend, coef=coef,
               inverse=tuple(tuple(r) for r in inverse), mid=mid)  # fmt: skip


def _invert(m: list[list[float]]) -> list[list[float]] | None:
    """Gauss-Jordan with partial pivoting; None when singular."""
    n = len(m)
    a = [[*row, *(1.0 if i == j else 0.0 for j in range(n))] for i, row in enumerate(m)]
    scale = max(abs(x) for row in m for x in row) or 1.0
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12 * scale:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        lead = a[col][col]
        a[col] = [x / lead for x in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                k = a[r][col]
                a[r] = [x - k * y for x, y in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


# -- is there a seasonal pattern? ---------------------------------------------------------------


@dataclass(frozen=True)
class Seasonality:
    """An F test of seasonal factors against none (with the trend either way, if declared)."""

    season: int
    f: float
    p: float
    swing: float  # sd of the fitted factors / σ of the residuals

    @property
    def strong(self) -> bool:
        return self.p <= AUTO_P and self.swing >= AUTO_SWING

    def text(self) -> str:
        return (f"a seasonal pattern of {self.season} periods (F test {_p(self.p)}, seasonal "
                f"swing {self.swing:.2g} σ)")  # fmt: skip


def seasonality_test(
    index: Sequence[int], values: Sequence[float], season: int, trend: bool = False
) -> Seasonality | None:
    """The F test of `season` seasonal factors in the values; None without 2 full seasons."""
    if len(values) < MIN_BASELINE or not _enough(index, season):
        return None
    without, with_ = _solve(index, values, None, trend), _solve(index, values, season, trend)
    if without is None or with_ is None or with_.df < 1:
        return None
    ss0, ss1 = without.ss, with_.ss
    extra = with_.p - without.p
    if ss1 <= 1e-300 * max(1.0, ss0):
        return Seasonality(season, math.inf, 0.0, math.inf) if ss0 > ss1 else None
    f = (ss0 - ss1) / extra / (ss1 / with_.df)
    if not math.isfinite(f):  # values that are not finite numbers: no test
        return None
    sigma = math.sqrt(ss1 / with_.df)
    factors = [with_.factor(j) for j in range(season)]
    swing = math.sqrt(sum(x * x for x in factors) / season) / sigma
    return Seasonality(season, f, f_sf(f, extra, with_.df), swing)


def _auto(
    index: Sequence[int], values: Sequence[float], seasons: Sequence[int], trend: bool
) -> tuple[int | None, str]:
    tests = [t for s in seasons if (t := seasonality_test(index, values, s, trend)) is not None]
    strong = [t for t in tests if t.strong]
    if strong:
        best = min(strong, key=lambda t: t.p)
        return best.season, f"seasonality auto: {best.text()} in the baseline, so deseasonalised"
    if not tests:
        need = ", ".join(str(MIN_SEASONS * s) for s in seasons) or "-"
        return None, (
            f"seasonality auto: too short a baseline to look for a season ({len(values)} "
            f"periods, {need} needed)"
        )
    weak = min(tests, key=lambda t: t.p)
    return None, f"seasonality auto: no strong seasonal pattern in the baseline ({weak.text()})"


def lag1_autocorrelation(values: Sequence[float]) -> float | None:
    """r1 = Σ (x_i − x̄)(x_(i+1) − x̄) / Σ (x_i − x̄)²; None for fewer than 3 values or no spread."""
    if len(values) < 3:
        return None
    mean = sum(values) / len(values)
    dev = [v - mean for v in values]
    ss = sum(d * d for d in dev)
    if ss <= 0:
        return None
    return sum(a * b for a, b in itertools.pairwise(dev)) / ss


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
