"""DESIGN's metric rules on a source's rows: each row labelled with the period that holds it,
then per period the mean of `value`, or sum(numerator) / sum(denominator).

`connectors.base.Connector.measure` runs these in pandas; a connector that can push the work
down to its source (SQL) computes the same per period there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cycles.errors import DataError, SchemaError
from cycles.numbers import finite
from cycles.periods import Window
from cycles.values import CheckResult, PeriodValue

if TYPE_CHECKING:
    import pandas as pd

    from cycles.declaration.model import MetricSpec


def label_periods(rows: pd.DataFrame, metric: MetricSpec, window: Window) -> pd.DataFrame:
    """Rows inside the window, with a `__period` column naming the period that holds each row."""
    import pandas as pd

    if metric.period not in rows.columns:
        raise SchemaError(f"column {metric.period!r} not found", key="period")
    import numpy as np

    stamps = _to_naive_timestamps(rows[metric.period], metric.period, window.timezone)
    inside = (stamps >= pd.Timestamp(window.start)) & (stamps < pd.Timestamp(window.end))
    rows = rows.loc[inside].copy()
    # consecutive periods: the one holding a stamp is the last whose start is not after it
    starts = np.array([np.datetime64(p.start, "ns") for p in window.periods])
    index = np.searchsorted(starts, stamps[inside].to_numpy(dtype="datetime64[ns]"), side="right")
    labels = np.array([str(p) for p in window.periods], dtype=object)
    rows["__period"] = labels[index - 1]
    return rows


def _to_naive_timestamps(column: pd.Series, name: str, timezone: str) -> pd.Series:
    """Local wall-clock timestamps: aware values converted to `timezone`, naive ones as they are."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = column
    else:
        try:
            try:
                stamps = pd.to_datetime(column, format="ISO8601")
            except ValueError:  # mixed UTC offsets, or offsets beside naive values
                text = column.astype("string")
                aware = text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True, na=False)
                parsed = pd.to_datetime(text.where(aware), format="ISO8601", utc=True)
                local = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
                return local.where(aware, pd.to_datetime(text.where(~aware), format="ISO8601"))
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"column {name!r} holds values that are not ISO dates or timestamps ({exc})"
            ) from exc
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(timezone).dt.tz_localize(None)
    return stamps


NUMBERS_CHECK = "radar_values_are_numbers"


def numbers_check(rows: pd.DataFrame, metric: MetricSpec, name: str) -> list[CheckResult]:
    """A failed check when the period's value columns hold text or infinite values.

    The mean skips such rows (`finite_numbers`) and the decision would rest on part of the
    data; a failed check makes the review `hold` instead. Nothing is returned when all is well.
    """
    import numpy as np

    out = []
    for column in metric.value_columns:
        values = rows[column]
        present = values.notna()
        numbers = _floats(values)
        text = present & numbers.isna()
        bad = text | np.isinf(numbers)
        if bad.any():
            example = values[bad].iloc[0]
            what = "numbers" if text.any() else "finite numbers"
            out.append(
                CheckResult(
                    metric=name,
                    expectation=NUMBERS_CHECK,
                    kwargs={"column": column},
                    success=False,
                    element_count=len(values),
                    unexpected_count=int(bad.sum()),
                    engine="radar",
                    message=(
                        f"{int(bad.sum())} of {int(present.sum())} values of {column!r} are not "
                        f"{what} (e.g. {str(example)[:40]!r})"
                    ),
                )
            )
    return out


def _floats(values: pd.Series) -> pd.Series:
    """A column as float64: text becomes NaN; ints too large for int64 do not wrap around."""
    import pandas as pd

    return pd.to_numeric(values, errors="coerce").astype("float64")


def finite_numbers(values: pd.Series) -> pd.Series:
    """A value column as floats, text and ±inf as NaN: skipped, as `numbers_check` reports."""
    import numpy as np

    numbers = _floats(values)
    return numbers.where(np.isfinite(numbers))


def _means(numbers: pd.Series, labels: pd.Series) -> pd.Series:
    """Per-label means of finite numbers; a sum that overflows (1e308 + 1e308) is scaled down."""
    import numpy as np

    means = numbers.groupby(labels).mean()
    overflowed = np.isinf(means)
    if overflowed.any():
        largest = numbers.abs().groupby(labels).transform("max")
        scaled = (numbers / largest).groupby(labels).mean() * largest.groupby(labels).max()
        means = means.where(~overflowed, scaled)
    return means


def aggregate(labelled: pd.DataFrame, metric: MetricSpec, window: Window) -> list[PeriodValue]:
    """Per period: the mean of `value`, or sum(numerator) / sum(denominator).

    Infinite values are skipped like text; a ratio that is not finite (x / 1e-320) is None.
    """
    import numpy as np

    with np.errstate(all="ignore"):  # overflow is handled here, not printed on the terminal
        return _aggregate(labelled, metric, window)


def _aggregate(labelled: pd.DataFrame, metric: MetricSpec, window: Window) -> list[PeriodValue]:
    labels = labelled["__period"]
    counts = labelled.groupby("__period", sort=False).size()
    out: list[PeriodValue] = []
    if metric.value is not None:
        means = _means(finite_numbers(labelled[metric.value]), labels)
        for period in window.periods:
            label = str(period)
            out.append(
                PeriodValue(
                    period=label,
                    value=finite(means.get(label)),
                    rows=int(counts.get(label, 0)),
                )
            )
        return out
    assert metric.numerator is not None and metric.denominator is not None
    sums_n = finite_numbers(labelled[metric.numerator]).groupby(labels).sum(min_count=1)
    sums_d = finite_numbers(labelled[metric.denominator]).groupby(labels).sum(min_count=1)
    for period in window.periods:
        label = str(period)
        n, d = finite(sums_n.get(label)), finite(sums_d.get(label))
        value = finite(n / d) if n is not None and d else None
        out.append(
            PeriodValue(
                period=label,
                value=value,
                rows=int(counts.get(label, 0)),
                numerator=n,
                denominator=d,
            )
        )
    return out
