"""Data checks: Great Expectations (GX 1.x) expectations declared per metric, run on period rows.

Importing GX costs seconds, so the common expectations run without it, each defined once in
`table`: natively, by the same pandas operations GX's pandas metrics perform (`native`), or in the
database by the SQL connector from the entry's translation (`connectors.sql_checks`); both decide
from their counts with `decide`, so every engine gives GX's result. Any other expectation or
argument, and all of them when RADAR_CHECKS_ENGINE=gx (`engine`), runs through GX (`gx`). No
pandas, numpy, SQLAlchemy or GX at import.

    spec      ExpectationSpec; mirrors of GX's argument models
    parse     parse_expectation: a declared item, validated by its model or else by GX
    table     the expectations radar evaluates itself: arguments, native, SQL, message words
    decide    Outcome, and deciding it from counts (mostly, bounds, vacuous success)
    native    the pandas evaluators
    gx        Great Expectations itself, imported on first use
    messages  why a check failed, in one line, whichever engine ran it
    engine    evaluate: which engine runs each check; the one reader of RADAR_CHECKS_ENGINE
"""

from cycles.checks.decide import Outcome
from cycles.checks.engine import ENGINE_ENV, check_result, evaluate, gx_forced
from cycles.checks.parse import parse_expectation
from cycles.checks.spec import ExpectationSpec, ExpectationSpecError, required_columns
from cycles.checks.table import NATIVE_EXPECTATIONS, TRANSLATED, native_args

__all__ = [
    "ENGINE_ENV",
    "NATIVE_EXPECTATIONS",
    "TRANSLATED",
    "ExpectationSpec",
    "ExpectationSpecError",
    "Outcome",
    "check_result",
    "evaluate",
    "gx_forced",
    "native_args",
    "parse_expectation",
    "required_columns",
]
