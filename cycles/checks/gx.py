"""The GX engine: Great Expectations itself, for what the table does not cover, and the oracle.

`import great_expectations` costs seconds and hundreds of MB, so nothing here imports it at module
level: the first call that needs GX imports it quietly and caches one ephemeral context. It also
judges the arguments the table's models reject (`argument_problem`) and names unknown expectations.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import logging
import re
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cycles.checks.decide import Outcome

if TYPE_CHECKING:
    import pandas as pd

    from cycles.checks.spec import ExpectationSpec

Loc = tuple[str | int, ...]

_LOCK = threading.RLock()  # one GX context for the process; Prefect may run tasks in threads
_INDEX_KEY = "radar_index"  # set in each expectation's meta to map results back to specs
_batch_definition: Any = None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence GX: its warnings and its logging (progress bars are off in the context)."""
    logging.getLogger("great_expectations").setLevel(logging.CRITICAL + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _import_gx() -> ModuleType:
    with _quiet():
        import great_expectations

    return great_expectations


def expectation_class(name: str) -> Any | None:
    """GX's class for a snake_case expectation name, or None if GX has no such expectation."""
    _import_gx()
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        return get_expectation_impl(name) if name.startswith("expect_") else None
    except Exception:  # ExpectationNotFoundError
        return None


def expectation_names() -> list[str]:
    """Every expectation name GX knows."""
    _import_gx()
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    names = list_registered_expectation_implementations()
    return sorted(n for n in names if n.startswith("expect_"))


def argument_problem(
    name: str, kwargs: Mapping[str, Any], native: Mapping[Loc, str]
) -> tuple[str, Loc] | None:
    """(message, loc) for the first argument GX rejects, None if GX accepts them all.

    `native` holds the native models' messages by loc: pydantic v2 wording reads better than GX's
    v1 wording ("Input should be a valid number", not "value is not a valid float").
    """
    cls = expectation_class(name)
    if cls is None:
        return unknown_expectation(name), ()
    try:
        with _quiet():
            cls(**kwargs)
    except Exception as exc:
        loc, message, kind = _errors(exc)[0]
        if kind == "value_error.extra":
            message = "unknown argument" + _did_you_mean(str(loc[-1]), cls.__fields__)
        elif loc and loc in native:
            message = native[loc]
        return (f"{'.'.join(map(str, loc))}: {message}" if loc else message), loc
    return None


def unknown_expectation(name: str) -> str:
    names = expectation_names()
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # a class name: ExpectColumnToExist
    if snake != name and snake in names:
        return f"unknown expectation {name!r} (did you mean {snake!r}?)"
    return f"unknown expectation {name!r}" + _did_you_mean(name, names)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _errors(exc: Exception) -> list[tuple[Loc, str, str]]:
    """A (pydantic v1) validation error as (loc, message, error type) triples."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [((), _first_line(exc), "error")]
    return [
        (tuple(x for x in e["loc"] if x != "__root__"), str(e["msg"]), str(e["type"]))
        for e in errors()
    ]


def narrow(frame: pd.DataFrame, specs: Sequence[ExpectationSpec]) -> pd.DataFrame:
    """The frame with only the columns the specs need: GX is slow on wide frames."""
    if any(spec.reads_every_column for spec in specs):
        return frame
    wanted: list[str] = []
    for spec in specs:
        wanted.extend(c for c in spec.columns if c in frame.columns and c not in wanted)
    return frame if len(wanted) == len(frame.columns) else frame[wanted]


def run(frame: pd.DataFrame, specs: Sequence[ExpectationSpec]) -> list[Outcome]:
    """Validate the specs on the frame with GX; one Outcome per spec, in order; never raises."""
    outcomes: list[Outcome | None] = [None] * len(specs)
    built: list[Any] = []
    for index, spec in enumerate(specs):
        try:
            built.append(_build(spec, index))
        except Exception as exc:
            loc, message, _ = _errors(exc)[0]
            where = f"{'.'.join(map(str, loc))}: " if loc else ""
            outcomes[index] = Outcome(False, error=f"invalid expectation: {where}{message}")
    if built:
        data = narrow(frame, specs)
        with _LOCK, _quiet():
            try:
                found = _validate(data, built)
            except Exception:  # one expectation broke the whole suite: run them one by one
                found = {}
                for expectation in built:
                    try:
                        found.update(_validate(data, [copy.copy(expectation)]))
                    except Exception as exc:
                        error = f"could not evaluate: {_first_line(exc)}"
                        found[expectation.meta[_INDEX_KEY]] = Outcome(False, error=error)
        for index, outcome in found.items():
            outcomes[index] = outcome
    return [o or Outcome(False, error="no result from Great Expectations") for o in outcomes]


def _build(spec: ExpectationSpec, index: int) -> Any:
    cls = expectation_class(spec.type)
    if cls is None:
        raise ValueError(f"unknown expectation {spec.type!r}")
    kwargs = {k: v for k, v in spec.kwargs.items() if k != "id"}  # an id ties it to a suite
    meta = {**(kwargs.pop("meta", None) or {}), _INDEX_KEY: index}
    with _quiet():
        return cls(**kwargs, meta=meta)


def _batch(data: pd.DataFrame) -> Any:
    global _batch_definition
    if _batch_definition is None:
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        asset = context.data_sources.add_pandas("radar").add_dataframe_asset("rows")
        _batch_definition = asset.add_batch_definition_whole_dataframe("period")
    return _batch_definition.get_batch(batch_parameters={"dataframe": data})


def _validate(data: pd.DataFrame, expectations: list[Any]) -> dict[int, Outcome]:
    suite = _import_gx().ExpectationSuite(
        name=f"radar-{uuid.uuid4().hex}", expectations=expectations
    )
    results = _batch(data).validate(suite, result_format="BASIC").results
    return {r.expectation_config.meta[_INDEX_KEY]: _outcome(r) for r in results}


def _outcome(result: Any) -> Outcome:
    values = dict(result.result or {})
    return Outcome(
        success=bool(result.success),
        element_count=values.get("element_count"),
        unexpected_count=values.get("unexpected_count"),
        missing_count=values.get("missing_count"),
        observed_value=values.get("observed_value"),
        error=_exception_message(result.exception_info),
    )


def _exception_message(info: Any) -> str | None:
    """The first exception message in GX's exception_info (flat, or keyed by metric)."""
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        lines = str(info.get("exception_message") or "unknown error").strip().splitlines()
        return "could not evaluate: " + (lines[0] if lines else "unknown error")
    for value in info.values():
        if (found := _exception_message(value)) is not None:
            return found
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
