"""The connector interface: a config model per type and `fetch(query, window) -> rows`.

A connector answers one question: the rows of a metric for a window of periods. The default
`measure` aggregates them per period (`cycles.measure`, DESIGN's metric rules) and runs the
period's data checks in pandas; connectors that can push that work down to their source (SQL)
override `measure`.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

# the plugin interface: connectors import Window, DataError and SchemaError from here
from cycles.errors import DataError, SchemaError
from cycles.measure import aggregate, label_periods, numbers_check
from cycles.periods import Window
from cycles.values import CheckResult, PeriodValue

__all__ = [
    "ENV_REFERENCE",
    "Checks",
    "Connector",
    "ConnectorConfig",
    "DataError",
    "Measurement",
    "MetricQuery",
    "SchemaError",
    "Window",
]

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
