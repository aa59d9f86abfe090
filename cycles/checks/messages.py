"""One short line saying why a check failed: the same whichever engine ran it."""

from __future__ import annotations

from typing import Any

from cycles.checks.decide import Outcome
from cycles.checks.spec import AggregateArgs, BetweenArgs, ExistArgs, ExpectationSpec, RowCountArgs
from cycles.checks.table import EXPECTATIONS, native_args


def message(spec: ExpectationSpec, outcome: Outcome) -> str:
    """Why the check failed: its error, else its counts or observed value and its table words."""
    args, observed = native_args(spec), outcome.observed_value
    if outcome.error:
        return outcome.error
    if args is None:  # an expectation only GX knows: report its counts or its observed value
        if counted := _counted(outcome):
            return f"{counted} unexpected"
        return "expectation not met" if observed is None else f"observed value {fmt(observed)}"
    if isinstance(args, ExistArgs):
        where = f"at index {args.column_index}" if args.column_index else "found"
        return f"column {args.column!r} not {where}"
    bounds = _bounds(args) if isinstance(args, BetweenArgs | AggregateArgs | RowCountArgs) else ""
    what = EXPECTATIONS[spec.type].text.format(bounds=bounds, **{k: fmt(v) for k, v in args})
    if isinstance(args, AggregateArgs | RowCountArgs):
        return f"{what} " + (
            "is null (no values)" if observed is None else f"{fmt(observed)} {bounds}"
        )
    mostly = getattr(args, "mostly", 1.0)
    tail = f" (mostly={fmt(mostly)})" if mostly < 1 else ""
    return f"{_counted(outcome) or 'values'} {what}{tail}"


def _bounds(a: Any) -> str:
    lo, hi = fmt(a.min_value), fmt(a.max_value)
    if a.min_value is not None and a.max_value is not None:
        return f"outside {'(' if a.strict_min else '['}{lo}, {hi}{')' if a.strict_max else ']'}"
    if a.min_value is not None:
        return f"at or below {lo}" if a.strict_min else f"below {lo}"
    return f"at or above {hi}" if a.strict_max else f"above {hi}"


def _counted(outcome: Outcome) -> str | None:
    if outcome.unexpected_count is None or outcome.element_count is None:
        return None
    if outcome.missing_count:
        total = outcome.element_count - outcome.missing_count
        return f"{outcome.unexpected_count} of {total} non-null values"
    return f"{outcome.unexpected_count} of {outcome.element_count} values"


def fmt(value: Any, limit: int = 5) -> str:
    """A value as a message shows it: floats to 10 significant digits, long lists cut short."""
    if isinstance(value, float):
        return format(value, ".10g")
    if isinstance(value, list | tuple):
        shown = ", ".join(fmt(v) for v in value[:limit])
        return f"[{shown}{', ...' if len(value) > limit else ''}]"
    return repr(value) if isinstance(value, str) else str(value)
