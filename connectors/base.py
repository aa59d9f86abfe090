"""The connector interface: a config model per type and `fetch(query, window) -> rows`.

A connector answers one question: the rows of a metric for a window of periods. The default
`measure` aggregates them per period and runs the period's data checks in pandas; connectors
that can push that work down to their source (SQL) override `measure`.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cycles.errors import ConnectorError
from cycles.periods import Period
from cycles.values import CheckResult, PeriodValue

if TYPE_CHECKING:
    import pandas as pd

    from cycles.checks import ExpectationSpec
    from cycles.declaration.model import MetricSpec


# A value still reading `${NAME}` (only when `radar deploy` loads a declaration whose secrets live
# where the worker runs): config validators accept it where they check a URL's form.
ENV_REFERENCE = "${"


class ConnectorConfig(BaseModel):
    """Base of every connector's config; subclasses narrow `type` to a Literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    # queries of this source in flight at once under Prefect, across every run and worker: a
    # global concurrency limit `radar-connector-<name>` (cycles/limits.py); None: no limit
    concurrency: int | None = Field(default=None, ge=1)


class MetricQuery(BaseModel):
    """Base of a connector's metric `query:` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Window:
    """The periods a metric is asked for: the baseline and, last, the period under review."""

    periods: tuple[Period, ...]
    timezone: str = "UTC"  # timezone-aware timestamps are read in the outcome's timezone

    @property
    def current(self) -> Period:
        return self.periods[-1]

    @property
    def start(self) -> date:
        return self.periods[0].start

    @property
    def end(self) -> date:
        return self.periods[-1].end


@dataclass(frozen=True)
class Checks:
    """One metric's data checks, and how to evaluate them on rows in Python.

    A connector may run checks at the source (SQL); the rest go through `evaluate`, which is
    `cycles.checks.evaluate` (Great Expectations semantics) unless an `evaluator` is given.
    """

    metric: str
    expectations: Sequence[ExpectationSpec] = ()
    evaluator: Callable[..., list[CheckResult]] | None = None

    @property
    def columns(self) -> list[str]:
        from cycles.checks import required_columns

        return required_columns(self.expectations)

    def evaluate(
        self, frame: pd.DataFrame, expectations: Sequence[ExpectationSpec] | None = None
    ) -> list[CheckResult]:
        from cycles.checks import evaluate

        specs = self.expectations if expectations is None else expectations
        return (self.evaluator or evaluate)(frame, specs, metric=self.metric)


@dataclass
class Measurement:
    """Per-period values of one metric over a window, and the checks of its last period."""

    values: list[PeriodValue]
    checks: list[CheckResult] = field(default_factory=list)


class DataError(ConnectorError):
    """The source answered, but its rows cannot be read as the declaration says (bad values)."""


class SchemaError(ConnectorError):
    """The source lacks a column the declaration names; `key` is the metric key that names it."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class Connector(ABC):
    """A metric source. Subclasses set `type`, `Config` and optionally `Query`."""

    type: ClassVar[str]
    Config: ClassVar[builtins.type[ConnectorConfig]]
    Query: ClassVar[builtins.type[MetricQuery]] = MetricQuery

    def __init__(self, name: str, config: ConnectorConfig, *, base_dir: Path) -> None:
        self.name = name
        self.config = config
        self.base_dir = base_dir

    @abstractmethod
    def fetch(self, query: Any, window: Window, columns: Sequence[str]) -> pd.DataFrame:
        """Rows of the metric (at least `columns`); may include rows outside the window."""

    def columns(self, query: Any) -> list[str] | None:
        """The columns the source offers, when it can tell cheaply (None: unknown)."""
        return None

    def measure(
        self, metric: MetricSpec, window: Window, checks: Checks | None = None
    ) -> Measurement:
        """Per-period values over `window`, and the data checks on the rows of its last period.

        `fetch` is asked for the period column first, then the value and check columns.
        """
        query = self.Query.model_validate(metric.query)
        check_columns = checks.columns if checks else []
        needed = list(dict.fromkeys([metric.period, *metric.value_columns, *check_columns]))
        self.require_columns(query, metric, check_columns)
        rows = self.fetch(query, window, needed)
        labelled = label_periods(rows, metric, window)
        values = aggregate(labelled, metric, window)
        results: list[CheckResult] = []
        current = labelled[labelled["__period"] == str(window.current)]
        if checks and checks.expectations:
            present = [c for c in dict.fromkeys(check_columns) if c in current.columns]
            results = checks.evaluate(current[present].reset_index(drop=True))
        if checks:
            results += numbers_check(current, metric, checks.metric)
        return Measurement(values=values, checks=results)

    def require_columns(self, query: Any, metric: MetricSpec, check_columns: Sequence[str]) -> None:
        """Raise SchemaError when the source is known to lack a column the metric names."""
        available = self.columns(query)
        if available is None:
            return
        for key, column in metric.column_keys():
            if column not in available:
                raise SchemaError(
                    f"column {column!r} not found in connector {self.name!r} "
                    f"(columns: {', '.join(map(str, available))})",
                    key=key,
                )

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing
        """Release connections; the default holds none."""


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


def _finite(x: Any) -> float | None:
    import math

    return None if x is None or not math.isfinite(x) else float(x)


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
                    value=_finite(means.get(label)),
                    rows=int(counts.get(label, 0)),
                )
            )
        return out
    assert metric.numerator is not None and metric.denominator is not None
    sums_n = finite_numbers(labelled[metric.numerator]).groupby(labels).sum(min_count=1)
    sums_d = finite_numbers(labelled[metric.denominator]).groupby(labels).sum(min_count=1)
    for period in window.periods:
        label = str(period)
        n, d = _finite(sums_n.get(label)), _finite(sums_d.get(label))
        value = _finite(n / d) if n is not None and d else None
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
