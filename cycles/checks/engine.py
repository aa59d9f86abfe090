"""Which engine runs each check on a period's rows: native (the table), or GX.

This module is the one reader of RADAR_CHECKS_ENGINE: with `gx`, every check runs through Great
Expectations (the oracle the native engine and the SQL translations are tested against).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from cycles.checks import decide, gx
from cycles.checks.decide import Outcome
from cycles.checks.messages import message
from cycles.checks.native import Unsupported
from cycles.checks.spec import ExpectationSpec
from cycles.checks.table import EXPECTATIONS, native_args
from cycles.values import CheckResult

if TYPE_CHECKING:
    import pandas as pd

ENGINE_ENV = "RADAR_CHECKS_ENGINE"  # "gx" runs every check through Great Expectations


def gx_forced() -> bool:
    """Whether RADAR_CHECKS_ENGINE=gx asks for every check to run through GX."""
    return os.environ.get(ENGINE_ENV, "").strip().lower() == "gx"


def evaluate(
    frame: pd.DataFrame, specs: Sequence[ExpectationSpec], *, metric: str
) -> list[CheckResult]:
    """Run the checks on one period's rows: one CheckResult per spec, in order; never raises."""
    force_gx = gx_forced()
    outcomes: dict[int, tuple[str, Outcome]] = {}
    via_gx: list[int] = []
    with _silenced():
        for index, spec in enumerate(specs):
            if (done := _native_outcome(frame, spec, force_gx)) is None:
                via_gx.append(index)
            else:
                outcomes[index] = done
    if via_gx:
        gx_outcomes = gx.run(frame, [specs[i] for i in via_gx])
        outcomes.update((i, ("gx", o)) for i, o in zip(via_gx, gx_outcomes, strict=True))
    return [check_result(spec, metric, *outcomes[i]) for i, spec in enumerate(specs)]


def _native_outcome(
    frame: pd.DataFrame, spec: ExpectationSpec, force_gx: bool
) -> tuple[str, Outcome] | None:
    """(engine, outcome) of a spec decided without GX, or None when it needs GX."""
    args = None if force_gx else native_args(spec)
    if (missing := decide.missing_column(spec, frame.columns)) is not None:
        return ("gx" if args is None else "native"), missing
    if args is None:
        return None
    try:
        return "native", EXPECTATIONS[spec.type].native(frame, args)
    except Unsupported:
        return None
    except Exception as exc:
        return "native", decide.failed(str(exc))


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """No numpy/pandas warnings on stderr (e.g. the mean of inf and -inf)."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def check_result(spec: ExpectationSpec, metric: str, engine: str, outcome: Outcome) -> CheckResult:
    """The stored result of one check, with its message when it failed."""
    return CheckResult(
        metric=metric,
        expectation=spec.type,
        kwargs=spec.kwargs,
        success=outcome.success,
        element_count=outcome.element_count,
        unexpected_count=outcome.unexpected_count,
        observed_value=outcome.observed_value,
        engine=engine,
        message=None if outcome.success else message(spec, outcome),
    )
