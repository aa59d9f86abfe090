"""What `radar validate` says about an outcome's baseline data (warnings, never errors).

Two patterns make XmR limits mislead: a strong seasonal pattern that `policy.seasonality` does not
declare (every peak looks like a signal), and values that follow each other (lag-1
autocorrelation above 0.5: moving ranges see only the short-term noise, so the limits are too
narrow). Both are read from the result metric's last complete periods before today.
"""

from __future__ import annotations

import math
from datetime import date

from cycles.baseline import (
    MIN_SEASONS,
    SEASONS,
    fit,
    lag1_autocorrelation,
    seasonality_test,
    spec_of,
)
from cycles.declaration.model import Outcome
from cycles.periods import Period, Window

AUTOCORRELATION = 0.5  # lag-1 autocorrelation above this: XmR limits too narrow
LOOKBACK_SEASONS = 3  # seasons of history read to look for an undeclared seasonal pattern


def baseline_warnings(outcome: Outcome, today: date) -> list[str]:
    """Warnings about the result metric's recent periods; none when they cannot be read."""
    from cycles.engine import open_connector  # the engine imports the declaration's world

    policy, metric = outcome.policy, outcome.result.metric
    cadence = outcome.cadence.value
    seasons = SEASONS.get(cadence, ())
    longest = max(seasons, default=0)
    lookback = min(260, max(policy.baseline_periods, LOOKBACK_SEASONS * longest))
    last = Period.containing(today, outcome.cadence) - 1
    window = Window(tuple(last - k for k in range(lookback - 1, -1, -1)), outcome.timezone)
    spec = outcome.metrics[metric]
    try:  # best effort: `preflight` has checked the source; a warning never fails validate
        connector = open_connector(outcome, spec.connector)
        try:
            measured = connector.measure(spec, window)
        finally:
            connector.close()
    except Exception:  # any failure to read: no warnings (validate has said "ok")
        return []
    known = [(Period.parse(v.period, cadence).index, float(v.value)) for v in measured.values
             if v.value is not None and math.isfinite(v.value)]  # fmt: skip
    warnings: list[str] = []
    span = f"the last {lookback} {_unit(cadence)} of {metric}"
    now = f"the baseline a cycle opened now would use (the last {policy.baseline_periods} "
    if policy.seasonality is None:
        index, values = [i for i, _ in known], [v for _, v in known]
        found_tests = (seasonality_test(index, values, s, policy.trend) for s in seasons)
        tests = [t for t in found_tests if t is not None]
        strong = [t for t in tests if t.strong]
        if strong:
            best = min(strong, key=lambda t: t.p)
            need = max(MIN_SEASONS * best.season, policy.baseline_periods)
            warnings.append(
                f"{span} show {best.text()} that policy.seasonality does not declare: XmR limits "
                f"will call its peaks and troughs signals (declare seasonality: {best.season} with "
                f"baseline_periods of at least {need}, or seasonality: auto)"
            )
    base = known[-policy.baseline_periods :]
    line_spec = spec_of(policy.seasonality, policy.trend, cadence)
    line, notes = fit([i for i, _ in base], [v for _, v in base], line_spec)
    if policy.seasonality == "auto":
        found = next((n for n in notes if n.startswith("seasonality auto")), None)
        if found:
            warnings.append(f"{now}{_unit(cadence)} of {metric}): {found}")
    residuals = line.residuals() if line is not None else [v for _, v in base]
    r1 = lag1_autocorrelation(residuals)
    if r1 is not None and r1 > AUTOCORRELATION:
        around = "" if line is None or line.plain else f" around the {line.describe()}"
        warnings.append(
            f"lag-1 autocorrelation of {now}{_unit(cadence)} of {metric}){around} is {r1:.2f} (> "
            f"{AUTOCORRELATION:g}): consecutive periods move together, so XmR limits from moving "
            "ranges are too narrow and will show false signals (a trend? policy.trend; a season? "
            "policy.seasonality)"
        )
    return warnings


def _unit(cadence: str) -> str:
    return {"weekly": "weeks", "monthly": "months", "quarterly": "quarters"}.get(cadence, cadence)
