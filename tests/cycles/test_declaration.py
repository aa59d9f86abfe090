"""Declarations: the YAML and Python forms, and one clear located error per bad declaration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cycles.cli import main
from cycles.declaration import load, load_python, load_yaml
from cycles.errors import DeclarationError

from conftest import ROOT, months, write_declaration, write_monthly_csv

GOOD = dict.fromkeys(months("2025-01", 22), 0.18)


@pytest.fixture
def decl(workdir: Path) -> Path:
    write_monthly_csv(workdir / "data" / "rate.csv", GOOD)
    return write_declaration(workdir)


# (id, old text, new text, line marker in the new text, key, message substring)
BAD = [
    ("yaml syntax", "  rate:\n    connector: crm", "  rate:\n    connector: [crm", "period: day", None, "YAML syntax error"),
    ("unknown top-level key", "title: Customers", "titel: Customers", "titel:", "titel", "unknown key (did you mean 'title'?)"),
    ("missing required key", "title: Customers refer us\n", "", "outcome:", "title", "required key is missing"),
    ("typo in the result metric", "  metric: rate\n  target", "  metric: rat\n  target", "metric: rat", "result.metric", "'rat' is not a key of metrics (did you mean 'rate'?)"),
    ("metric names an undeclared connector", "    connector: crm", "    connector: crm2", "connector: crm2", "metrics.rate.connector", "'crm2' is not a key of connectors"),
    ("unknown connector type", "    type: csv", "    type: exel", "type: exel", "connectors.crm.type", "unknown connector type 'exel' (known: csv, http, parquet, sql"),
    ("unknown connector key", "    path: data/rate.csv", "    pth: data/rate.csv", "pth:", "connectors.crm.pth", "unknown key"),
    ("unknown expectation", "expect_column_values_to_not_be_null", "expect_colum_values_to_not_be_null", "expect_colum_values", "checks.rate[0].expect_colum_values_to_not_be_null", "did you mean 'expect_column_values_to_not_be_null'"),
    ("bad expectation argument", "min_value: 0,", "min_value: low,", "min_value: low", "checks.rate[1].expect_column_values_to_be_between.min_value", "min_value"),
    ("wrong type for the target", "  target: 0.3", "  target: high", "target: high", "result.target", "valid number"),
    ("unknown direction", "direction: increase", "direction: up", "direction: up", "result.direction", "'increase' or 'decrease'"),
    ("unknown cadence", "cadence: monthly", "cadence: daily", "cadence: daily", "cadence", "'weekly', 'monthly' or 'quarterly'"),
    ("outcome identifier", "outcome: refer", "outcome: Refer Rate", "outcome: Refer", "outcome", "a-z, 0-9"),
    ("value and numerator", "    value: rate", "    value: rate\n    numerator: referred", "value: rate", "metrics.rate.value", "not both"),
    ("checks for an undeclared metric", "checks:\n  rate:", "checks:\n  rates:", "  rates:", "checks.rates", "'rates' is not a key of metrics"),
    ("adjust names no parameter", "adjust: {usd:", "adjust: {dollars:", "adjust: {dollars", "approaches[0].adjust.dollars", "not a key of params"),
    ("adjust without a bound", "{step: 10, max: 40}", "{step: 10}", "adjust: {usd", "approaches[0].adjust.usd", "exactly one bound"),
    ("duplicate approach", "  - name: nudge", "  - name: incentive", "  - name: incentive\n    params: {asks", "approaches[1].name", "duplicate approach name"),
    ("duplicate YAML key", "cadence: monthly\n", "cadence: monthly\ncadence: weekly\n", "cadence: weekly", None, "duplicate key"),
    ("missing data file", "path: data/rate.csv", "path: data/missing.csv", "path: data/missing", "connectors.crm.path", "file not found"),
    ("missing period column", "    period: day", "    period: month", "period: month", "metrics.rate.period", "column 'month' not found"),
    ("missing value column", "    value: rate", "    value: ratio", "value: ratio", "metrics.rate.value", "column 'ratio' not found"),
    ("check column not in the data", "not_be_null: {column: rate}", "not_be_null: {column: rte}", "column: rte", "checks.rate[0].expect_column_values_to_not_be_null.column", "column 'rte' is not in the rows"),
    ("missing environment variable", "path: data/rate.csv", "path: ${RADAR_TEST_UNSET_DIR}/rate.csv", "RADAR_TEST_UNSET", "connectors.crm.path", "environment variable RADAR_TEST_UNSET_DIR is not set"),
    ("unknown action type", "    adjust: {usd: {step: 10, max: 40}}", "    adjust: {usd: {step: 10, max: 40}}\n    actions:\n      - {name: ask, type: carrier-pigeon}", "carrier-pigeon", "approaches[0].actions[0].type", "unknown action type 'carrier-pigeon'"),
    ("unknown placeholder in an action", "    adjust: {usd: {step: 10, max: 40}}", "    adjust: {usd: {step: 10, max: 40}}\n    actions:\n      - {name: ask, type: python, callable: 'x:y', kwargs: {usd: '{params.dollars}'}}", "params.dollars", "approaches[0].actions[0].kwargs.usd", "unknown placeholder {params.dollars}"),
    ("policy out of range", "  sustain: 3", "  sustain: 0", "sustain: 0", "policy.sustain", "greater than or equal to 1"),
    # found by tests/test_fuzz.py
    ("baseline beyond its bound", "  baseline_periods: 12", "  baseline_periods: 30000", "baseline_periods: 30000", "policy.baseline_periods", "less than or equal to 260"),
    ("sustain beyond its bound", "  sustain: 3", f"  sustain: {2**63}", "sustain: 92", "policy.sustain", "less than or equal to 60"),
    ("adjustments beyond their bound", "  max_adjustments: 3", "  max_adjustments: 1000", "max_adjustments: 1000", "policy.max_adjustments", "less than or equal to 100"),
    ("target not a finite number", "  target: 0.3", "  target: .nan", "target: .nan", "result.target", "finite number"),
    ("adjust step not finite", "{step: 10, max: 40}", "{step: .inf, max: 40}", "adjust: {usd", "approaches[0].adjust.usd.step", "finite number"),
    ("parameter not finite", "params: {asks: 2}", "params: {asks: -.inf}", "params: {asks", "approaches[1].params.asks", "-inf is not a finite number"),
    ("adjustable parameter beyond floats", "params: {usd: 20}", "params: {usd: 1" + "0" * 400 + "}", "params: {usd", "approaches[0].params.usd", "below 1e308"),
    ("key merged from an anchor", "policy:\n", "review: &r\n  delay: P14D\npolicy:\n  <<: *r\n", "policy:\n  <<", "policy.delay", "unknown key"),
    ("character YAML does not allow", "title: Customers", "title: Cust\x00omers", "title: Cust", None, "character U+0000 is not allowed"),
    ("key holding a line break", "cadence: monthly\n", 'cadence: monthly\n"ti\\ntle": x\n', '"ti', "ti tle", "unknown key"),
    ("unknown CSV encoding", "    type: csv", "    type: csv\n    encoding: utf-9", "encoding: utf-9", "connectors.crm.encoding", "unknown encoding 'utf-9'"),
    ("CSV delimiter of two characters", "    type: csv", "    type: csv\n    delimiter: ';;'", "delimiter: ';;'", "connectors.crm.delimiter", "at most 1 character"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "marker", "key", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_declaration(decl: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                         old: str, new: str, marker: str, key: str | None, message: str) -> None:  # fmt: skip
    monkeypatch.delenv("RADAR_TEST_UNSET_DIR", raising=False)
    text = decl.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    decl.write_text(text)
    line = text[: text.index(marker)].count("\n") + 1

    for argv in (["validate", str(decl)], ["run", str(decl), "--period", "2026-10", "--json"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1, err  # one line
        assert "Traceback" not in err
        prefix = f"radar: {decl}:{line}: " + (f"{key}: " if key else "")
        assert err.startswith(prefix), f"{err!r} does not start with {prefix!r}"
        assert message in err, err
    assert not (decl.parent / ".radar" / "radar.db").exists() or _no_cycles(decl.parent)


def _no_cycles(directory: Path) -> bool:
    import sqlite3

    with sqlite3.connect(directory / ".radar" / "radar.db") as db:
        return db.execute("select count(*) from cycles").fetchone()[0] == 0


def test_malformed_period_is_a_usage_error(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("2026-13", "2026-W43", "October", "2026-Q5"):
        assert main(["run", str(decl), "--period", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("radar: --period: ") and "expected e.g. 2026-10" in err, err
        assert err.count("\n") == 1


def test_unknown_option_is_a_usage_error(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(decl), "--perod", "2026-10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--perod" in err


def test_errors_exit_2_without_traceback_in_a_real_process(decl: Path) -> None:
    decl.write_text(decl.read_text().replace("type: csv", "type: exel"))
    proc = subprocess.run(
        [sys.executable, "-m", "cycles.cli", "run", str(decl), "--period", "2026-10"],
        capture_output=True, text=True, cwd=decl.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{decl}:15: connectors.crm.type: unknown connector type 'exel'" in proc.stderr


def test_env_substitution(decl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADAR_TEST_DATA_DIR", "data")
    decl.write_text(
        decl.read_text().replace("path: data/rate.csv", "path: ${RADAR_TEST_DATA_DIR}/rate.csv")
    )
    outcome = load_yaml(decl)
    assert str(outcome.connectors["crm"].path) == "data/rate.csv"
    decl.write_text(
        decl.read_text().replace("title: Customers refer us", "title: costs $${NOT_EXPANDED}")
    )
    assert load_yaml(decl).title == "costs ${NOT_EXPANDED}"


def test_env_values_that_name_things_are_shown_the_rest_are_secrets(
    decl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome, an approach, the result metric and a metric's connector key the history and
    the flow runs: read from the environment, they must not come out as ***."""
    from cycles import secrets

    names = {"RADAR_T_OUTCOME": "refer-staging", "RADAR_T_APPROACH": "incentive-staging",
             "RADAR_T_METRIC": "rate", "RADAR_T_CONNECTOR": "crm", "RADAR_T_TITLE": "refer us now"}  # fmt: skip
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    text = decl.read_text()
    for literal, name in [
        ("outcome: refer", "outcome: ${RADAR_T_OUTCOME}"),
        ("name: incentive", "name: ${RADAR_T_APPROACH}"),
        ("metric: rate", "metric: ${RADAR_T_METRIC}"),
        ("connector: crm", "connector: ${RADAR_T_CONNECTOR}"),
        ("title: Customers refer us", "title: ${RADAR_T_TITLE}"),
    ]:
        assert literal in text, literal
        text = text.replace(literal, name, 1)
    decl.write_text(text)
    outcome = load_yaml(decl)
    assert outcome.outcome == "refer-staging"
    assert outcome.approaches[0].name == "incentive-staging"
    assert secrets.redact("refer-staging/2026-10 incentive-staging rate crm") == (
        "refer-staging/2026-10 incentive-staging rate crm"
    )
    assert outcome.title == "refer us now"
    assert secrets.redact(f"title: {outcome.title}") == "title: ***"


def test_python_form_builds_the_same_model(decl: Path) -> None:
    from_yaml = load_yaml(decl)
    py = decl.with_suffix(".py")
    py.write_text(
        "from cycles.declaration import Outcome\n"
        "outcome = Outcome(\n"
        "    outcome='refer', title='Customers refer us', cadence='monthly',\n"
        "    result={'metric': 'rate', 'target': 0.3, 'direction': 'increase'},\n"
        "    metrics={'rate': {'connector': 'crm', 'period': 'day', 'value': 'rate'}},\n"
        "    connectors={'crm': {'type': 'csv', 'path': 'data/rate.csv'}},\n"
        "    checks={'rate': [\n"
        "        {'expect_column_values_to_not_be_null': {'column': 'rate'}},\n"
        "        {'expect_column_values_to_be_between': {'column': 'rate', 'min_value': 0, 'max_value': 1}},\n"
        "    ]},\n"
        "    approaches=[\n"
        "        {'name': 'incentive', 'params': {'usd': 20}, 'adjust': {'usd': {'step': 10, 'max': 40}}},\n"
        "        {'name': 'nudge', 'params': {'asks': 2}},\n"
        "    ],\n"
        "    policy={'sustain': 3, 'baseline_periods': 12, 'max_adjustments': 3},\n"
        ")\n"
    )
    [from_python] = load_python(py)
    assert from_python.model_dump() == from_yaml.model_dump()
    assert from_python.base_dir == from_yaml.base_dir
    assert load(py).outcome == "refer"


def test_python_form_error_names_file_and_line(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    py = decl.parent / "bad.py"
    py.write_text(
        "from cycles.declaration import Outcome\n\n"
        "outcome = Outcome(outcome='x', title='t', cadence='daily', result={'metric': 'm', 'target': 1},\n"
        "                  metrics={}, approaches=[])\n"
    )
    assert main(["validate", str(py)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"radar: {py}:3: cadence: ") and err.count("\n") == 1, err


def test_declaration_found_by_name(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "refer"]) == 0  # in the working directory
    assert "ok" in capsys.readouterr().out
    assert main(["validate", "no-such-outcome"]) == 2
    assert (
        "no declaration file or declared outcome named 'no-such-outcome'" in capsys.readouterr().err
    )


def test_every_bundled_declaration_is_valid() -> None:
    from cycles.declaration.loader import declaration_files
    from cycles.engine import preflight

    found = declaration_files(ROOT / "flows")
    assert found, "flows/ holds no declarations"
    for path in found:
        preflight(load(path))


def test_line_of_nested_keys(decl: Path) -> None:
    outcome = load_yaml(decl)
    text = decl.read_text().splitlines()
    line = outcome.line_of(("connectors", "crm", "path"))
    assert line is not None and "path: data/rate.csv" in text[line - 1]
    with pytest.raises(DeclarationError):
        load(decl.parent / "nope.yaml")


def test_yaml_merge_keys_are_read(decl: Path) -> None:
    text = decl.read_text()
    text = text.replace("params: {usd: 20}", "params: &base {usd: 20}")
    decl.write_text(text.replace("params: {asks: 2}", "params: {<<: *base, asks: 2}"))
    outcome = load_yaml(decl)
    assert outcome.approaches[1].params == {"asks": 2, "usd": 20}
    line = outcome.line_of(("approaches", 1, "params", "usd"))  # merged: the mapping's line
    assert line is not None and "<<: *base" in decl.read_text().splitlines()[line - 1]


def test_deep_nesting_is_one_declaration_error(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested = "{a: " * 1500 + "x" + "}" * 1500
    decl.write_text(decl.read_text().replace("title: Customers refer us", f"title: {nested}"))
    for argv in (["validate", str(decl)], ["run", str(decl), "--period", "2026-10"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert err.startswith(f"radar: {decl}: YAML nested too deeply"), err
