"""Data checks: Great Expectations (GX 1.x) expectations declared per metric, run on period rows.

Importing GX costs seconds, so common expectations run natively: the same pandas operations GX's
pandas metrics perform, hence the same results. Any other expectation or argument, and all of them
when RADAR_CHECKS_ENGINE=gx, runs through GX (cycles._gx). No pandas, numpy or GX at import.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cycles import _gx
from cycles._gx import (
    AggregateArgs,
    Args,
    BetweenArgs,
    ExistArgs,
    MapArgs,
    Outcome,
    RegexArgs,
    RowCountArgs,
    SetArgs,
)
from cycles.values import CheckResult

if TYPE_CHECKING:
    import pandas as pd

ENGINE_ENV = "RADAR_CHECKS_ENGINE"  # "gx" runs every check through Great Expectations


class ExpectationSpec(BaseModel):
    """One declared expectation: its snake_case GX name and its arguments, as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Columns this check reads or names (column, column_A/B, column_list, column_set)."""
        found: list[str] = []
        for key in ("column", "column_A", "column_B", "column_list", "column_set"):
            value = self.kwargs.get(key)
            names = [value] if isinstance(value, str) else value
            if isinstance(names, list | tuple | set | frozenset):
                found.extend(n for n in names if isinstance(n, str) and n not in found)
        return found


class ExpectationSpecError(ValueError):
    """A bad expectation in a declaration; `loc` is the path inside the YAML item."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = tuple(loc)


# --- native evaluators: GX's pandas metric code, for the argument types of cycles._gx.*Args ---


class _Unsupported(Exception):
    """The native evaluator cannot match GX on this data (a column dtype GX converts): use GX."""


def _between(col: pd.Series, a: Any) -> Any:
    """GX's ColumnValuesBetween._pandas, for numeric bounds."""
    lo, hi, smin, smax = a.min_value, a.max_value, a.strict_min, a.strict_max
    if lo is not None and hi is not None and lo > hi:
        raise ValueError("min_value cannot be greater than max_value")
    if col.dtype.kind in "mM":
        raise _Unsupported("GX parses bounds for datetime columns")
    if col.dtype in [int, float]:
        above = True if lo is None else (lo < col) if smin else (lo <= col)
        below = True if hi is None else (col < hi) if smax else (col <= hi)
        return above & below

    def one(value: Any) -> bool:
        if isinstance(value, str):
            raise TypeError(
                "Column values, min_value, and max_value must either be None or of the same type."
            )
        above = lo is None or (value > lo if smin else value >= lo)
        return above and (hi is None or (value < hi if smax else value <= hi))

    return col.map(one)


def _not_in_set(col: pd.Series, a: Any) -> Any:
    if col.dtype.kind == "M":
        raise _Unsupported("GX parses the value set for datetime columns")
    return ~col.isin(a.value_set)


def _map(condition: Callable[[pd.Series, Any], Any]) -> Callable[..., Outcome]:
    """A column map expectation: nulls are skipped, and it holds vacuously without non-nulls."""

    def evaluate(frame: pd.DataFrame, a: Any) -> Outcome:
        import numpy as np

        col = frame[a.column]
        nonnull = col[col.notnull()]
        total, considered = len(col), len(nonnull)
        unexpected = int(np.count_nonzero(~condition(nonnull, a)))
        success = considered == 0 or (considered - unexpected) / considered >= a.mostly
        return Outcome(success, total, unexpected, missing_count=total - considered)

    return evaluate


def _null_map(want_null: bool) -> Callable[..., Outcome]:
    """expect_column_values_to_(not_)be_null: every row counts, nulls included."""

    def evaluate(frame: pd.DataFrame, a: Any) -> Outcome:
        col = frame[a.column]
        total = len(col)
        unexpected = int(col.notnull().sum() if want_null else col.isnull().sum())
        return Outcome(total == 0 or (total - unexpected) / total >= a.mostly, total, unexpected)

    return evaluate


def metric_between(value: Any, a: Any) -> Outcome:
    """GX's BatchExpectation._validate_metric_value_between, for numeric bounds."""
    import pandas as pd

    if value is None or pd.isnull(value):
        return Outcome(False, observed_value=None)
    above = a.min_value is None or (value > a.min_value if a.strict_min else value >= a.min_value)
    below = a.max_value is None or (value < a.max_value if a.strict_max else value <= a.max_value)
    return Outcome(bool(above and below), observed_value=value)


def _aggregate(stat: str) -> Callable[..., Outcome]:
    def evaluate(frame: pd.DataFrame, a: Any) -> Outcome:
        col = frame[a.column]
        if col.dtype.kind not in "biuf":  # decimals, dates, strings: GX converts or parses
            raise _Unsupported(f"column dtype {col.dtype}")
        return metric_between(getattr(col, stat)(), a)

    return evaluate


def _column_exists(frame: pd.DataFrame, a: Any) -> Outcome:
    columns = list(frame.columns)
    if a.column_index:  # as in GX, column_index 0 means "anywhere"
        try:
            return Outcome(bool(columns[a.column_index] == a.column))
        except IndexError:
            return Outcome(False)
    return Outcome(a.column in columns)


def _bounds(a: Any) -> str:
    lo, hi = _fmt(a.min_value), _fmt(a.max_value)
    if a.min_value is not None and a.max_value is not None:
        return f"outside {'(' if a.strict_min else '['}{lo}, {hi}{')' if a.strict_max else ']'}"
    if a.min_value is not None:
        return f"at or below {lo}" if a.strict_min else f"below {lo}"
    return f"at or above {hi}" if a.strict_max else f"above {hi}"


def _in_set(col: pd.Series, a: Any) -> Any:
    return col.isin(a.value_set)


def _unique(col: pd.Series, a: Any) -> Any:
    return ~col.duplicated(keep=False)


def _regex(col: pd.Series, a: Any) -> Any:
    return col.astype(str).str.contains(a.regex)  # as GX: numbers are matched as text


class _Native(NamedTuple):
    args: type[Args]
    evaluate: Callable[[Any, Any], Outcome]
    text: str  # what the unexpected values are, or the aggregate's name; formatted with the args


_NATIVE: dict[str, _Native] = {
    "expect_column_to_exist": _Native(ExistArgs, _column_exists, ""),
    "expect_column_values_to_not_be_null": _Native(MapArgs, _null_map(False), "are null"),
    "expect_column_values_to_be_null": _Native(MapArgs, _null_map(True), "are not null"),
    "expect_column_values_to_be_between": _Native(BetweenArgs, _map(_between), "{bounds}"),
    "expect_column_values_to_be_in_set": _Native(SetArgs, _map(_in_set), "not in {value_set}"),
    "expect_column_values_to_not_be_in_set": _Native(SetArgs, _map(_not_in_set), "in {value_set}"),
    "expect_column_values_to_be_unique": _Native(MapArgs, _map(_unique), "repeated"),
    "expect_column_values_to_match_regex": _Native(RegexArgs, _map(_regex), "not matching {regex}"),
    "expect_table_row_count_to_be_between": _Native(
        RowCountArgs, lambda frame, a: metric_between(len(frame), a), "row count"
    ),
    "expect_column_mean_to_be_between": _Native(AggregateArgs, _aggregate("mean"), "mean"),
    "expect_column_min_to_be_between": _Native(AggregateArgs, _aggregate("min"), "min"),
    "expect_column_max_to_be_between": _Native(AggregateArgs, _aggregate("max"), "max"),
}
NATIVE_EXPECTATIONS: frozenset[str] = frozenset(_NATIVE)


# --- parsing ---


def parse_expectation(item: Any) -> ExpectationSpec:
    """One YAML item ({name: {kwargs}}), {"type", "kwargs"} dict or spec, validated.

    Native argument models decide first, without importing GX; GX decides what they reject.
    """
    name, kwargs = _split(item)
    native_errors: dict[tuple[str | int, ...], str] = {}
    if (native := _NATIVE.get(name)) is not None:
        try:
            native.args.model_validate(kwargs)
            return ExpectationSpec(type=name, kwargs=kwargs)
        except ValidationError as exc:
            native_errors = {tuple(e["loc"]): e["msg"] for e in exc.errors(include_url=False)}
    if (problem := _gx.argument_problem(name, kwargs, native_errors)) is not None:
        message, loc = problem
        raise ExpectationSpecError(message, loc=(name, *loc))
    return ExpectationSpec(type=name, kwargs=kwargs)  # valid for GX: it will run through GX


def _split(item: Any) -> tuple[str, dict[str, Any]]:
    name: Any
    raw: Any
    if isinstance(item, ExpectationSpec):
        name, raw = item.type, item.kwargs
    elif not isinstance(item, Mapping):
        raise ExpectationSpecError(f"an expectation must be a mapping, got {type(item).__name__}")
    elif "type" in item and set(item) <= {"type", "kwargs"}:
        name, raw = item["type"], item.get("kwargs")
    elif len(item) == 1:
        ((name, raw),) = item.items()
    else:
        got = f"{len(item)} ({', '.join(map(str, item))})" if item else "none"
        raise ExpectationSpecError(f"an expectation must have one key, its name; got {got}")
    if not isinstance(name, str):
        raise ExpectationSpecError(f"an expectation name must be a string, got {name!r}")
    if not isinstance(raw, Mapping | None):
        kind = type(raw).__name__
        raise ExpectationSpecError(f"arguments must be a mapping, got {kind}", loc=(name,))
    if bad := [k for k in raw or {} if not isinstance(k, str)]:
        raise ExpectationSpecError(f"argument names must be strings, got {bad[0]!r}", loc=(name,))
    return name, {k: _plain(v) for k, v in (raw or {}).items()}


def _plain(value: Any) -> Any:
    """YAML containers and scalar subclasses (ruamel's ScalarFloat...) as plain Python values."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float | str) and type(value) not in (float, str):
        return float(value) if isinstance(value, float) else str(value)
    return value


def required_columns(specs: Iterable[ExpectationSpec]) -> list[str]:
    """Every column the specs read or name, in first-seen order."""
    found: list[str] = []
    for spec in specs:
        found.extend(c for c in spec.columns if c not in found)
    return found


# --- evaluation ---


def evaluate(
    frame: pd.DataFrame, specs: Sequence[ExpectationSpec], *, metric: str
) -> list[CheckResult]:
    """Run the checks on one period's rows: one CheckResult per spec, in order; never raises."""
    force_gx = os.environ.get(ENGINE_ENV, "").strip().lower() == "gx"
    outcomes: dict[int, tuple[str, Outcome]] = {}
    via_gx: list[int] = []
    with _silenced():
        for index, spec in enumerate(specs):
            if (done := _native_outcome(frame, spec, force_gx)) is None:
                via_gx.append(index)
            else:
                outcomes[index] = done
    if via_gx:
        gx_outcomes = _gx.run(frame, [specs[i] for i in via_gx])
        outcomes.update((i, ("gx", o)) for i, o in zip(via_gx, gx_outcomes, strict=True))
    return [check_result(spec, metric, *outcomes[i]) for i, spec in enumerate(specs)]


def _native_outcome(
    frame: pd.DataFrame, spec: ExpectationSpec, force_gx: bool
) -> tuple[str, Outcome] | None:
    """(engine, outcome) of a spec decided without GX, or None when it needs GX."""
    args = None if force_gx else native_args(spec)
    presence = spec.type in _gx.WHOLE_TABLE or spec.type == "expect_column_to_exist"
    missing = [] if presence else [c for c in spec.columns if c not in frame.columns]
    if missing:
        error = f"column {missing[0]!r} not found"
        return ("gx" if args is None else "native"), Outcome(False, error=error)
    if args is None:
        return None
    try:
        return "native", _NATIVE[spec.type].evaluate(frame, args)
    except _Unsupported:
        return None
    except Exception as exc:
        return "native", Outcome(False, error=f"could not evaluate: {exc}".splitlines()[0])


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """No numpy/pandas warnings on stderr (e.g. the mean of inf and -inf)."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def native_args(spec: ExpectationSpec) -> Args | None:
    native = _NATIVE.get(spec.type)
    try:
        return native.args.model_validate(spec.kwargs) if native is not None else None
    except ValidationError:
        return None


def check_result(spec: ExpectationSpec, metric: str, engine: str, outcome: Outcome) -> CheckResult:
    return CheckResult(
        metric=metric,
        expectation=spec.type,
        kwargs=spec.kwargs,
        success=outcome.success,
        element_count=outcome.element_count,
        unexpected_count=outcome.unexpected_count,
        observed_value=outcome.observed_value,
        engine=engine,
        message=None if outcome.success else _message(spec, outcome),
    )


def _message(spec: ExpectationSpec, outcome: Outcome) -> str:
    """A short line saying why a check failed: the same whichever engine ran it."""
    args, observed = native_args(spec), outcome.observed_value
    if outcome.error:
        return outcome.error
    if args is None:  # an expectation only GX knows: report its counts or its observed value
        if counted := _counted(outcome):
            return f"{counted} unexpected"
        return "expectation not met" if observed is None else f"observed value {_fmt(observed)}"
    if isinstance(args, ExistArgs):
        where = f"at index {args.column_index}" if args.column_index else "found"
        return f"column {args.column!r} not {where}"
    bounds = _bounds(args) if isinstance(args, BetweenArgs | AggregateArgs | RowCountArgs) else ""
    what = _NATIVE[spec.type].text.format(bounds=bounds, **{k: _fmt(v) for k, v in args})
    if isinstance(args, AggregateArgs | RowCountArgs):
        return f"{what} " + (
            "is null (no values)" if observed is None else f"{_fmt(observed)} {bounds}"
        )
    mostly = getattr(args, "mostly", 1.0)
    tail = f" (mostly={_fmt(mostly)})" if mostly < 1 else ""
    return f"{_counted(outcome) or 'values'} {what}{tail}"


def _counted(outcome: Outcome) -> str | None:
    if outcome.unexpected_count is None or outcome.element_count is None:
        return None
    if outcome.missing_count:
        total = outcome.element_count - outcome.missing_count
        return f"{outcome.unexpected_count} of {total} non-null values"
    return f"{outcome.unexpected_count} of {outcome.element_count} values"


def _fmt(value: Any, limit: int = 5) -> str:
    if isinstance(value, float):
        return format(value, ".10g")
    if isinstance(value, list | tuple):
        shown = ", ".join(_fmt(v) for v in value[:limit])
        return f"[{shown}{', ...' if len(value) > limit else ''}]"
    return repr(value) if isinstance(value, str) else str(value)
