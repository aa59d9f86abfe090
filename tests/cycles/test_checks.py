"""Data checks: parsing declared expectations, and native evaluation matching real GX exactly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from cycles.checks import (
    ENGINE_ENV,
    NATIVE_EXPECTATIONS,
    ExpectationSpec,
    ExpectationSpecError,
    evaluate,
    gx,
    parse_expectation,
    required_columns,
)
from cycles.checks.table import EXPECTATIONS
from cycles.values import CheckResult

BETWEEN = "expect_column_values_to_be_between"
AGGREGATES = {
    "expect_column_mean_to_be_between",
    "expect_column_min_to_be_between",
    "expect_column_max_to_be_between",
}


def run(frame: pd.DataFrame, *items: Any, engine: str | None = None) -> list[CheckResult]:
    specs = [parse_expectation(item) for item in items]
    with pytest.MonkeyPatch.context() as mp:
        if engine:
            mp.setenv(ENGINE_ENV, engine)
        else:
            mp.delenv(ENGINE_ENV, raising=False)
        return evaluate(frame, specs, metric="m")


# --- parsing ---


@pytest.mark.parametrize(
    ("item", "type_", "kwargs"),
    [
        ({BETWEEN: {"column": "r", "min_value": 0, "max_value": 1}}, BETWEEN, None),
        (
            {"expect_table_row_count_to_be_between": None},
            "expect_table_row_count_to_be_between",
            {},
        ),
        ({"type": "expect_column_to_exist", "kwargs": {"column": "r"}}, None, {"column": "r"}),
        ({"type": "expect_table_row_count_to_be_between"}, None, {}),
        (ExpectationSpec(type=BETWEEN, kwargs={"column": "r", "max_value": 1}), BETWEEN, None),
        # arguments only GX knows (or values only GX coerces): valid, they will run through GX
        ({BETWEEN: {"column": "r", "min_value": 0, "row_condition": "b > 1"}}, BETWEEN, None),
        ({BETWEEN: {"column": "r", "min_value": "0.5"}}, BETWEEN, None),
        ({BETWEEN: {"column": "r", "min_value": {"$PARAMETER": "lo"}}}, BETWEEN, None),
        (
            {"expect_column_values_to_not_be_null": {"column": "r", "meta": {"a": 1}}},
            "expect_column_values_to_not_be_null",
            None,
        ),
        (
            {"expect_column_value_lengths_to_be_between": {"column": "s", "min_value": 1}},
            "expect_column_value_lengths_to_be_between",
            None,
        ),
    ],
)
def test_parse_accepts(item: Any, type_: str | None, kwargs: dict[str, Any] | None) -> None:
    spec = parse_expectation(item)
    if type_ is not None:
        assert spec.type == type_
    if kwargs is not None:
        assert spec.kwargs == kwargs
    assert parse_expectation(spec) == spec


@pytest.mark.parametrize(
    ("item", "message", "loc"),
    [
        (
            {"expect_colum_values_to_be_null": {"column": "a"}},
            "unknown expectation 'expect_colum_values_to_be_null' "
            "(did you mean 'expect_column_values_to_be_null'?)",
            ("expect_colum_values_to_be_null",),
        ),
        (
            {"ExpectColumnValuesToNotBeNull": {"column": "a"}},
            "(did you mean 'expect_column_values_to_not_be_null'?)",
            ("ExpectColumnValuesToNotBeNull",),
        ),
        (
            {BETWEEN: {"column": "a", "min_value": "x"}},
            "min_value: Input should be a valid number",
            (BETWEEN, "min_value"),
        ),
        ({BETWEEN: {"column": "a"}}, "min_value and max_value cannot both be None", (BETWEEN,)),
        (
            {BETWEEN: {"column": "a", "min_value": 0, "mostlyy": 0.9}},
            "mostlyy: unknown argument (did you mean 'mostly'?)",
            (BETWEEN, "mostlyy"),
        ),
        (
            {BETWEEN: {"column": "a", "min_value": 0, "mostly": 1.5}},
            "mostly: Input should be less than or equal to 1",
            (BETWEEN, "mostly"),
        ),
        ({BETWEEN: {"min_value": 0}}, "column: Field required", (BETWEEN, "column")),
        (
            {"expect_column_values_to_be_in_set": {"column": "a", "value_set": "abc"}},
            "value_set: Input should be a valid list",
            ("expect_column_values_to_be_in_set", "value_set"),
        ),
        (
            {"expect_table_row_count_to_be_between": {"min_value": 3, "max_value": 1}},
            "min_value (3) must be less than or equal to max_value (1)",
            ("expect_table_row_count_to_be_between",),
        ),
        (
            {"expect_column_value_lengths_to_be_between": {"column": "a", "min_value": "x"}},
            "min_value: value is not a valid integer",
            ("expect_column_value_lengths_to_be_between", "min_value"),
        ),
        (
            {"expect_column_values_to_be_increasing": {"column": "a", "bogus": 1}},
            "bogus: unknown argument",
            ("expect_column_values_to_be_increasing", "bogus"),
        ),
        (
            {BETWEEN: {"column": "a"}, "expect_column_to_exist": {"column": "a"}},
            "must have one key, its name; got 2",
            (),
        ),
        ({}, "must have one key, its name; got none", ()),
        ("expect_column_to_exist", "must be a mapping", ()),
        ({1: {"column": "a"}}, "name must be a string", ()),
        (
            {"expect_column_to_exist": ["a"]},
            "arguments must be a mapping, got list",
            ("expect_column_to_exist",),
        ),
        (
            {"expect_column_to_exist": {1: "a"}},
            "argument names must be strings",
            ("expect_column_to_exist",),
        ),
    ],
)
def test_parse_rejects(item: Any, message: str, loc: tuple[str, ...]) -> None:
    with pytest.raises(ExpectationSpecError) as caught:
        parse_expectation(item)
    assert message in caught.value.message
    assert caught.value.loc == loc
    assert "\n" not in str(caught.value)


def test_yaml_scalars_are_plain_and_run_natively() -> None:
    text = "- expect_column_values_to_be_between: {column: r, min_value: 0, max_value: 1.5}\n"
    spec = parse_expectation(YAML().load(text)[0])  # round-trip loader: 1.5 is a ScalarFloat
    assert type(spec.kwargs["max_value"]) is float
    [result] = run(pd.DataFrame({"r": [0.5, 2.0]}), spec)
    assert (result.engine, result.success, result.unexpected_count) == ("native", False, 1)


def test_native_argument_models_mirror_gx() -> None:
    for name, entry in EXPECTATIONS.items():
        gx_class = gx.expectation_class(name)
        assert gx_class is not None, name
        assert set(entry.args.model_fields) <= set(gx_class.__fields__), name


def test_columns_and_required_columns() -> None:
    specs = [
        ExpectationSpec(type=BETWEEN, kwargs={"column": "a", "min_value": 0}),
        ExpectationSpec(
            type="expect_column_pair_values_to_be_equal", kwargs={"column_A": "b", "column_B": "a"}
        ),
        ExpectationSpec(
            type="expect_compound_columns_to_be_unique", kwargs={"column_list": ["c", "b"]}
        ),
        ExpectationSpec(type="expect_table_row_count_to_be_between", kwargs={"min_value": 1}),
    ]
    assert specs[1].columns == ["b", "a"]
    assert specs[3].columns == []
    assert required_columns(specs) == ["a", "b", "c"]


def test_import_and_native_parse_stay_light() -> None:
    code = (
        "import sys, cycles.checks as c\n"
        f"c.parse_expectation({{'{BETWEEN}': {{'column': 'r', 'max_value': 1}}}})\n"
        "c.parse_expectation({'expect_table_row_count_to_be_between': {'min_value': 1}})\n"
        "assert 'great_expectations' not in sys.modules and 'pandas' not in sys.modules\n"
        "assert 'numpy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- native == GX ---

NUMBER = st.one_of(
    st.none(),
    st.just(math.nan),
    st.integers(-3, 3),
    st.sampled_from([-1.5, -0.5, 0.0, 0.5, 1.0, 2.5]),
)
TEXT = st.one_of(st.none(), st.sampled_from(["a", "b", "ab", "ba", "", "1", "a1"]))


@st.composite
def numbers(draw: st.DrawFn) -> pd.Series:
    values = draw(st.lists(NUMBER, max_size=8))
    dtype = draw(st.sampled_from([None, None, "float64", "object", "Int64"]))
    if dtype == "Int64":
        return pd.Series([v if isinstance(v, int) else None for v in values], dtype="Int64")
    return pd.Series(values, dtype=dtype or (None if values else "float64"))


@st.composite
def texts(draw: st.DrawFn) -> pd.Series:
    values = draw(st.lists(TEXT, max_size=8))
    return pd.Series(values, dtype=draw(st.sampled_from([None, "object"])))


mixed = st.lists(st.one_of(NUMBER, TEXT), max_size=6).map(lambda v: pd.Series(v, dtype=object))
any_column = st.one_of(numbers(), texts(), mixed)
numeric_column = st.one_of(numbers(), numbers(), numbers(), mixed)  # mostly the vectorised path
BOUND = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([-0.5, 0.5, 1.5]))
value_set = st.lists(st.one_of(NUMBER, TEXT), max_size=4)

# A strategy for each argument a table entry reads, by name: every entry of the table is
# oracle-tested against GX as soon as it is added (a new argument name needs a strategy here).
ARGUMENTS: dict[str, st.SearchStrategy] = {
    "column": st.just("x"),
    "mostly": st.sampled_from([0.0, 0.5, 0.6, 0.75, 1.0]),
    "min_value": BOUND,
    "max_value": BOUND,
    "strict_min": st.booleans(),
    "strict_max": st.booleans(),
    "value_set": value_set,
    "regex": st.sampled_from(["^a", "b$", "1", "^$", "a|b", r"\d", r"^\d+\.\d+$"]),
    "column_index": st.sampled_from([None, 0, 1, -1, 2]),
}
# Where an entry needs other values: the columns it reads (default any_column), its arguments.
COLUMNS: dict[str, st.SearchStrategy] = {
    BETWEEN: numeric_column,
    **dict.fromkeys(AGGREGATES, st.one_of(numbers(), numbers(), texts())),
}
OVERRIDES: dict[str, dict[str, st.SearchStrategy]] = {
    "expect_column_to_exist": {"column": st.sampled_from(["x", "y", "z"])},
    "expect_table_row_count_to_be_between": {
        "min_value": st.integers(0, 5),
        "max_value": st.integers(0, 5),
    },
}


def arguments(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for the entry's model, each field drawn when optional; only valid ones."""
    model = EXPECTATIONS[name].args
    fields = {f: OVERRIDES.get(name, {}).get(f, ARGUMENTS[f]) for f in model.model_fields}
    required = {f: s for f, s in fields.items() if model.model_fields[f].is_required()}
    optional = {f: s for f, s in fields.items() if f not in required}
    return st.fixed_dictionaries(required, optional=optional).filter(lambda k: _valid(model, k))


def _valid(model: type[Any], kwargs: dict[str, Any]) -> bool:
    try:
        model.model_validate(kwargs)
    except ValueError:  # pydantic's ValidationError
        return False
    return True


def assert_same(native: CheckResult, oracle: CheckResult) -> None:
    assert oracle.engine == "gx"
    assert native.success == oracle.success
    assert native.element_count == oracle.element_count
    assert native.unexpected_count == oracle.unexpected_count
    assert native.observed_value == oracle.observed_value
    if not (native.message or "").startswith("could not evaluate"):
        assert native.message == oracle.message


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_native_matches_gx(name: str, data: st.DataObject) -> None:
    """Every entry of the table, on generated columns and arguments: the same result as GX."""
    column = data.draw(COLUMNS.get(name, any_column), label="column")
    frame = pd.DataFrame({"x": column, "y": range(len(column))})
    item = {name: data.draw(arguments(name), label="kwargs")}
    [native] = run(frame, item)
    [oracle] = run(frame, item, engine="gx")
    assert_same(native, oracle)
    fallback = name in AGGREGATES and column.dtype.kind not in "biuf"  # GX converts those
    assert native.engine == ("gx" if fallback else "native")
    json.dumps(native.model_dump())


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([True, False, True]),
        pd.Series([True, None, False], dtype="boolean"),
        pd.Series(["a", "b", None], dtype="category"),
        pd.Series([math.inf, -math.inf, 1.0, math.nan]),
        pd.Series([1, 2, 3], dtype="uint8"),
        pd.Series([0.1, 0.2, None], dtype="float32"),
        pd.Series([0.5, None, 2.0], dtype="Float64"),
        pd.Series(["a", None, "b"], dtype="string[pyarrow]"),
        pd.to_datetime(pd.Series(["2024-01-01", None, "2024-03-01"])),
    ],
    ids=lambda c: str(c.dtype),
)
def test_native_matches_gx_on_other_dtypes(column: pd.Series) -> None:
    items = [
        {BETWEEN: {"column": "x", "min_value": 0, "max_value": 1}},
        {BETWEEN: {"column": "x", "min_value": 0.15, "strict_min": True}},
        {"expect_column_values_to_be_in_set": {"column": "x", "value_set": [True, 1, "a", 0.1]}},
        {"expect_column_values_to_not_be_in_set": {"column": "x", "value_set": [True, "a"]}},
        {"expect_column_values_to_be_unique": {"column": "x"}},
        {"expect_column_values_to_match_regex": {"column": "x", "regex": "^[aT1]"}},
        {"expect_column_values_to_not_be_null": {"column": "x", "mostly": 0.6}},
        {"expect_column_mean_to_be_between": {"column": "x", "min_value": 0.5}},
        {"expect_column_min_to_be_between": {"column": "x", "min_value": 0.1}},
        {"expect_column_max_to_be_between": {"column": "x", "max_value": 1}},
    ]
    frame = pd.DataFrame({"x": column})
    for native, oracle in zip(run(frame, *items), run(frame, *items, engine="gx"), strict=True):
        assert_same(native, oracle)


def test_empty_frame() -> None:
    frame = pd.DataFrame({"x": pd.Series([], dtype="float64")})
    items = [
        {"expect_column_values_to_not_be_null": {"column": "x"}},
        {"expect_column_values_to_be_null": {"column": "x"}},
        {BETWEEN: {"column": "x", "min_value": 0}},
        {"expect_column_values_to_be_in_set": {"column": "x", "value_set": [1]}},
        {"expect_column_values_to_not_be_in_set": {"column": "x", "value_set": [1]}},
        {"expect_column_values_to_be_unique": {"column": "x"}},
        {"expect_column_values_to_match_regex": {"column": "x", "regex": "^a"}},
        {"expect_table_row_count_to_be_between": {"min_value": 1}},
        {"expect_column_mean_to_be_between": {"column": "x", "min_value": 0}},
        {"expect_column_min_to_be_between": {"column": "x"}},
        {"expect_column_max_to_be_between": {"column": "x", "max_value": 1}},
        {"expect_column_to_exist": {"column": "x"}},
    ]
    assert {next(iter(i)) for i in items} == NATIVE_EXPECTATIONS
    native, oracle = run(frame, *items), run(frame, *items, engine="gx")
    for n, g in zip(native, oracle, strict=True):
        assert_same(n, g)
    by_type = {r.expectation: r for r in native}
    assert by_type[BETWEEN].success and by_type[BETWEEN].element_count == 0  # vacuously true
    assert by_type["expect_column_values_to_not_be_null"].success
    row_count = by_type["expect_table_row_count_to_be_between"]
    assert (row_count.success, row_count.observed_value) == (False, 0)
    assert row_count.message == "row count 0 below 1"
    mean = by_type["expect_column_mean_to_be_between"]
    assert (mean.success, mean.observed_value, mean.message) == (
        False,
        None,
        "mean is null (no values)",
    )


# --- results, messages, the GX path ---


def test_results_and_messages() -> None:
    frame = pd.DataFrame({"r": [0.1, 0.5, None, 1.5, 0.2], "s": ["a", "b", None, "c", "a"]})
    results = run(
        frame,
        {BETWEEN: {"column": "r", "min_value": 0, "max_value": 1}},
        {"expect_column_values_to_be_increasing": {"column": "r"}},
        {"expect_column_values_to_not_be_null": {"column": "missing"}},
        {"expect_column_mean_to_be_between": {"column": "r", "max_value": 0.5, "strict_max": True}},
        {"expect_column_values_to_be_unique": {"column": "s", "mostly": 0.9}},
        {"expect_column_to_exist": {"column": "zz"}},
        {"expect_column_values_to_match_regex": {"column": "s", "regex": "("}},
    )
    assert [r.engine for r in results] == [
        "native",
        "gx",
        "native",
        "native",
        "native",
        "native",
        "native",
    ]
    assert [r.success for r in results] == [False, False, False, False, False, False, False]
    assert [r.message for r in results[:6]] == [
        "1 of 4 non-null values outside [0, 1]",
        "1 of 4 non-null values unexpected",
        "column 'missing' not found",
        "mean 0.575 at or above 0.5",
        "2 of 4 non-null values repeated (mostly=0.9)",
        "column 'zz' not found",
    ]
    assert results[6].message is not None and results[6].message.startswith("could not evaluate")
    assert results[0].kwargs == {"column": "r", "min_value": 0, "max_value": 1}
    assert isinstance(results[3].observed_value, float)
    json.dumps([r.model_dump() for r in results])


def test_gx_only_expectations_run_through_gx() -> None:
    frame = pd.DataFrame({"s": ["a", "bb", "ccc", None], "n": [1, 3, 2, 4]})
    lengths, increasing, missing = run(
        frame,
        {
            "expect_column_value_lengths_to_be_between": {
                "column": "s",
                "min_value": 1,
                "max_value": 2,
            }
        },
        {"expect_column_values_to_be_increasing": {"column": "n"}},
        {"expect_column_values_to_be_increasing": {"column": "nope"}},
    )
    assert (lengths.engine, lengths.success, lengths.element_count, lengths.unexpected_count) == (
        "gx",
        False,
        4,
        1,
    )
    assert (increasing.engine, increasing.success, increasing.unexpected_count) == ("gx", False, 1)
    assert (missing.success, missing.message) == (False, "column 'nope' not found")


def test_gx_arguments_and_errors_become_results() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 5.0], "b": [0, 1, 2, 3]})
    conditional, coerced, parameter = run(
        frame,
        {
            "expect_column_values_to_be_in_set": {
                "column": "a",
                "value_set": [1.0, 2.0],
                "row_condition": "b < 2",
                "condition_parser": "pandas",
            }
        },
        {BETWEEN: {"column": "a", "min_value": "0.5", "max_value": 2}},
        {BETWEEN: {"column": "a", "min_value": {"$PARAMETER": "lo"}}},
    )
    assert (conditional.engine, conditional.success, conditional.element_count) == ("gx", True, 2)
    assert (coerced.engine, coerced.success, coerced.unexpected_count) == ("gx", False, 2)
    assert parameter.success is False and "could not evaluate" in (parameter.message or "")
    dated = pd.DataFrame({"d": pd.to_datetime(["2024-01-05", "2024-02-01", None])})
    # GX coerces "2024-01-01" to a date, which pandas will not compare with a Timestamp
    [as_date, as_datetime] = run(
        dated,
        {"expect_column_min_to_be_between": {"column": "d", "min_value": "2024-01-01"}},
        {"expect_column_min_to_be_between": {"column": "d", "min_value": "2024-01-01T00:00:00"}},
    )
    assert not as_date.success and "could not evaluate" in (as_date.message or "")
    assert (as_datetime.engine, as_datetime.success) == ("gx", True)
    assert as_datetime.observed_value == "2024-01-05T00:00:00"
    bad = ExpectationSpec(type="expect_nothing_at_all")  # built without parse_expectation
    [result] = evaluate(frame, [bad], metric="m")
    assert (result.success, result.message) == (
        False,
        "invalid expectation: unknown expectation 'expect_nothing_at_all'",
    )


def test_gx_path_gets_only_needed_columns() -> None:
    frame = pd.DataFrame({f"extra{i}": range(6) for i in range(200)})
    frame["r"] = [0.1, 0.2, None, 0.9, 1.2, 0.3]
    frame["s"] = list("aabbcc")
    specs = [
        parse_expectation({BETWEEN: {"column": "r", "min_value": 0, "max_value": 1}}),
        parse_expectation(
            {"expect_column_values_to_be_in_set": {"column": "s", "value_set": ["a", "b"]}}
        ),
        parse_expectation(
            {"expect_table_row_count_to_be_between": {"min_value": 6, "max_value": 6}}
        ),
    ]
    assert list(gx.narrow(frame, specs).columns) == ["r", "s"]
    results = run(frame, *specs, engine="gx")
    assert [(r.success, r.element_count, r.unexpected_count) for r in results] == [
        (False, 6, 1),
        (False, 6, 2),
        (True, None, None),
    ]
    assert results[2].observed_value == 6
    whole = parse_expectation({"expect_table_column_count_to_equal": {"value": 202}})
    assert gx.narrow(frame, [*specs, whole]) is frame
    [count] = run(frame, whole)
    assert (count.engine, count.success, count.observed_value) == ("gx", True, 202)


def test_gx_path_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({"r": [0.1, None, 3.0]})
    run(
        frame,
        {BETWEEN: {"column": "r", "max_value": 1}},
        {"expect_column_values_to_be_increasing": {"column": "r"}},
        engine="gx",
    )
    assert capfd.readouterr() == ("", "")


def test_first_gx_use_prints_nothing() -> None:
    """In a fresh process: the GX import and context creation are silent too."""
    code = (
        "import os, pandas as pd\n"
        f"os.environ['{ENGINE_ENV}'] = 'gx'\n"
        "from cycles.checks import evaluate, parse_expectation\n"
        "spec = parse_expectation({'expect_column_values_to_be_unique': {'column': 'r'}})\n"
        "[r] = evaluate(pd.DataFrame({'r': [1, 1, 2]}), [spec], metric='m')\n"
        "assert r.engine == 'gx' and r.unexpected_count == 2, r\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_an_expectation_breaking_the_gx_suite_fails_alone() -> None:
    frame = pd.DataFrame({"n": [1, 2, 3]})
    unserialisable = {"column": "n", "meta": {"x": object()}}  # a Python declaration's mistake
    specs = [
        ExpectationSpec(type="expect_column_values_to_be_increasing", kwargs=unserialisable),
        ExpectationSpec(type="expect_column_values_to_be_increasing", kwargs={"column": "n"}),
    ]
    broken, fine = evaluate(frame, specs, metric="m")
    assert (broken.success, fine.success, fine.unexpected_count) == (False, True, 0)
    assert "cannot be serialized" in (broken.message or "")
