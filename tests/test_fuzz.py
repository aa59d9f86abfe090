"""Hypothesis drives `radar validate` and `radar run` with generated declarations and data files.

Every example either runs (exit 0; with `--json`, one strict JSON object with the contract keys)
or stops with ONE line on stderr and nothing on stdout: exit 2 for a bad declaration or argument,
exit 1 only for a fault of a source or sink the declaration cannot be blamed for (a
`connector '...'`, `metric '...'` or `deployment failed` line: an unreachable source, a file
that is not what its type says, dates that are not dates). Never a traceback, never an internal
error (`... (run with --debug for the traceback)`), never warnings on the terminal. Text among
numbers is a failed check and a `hold` (exit 0), not an error.

Product bugs found this way are explicit `@example`s of `test_regressions`: while a bug is open,
its example is marked `.xfail` (use `bug(name, case)`; strict: hypothesis fails the test once
such an example passes), and generated examples showing exactly its signature (KNOWN_BUGS) count
as hypothesis events instead of failures, so the search goes on looking for new ones. When a bug
is fixed: drop its KNOWN_BUGS entry and make its example a plain `regression(case)`.
RADAR_FUZZ_EXAMPLES=500 searches deeper.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from cycles import cli, secrets
from cycles.cli import main
from cycles.periods import Cadence, Period

CONTRACT_KEYS = {
    "outcome", "period", "stages", "decision", "reasons", "approach", "next_approach",
    "result_value", "target", "checks", "limits",
}  # fmt: skip
STAGES = ["result", "approach", "deployment", "assessment", "review"]
DECISIONS = {"keep", "adjust", "switch", "hold", "achieved", None}
SET_ENV = "RADAR_FUZZ_SET"  # set to a harmless value; RADAR_FUZZ_UNSET never is
CURRENT = str(Period.containing(date.today(), Cadence.monthly))
SOURCE_FAULT = re.compile(r"^radar: (connector '|metric '|deployment failed: )")  # exit 1 is ok
INTERNAL = "(run with --debug for the traceback)"
HUGE = [400, 30_000, 10**7, 2**63]  # policy numbers that once built windows of that many periods

# open product bugs: name -> (what is wrong, the pattern its violations match); none open now.
# Fixed (each kept as a regression example below): dates-out-of-range, yaml-merge-key,
# deep-nesting, csv-not-utf8, non-finite-json, validate-multiline, numpy-warnings, alias-bomb.
KNOWN_BUGS: dict[str, tuple[str, re.Pattern[str]]] = {}


# -- one example: its files, the commands, what may come out ----------------------------------------


@dataclass(frozen=True)
class Case:
    declaration: str | bytes
    data: str | bytes
    period: str = "2025-09"
    dry_run: bool = True
    strict: bool = False  # explicit examples: known bugs are not excused


@dataclass
class Ran:
    code: int
    out: str
    err: str
    warned: list[str]


QUIET = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_cli(argv: list[str]) -> Ran:
    """main(argv) in-process; stdout, stderr and warnings as a terminal would show them."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # Python's default filters, not pytest's
        warnings.simplefilter("default")
        for category in QUIET:
            warnings.filterwarnings("ignore", category=category)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    shown = [f"{w.category.__name__}: {w.message} ({Path(w.filename).name})" for w in caught]
    return Ran(code, out.getvalue(), err.getvalue(), shown)


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"stdout is not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def is_new_history_notice(line: str) -> bool:
    return line.startswith("radar: started a new history in ")


def ended_cleanly(label: str, ran: Ran) -> list[str]:
    """What is wrong with how one command ended (nothing: [])."""
    problems = [f"warning on stderr: {w}" for w in ran.warned]
    if "Traceback" in ran.err:
        problems.append(f"{label}: a traceback on stderr: {ran.err[-600:]}")
    if ran.code == 0:
        # the one thing a success may say on stderr: that it started a new history
        said = [line for line in ran.err.splitlines() if not is_new_history_notice(line)]
        return problems + ([f"{label}: exit 0 but stderr says {ran.err!r}"] if said else [])
    lines = ran.err.splitlines()
    first = lines[0] if lines else ""
    if ran.code not in (1, 2):
        problems.append(f"{label}: exit {ran.code}: {ran.err!r}")
    if len(lines) != 1:
        problems.append(f"{label}: exit {ran.code} with {len(lines)} lines on stderr: {ran.err!r}")
    if ran.out:
        problems.append(f"{label}: exit {ran.code} but stdout holds {ran.out[:200]!r}")
    if not first.startswith("radar: "):
        problems.append(f"{label}: stderr is not one 'radar: ...' line: {ran.err!r}")
    if INTERNAL in ran.err:
        problems.append(f"{label}: internal error, exit {ran.code}: {first}")
    elif ran.code == 1 and not SOURCE_FAULT.match(first):
        problems.append(f"{label}: exit 1 for something that is not a source fault: {first}")
    return problems


def contract_problems(data: Any, label: str) -> list[str]:
    """The DESIGN.md `--json` object: its keys and the kinds of their values."""
    if not isinstance(data, dict) or CONTRACT_KEYS - set(data):
        return [f"{label}: not an object with {sorted(CONTRACT_KEYS)}: {str(data)[:300]}"]
    number = (int, float, type(None))
    ok = {
        "outcome": isinstance(data["outcome"], str)
        and re.fullmatch(r"[a-z0-9_-]+", data["outcome"]),
        "period": isinstance(data["period"], str)
        and re.fullmatch(r"\d{4}-(\d\d|W\d\d|Q[1-4])", data["period"]),
        "stages": isinstance(data["stages"], list)
        and data["stages"] == [s for s in STAGES if s in data["stages"]],
        "decision": data["decision"] in DECISIONS,
        "reasons": isinstance(data["reasons"], list)
        and all(isinstance(r, str) for r in data["reasons"]),
        "approach": data["approach"] is None or {"name", "params"} <= set(data["approach"]),
        "next_approach": data["next_approach"] is None
        or {"name", "params"} <= set(data["next_approach"]),
        "result_value": isinstance(data["result_value"], number),
        "target": isinstance(data["target"], number),
        "checks": isinstance(data["checks"], dict)
        and all(isinstance(data["checks"].get(k), int) for k in ("passed", "failed")),
        "limits": data["limits"] is None or {"centre", "lower", "upper"} <= set(data["limits"]),
    }
    return [f"{label}: {key} is {data[key]!r}" for key, good in ok.items() if not good]


def violations(case: Case) -> list[str]:
    """validate, run (and history after a recorded run) on the case's files: what went wrong."""
    with tempfile.TemporaryDirectory(prefix="radar-fuzz-") as tmp, _isolated(Path(tmp)) as root:
        (root / "data").mkdir()
        data = case.data.encode() if isinstance(case.data, str) else case.data
        (root / "data" / "rate.csv").write_bytes(data)
        decl = root / "refer.yaml"
        text = case.declaration
        decl.write_bytes(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
        checked = run_cli(["validate", str(decl)])
        argv = ["run", str(decl), "--period", case.period, "--json"]
        ran = run_cli([*argv, "--dry-run"] if case.dry_run else argv)
        event(f"validate {checked.code}, run {ran.code}")
        if ran.code:
            event("run ended with: " + _shape(ran.err))
        problems = ended_cleanly("validate", checked) + ended_cleanly("run", ran)
        if checked.code == 2 and ran.code != 2:
            problems.append(f"validate said {checked.err!r}, run ended {ran.code}: {ran.err!r}")
        if checked.code == 0 and ran.code == 2 and "--period" not in ran.err:
            event("a declaration error only run finds: " + _shape(ran.err))
        if ran.code == 0:
            try:
                record = strict_json(ran.out)
            except ValueError as exc:
                return [*problems, str(exc)]
            problems += contract_problems(record, "run --json")
            if not case.dry_run and not problems:
                problems += _in_history(record)
        return problems


def _in_history(record: dict[str, Any]) -> list[str]:
    shown = run_cli(["history", record["outcome"], "--json"])
    problems = ended_cleanly("history", shown)
    if shown.code == 0:
        try:
            cycles = strict_json(shown.out)
        except ValueError as exc:
            return [*problems, f"history: {exc}"]
        if record["period"] not in [c.get("period") for c in cycles]:
            problems.append(f"history --json lacks {record['period']}: {shown.out[:300]}")
        problems += [p for c in cycles for p in contract_problems(c, "history --json")]
    return problems


def _shape(err: str) -> str:
    """An error line without its file, numbers and quoted values: groups the events."""
    line = (err.strip().splitlines() or [""])[0]
    line = re.sub(r"'[^']*'", "'…'", re.sub(r"/\S+?\.yaml:\d+: ", "", line))
    return re.sub(r"\d+", "N", line)[:90]


@contextlib.contextmanager
def _isolated(root: Path) -> Iterator[Path]:
    """The example's own history database; --debug/--verbose and secrets do not carry over."""
    saved, flags = os.environ.get("RADAR_DATABASE_URL"), dict(cli._FLAGS)
    os.environ["RADAR_DATABASE_URL"] = f"sqlite:///{root / 'history.db'}"
    try:
        yield root
    finally:
        cli._FLAGS.update(flags)
        secrets.forget_all()
        if saved is None:
            os.environ.pop("RADAR_DATABASE_URL", None)
        else:
            os.environ["RADAR_DATABASE_URL"] = saved


def assert_clean(case: Case) -> None:
    found = violations(case)
    if not case.strict:
        known = {n for n, (_, pattern) in KNOWN_BUGS.items() for v in found if pattern.search(v)}
        for name in known:
            event(f"known bug: {name}")
        found = [v for v in found if not any(KNOWN_BUGS[n][1].search(v) for n in known)]
    assert not found, "\n".join(found)


# -- the base declaration (tests/conftest.py's DECLARATION, as data) and its data -----------------


def base_document() -> dict[str, Any]:
    return {
        "outcome": "refer",
        "title": "Customers refer us",
        "cadence": "monthly",
        "result": {"metric": "rate", "target": 0.3, "direction": "increase"},
        "metrics": {"rate": {"connector": "crm", "period": "day", "value": "rate"}},
        "connectors": {"crm": {"type": "csv", "path": "data/rate.csv"}},
        "checks": {
            "rate": [
                {"expect_column_values_to_not_be_null": {"column": "rate"}},
                {"expect_column_values_to_be_between": {"column": "rate", "min_value": 0, "max_value": 1}},
            ]
        },
        "approaches": [
            {
                "name": "incentive",
                "params": {"usd": 20},
                "adjust": {"usd": {"step": 10, "max": 40}},
                "actions": [
                    {"name": "export", "type": "file", "path": "exports/{period}.json",
                     "rows": [{"period": "{period}", "usd": "{params.usd}"}]},
                ],
            },
            {"name": "nudge", "params": {"asks": 2}},
        ],
        "policy": {"sustain": 3, "baseline_periods": 12, "max_adjustments": 3},
    }  # fmt: skip


def dump(document: Any) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 1_000_000  # no folded lines: text damage works on whole lines
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


HEADER = ["day", "region", "rate", "asked", "referred"]


def valid_rows(months: int = 22) -> list[list[str]]:
    """Two rows a month from 2024-03, rates near 0.18."""
    rows, first = [], Period.parse("2024-03", Cadence.monthly)
    for i in range(months):
        start = (first + i).start
        for k, day in enumerate((3, 17)):
            rate = 0.18 + 0.003 * ((i * 5 + k) % 3 - 1)
            day_text = (start + timedelta(days=day - 1)).isoformat()
            rows.append([day_text, f"r{k}", f"{rate:.4f}", "1000", str(round(rate * 1000))])
    return rows


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def with_rates(rate: str, other: str | None = None) -> str:
    """Every rate `rate` (the second row of each month `other`, if given)."""
    rows = [[d, r, rate if r == "r0" else other or rate, a, n] for d, r, _, a, n in valid_rows()]
    return csv_text(HEADER, rows)


VALID_CSV = csv_text(HEADER, valid_rows())
BASE_YAML = dump(base_document())


def words(text: str) -> list[str]:
    return text.split()


# -- strategies: values ---------------------------------------------------------------------------

ENV = "${" + SET_ENV + "}"
identifiers = st.one_of(
    st.sampled_from(["refer", "rate", "crm", "a", "A", "re fer", "refer!", "ré", "-", "_", "0",
                     "x" * 300, "", "über_rate", ENV]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-. /ÄÉ€\n\t", max_size=12),
)  # fmt: skip
env_refs = st.sampled_from(
    ["${RADAR_FUZZ_UNSET}", ENV, "$${RADAR_FUZZ_UNSET}", "${", "${1BAD}", "${}", "$RADAR_FUZZ_UNSET",
     f"pre-{ENV}-post"]
)  # fmt: skip
long_strings = st.sampled_from(["x" * 5_000, "é" * 2_000, "🙂" * 1_000, "a\nb" * 500])
durations = st.one_of(
    st.sampled_from(words("P14D PT0S P0D -P1D P P1Y PT2S P99999999D P1M 1e9 P14DT xP1D")),
    st.sampled_from(["14 days", "1 day, 0:00:00"]),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
)
columns = st.one_of(
    st.sampled_from([*HEADER, "missing", "Rate", "", " rate", "rate "]), identifiers
)
numbers = st.one_of(
    st.integers(-5, 50),
    st.sampled_from([0, -1, 2**31, 2**63, 10**400, 1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
)
weird = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    long_strings,
    env_refs,
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
)


# -- strategies: the declaration, changed and damaged -----------------------------------------------

Draw = Callable[..., Any]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list index in the document, depth first."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return []
    found = []
    for key, value in items:
        found += [(*prefix, key), *_paths(value, (*prefix, key))]
    return found


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set `path`, making mappings on the way (where a list runs short, change nothing)."""
    node = document
    for part in path[:-1]:
        if isinstance(node, list) and not (isinstance(part, int) and part < len(node)):
            return
        nxt = node[part] if isinstance(node, list) else node.get(part)
        if not isinstance(nxt, dict | list):
            nxt = node[part] = {}
        node = nxt
    if isinstance(node, dict) or (isinstance(node, list) and path[-1] < len(node)):
        node[path[-1]] = value


def drop_key(draw: Draw, doc: dict[str, Any]) -> None:
    path = draw(st.sampled_from(_paths(doc)))
    del _get(doc, path[:-1])[path[-1]]


def retype(draw: Draw, doc: dict[str, Any]) -> None:
    path = draw(st.sampled_from(_paths(doc)))
    _get(doc, path[:-1])[path[-1]] = draw(weird)


def add_unknown_key(draw: Draw, doc: dict[str, Any]) -> None:
    mappings = [(), *(p for p in _paths(doc) if isinstance(_get(doc, p), dict))]
    key = draw(st.one_of(identifiers, st.integers(), st.sampled_from(words("metric titel polcy"))))
    _get(doc, draw(st.sampled_from(mappings)))[key] = draw(weird)


def env_reference(draw: Draw, doc: dict[str, Any]) -> None:
    path = draw(st.sampled_from([p for p in _paths(doc) if isinstance(_get(doc, p), str)]))
    text, ref = _get(doc, path), draw(env_refs)
    _get(doc, path[:-1])[path[-1]] = draw(st.sampled_from([ref, text + ref, ref + text]))


EXPECTATIONS = words("""expect_column_values_to_not_be_null expect_column_values_to_be_null
expect_column_values_to_be_between expect_column_values_to_be_in_set
expect_column_values_to_not_be_in_set expect_column_values_to_be_unique
expect_column_values_to_match_regex expect_table_row_count_to_be_between
expect_column_mean_to_be_between expect_column_min_to_be_between expect_column_max_to_be_between
expect_column_to_exist expect_column_values_to_not_be_nul ExpectColumnToExist expect_nothing
expect_column_median_to_be_between""")


def expectation(draw: Draw, doc: dict[str, Any]) -> None:
    name = draw(st.one_of(st.sampled_from(EXPECTATIONS), identifiers))
    kwargs = draw(
        st.fixed_dictionaries(
            {"column": columns},
            optional={
                "min_value": numbers, "max_value": numbers, "mostly": numbers,
                "value_set": st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3),
                "regex": st.sampled_from(["[", "^r\\d$", "(?s).*", "(", "\\"]),
                "strict_min": weird, "not_an_argument": weird,
            },
        )
    )  # fmt: skip
    item = draw(
        st.sampled_from(
            [{name: kwargs}, {name: None}, name, [name, kwargs], {name: kwargs, "x": 1}]
        )
    )
    checks = doc.setdefault("checks", {})
    if isinstance(checks, dict):
        metric = draw(
            st.sampled_from(["rate", "rates", *(k for k in checks if isinstance(k, str))])
        )
        existing = checks.get(metric)
        checks[metric] = [*existing, item] if isinstance(existing, list) else [item]


CONNECTORS = [
    {"type": "csv", "path": "data/missing.csv"}, {"type": "csv", "path": "data"},
    {"type": "csv", "path": "refer.yaml"}, {"type": "csv", "path": "/dev/null"},
    {"type": "csv", "path": "${RADAR_FUZZ_UNSET}/rate.csv"}, {"type": "csv", "path": "data/rate.csv", "sep": ";"},
    {"type": "parquet", "path": "data/rate.csv"}, {"type": "sql", "url": "sqlite:///data/missing.db"},
    {"type": "sql", "url": "sqlite:///data/rate.csv"}, {"type": "sql", "url": "not a url"},
    {"type": "http", "base_url": "http://127.0.0.1:9", "retries": 0}, {"type": "http", "base_url": "ftp://x"},
    {"type": "exel", "path": "data/rate.csv"}, {"path": "data/rate.csv"}, {"type": None},
]  # fmt: skip
QUERIES = [
    {}, {"filter": {"region": "r1"}}, {"filter": {"region": ["r0", None]}}, {"filter": {"nope": 1}},
    {"table": "t"}, {"sql": "SELECT day, rate FROM t WHERE day >= :start"}, {"path": "/x"},
    {"sql": "SELECT :other"}, {"unknown": 1},
]  # fmt: skip


def connector(draw: Draw, doc: dict[str, Any]) -> None:
    doc["connectors"] = {"crm": draw(st.sampled_from(CONNECTORS))}
    _set(doc, ("metrics", "rate", "query"), draw(st.sampled_from(QUERIES)))


def metric_columns(draw: Draw, doc: dict[str, Any]) -> None:
    optional = {
        "value": columns,
        "numerator": columns,
        "denominator": columns,
        "query": st.just({}),
    }
    required = {"connector": st.sampled_from(["crm", "crm2"]), "period": columns}
    _set(doc, ("metrics", "rate"), draw(st.fixed_dictionaries(required, optional=optional)))


def policy(draw: Draw, doc: dict[str, Any]) -> None:
    key = draw(
        st.sampled_from(words("sustain baseline_periods max_adjustments sign_off sign_off_timeout"))
    )
    if key == "sign_off":
        value = draw(
            st.lists(st.sampled_from(words("keep adjust switch hold achieved maybe")), max_size=3)
        )
    elif key == "sign_off_timeout":
        value = draw(durations)
    else:
        value = draw(st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, *HUGE])))
    _set(doc, ("policy", key), value)


SCALARS = [
    (("cadence",), st.sampled_from(["weekly", "quarterly", "daily", "Monthly", "", "monthly "])),
    (("result", "direction"), st.sampled_from(["decrease", "up", "Increase", "", None])),
    (("result", "target"), st.one_of(numbers, st.sampled_from(["30%", "0.3", "high"]))),
    (("result", "metric"), identifiers),
    (("outcome",), identifiers),
    (("title",), st.one_of(st.text(max_size=30), long_strings)),
    (("timezone",), st.sampled_from([*words("UTC Europe/Paris Etc/GMT+12 Mars/Olympus utc ../etc/passwd"), ""])),
    (("review",), st.fixed_dictionaries({}, optional={"after_event": identifiers, "delay": durations})),
    (("schedule",), st.fixed_dictionaries({}, optional={"cron": st.sampled_from(["0 6 1 * *", "* * * * * *", "nope", ""]), "active": weird})),
]  # fmt: skip


def scalars(draw: Draw, doc: dict[str, Any]) -> None:
    path, values = draw(st.sampled_from(SCALARS))
    _set(doc, path, draw(values))


ACTIONS = [
    {"name": "ask", "type": "webhook", "url": "http://127.0.0.1:9/{period}", "retries": 0},
    {"name": "ask", "type": "webhook", "url": "crm.local/hook"},
    {"name": "ask", "type": "python", "callable": "nowhere:nothing"},
    {"name": "ask", "type": "python", "callable": "not a callable"},
    {"name": "ask", "type": "file", "path": "out/{params.dollars}.csv"},
    {"name": "ask", "type": "file", "path": "/dev/null/x.csv", "rows": [{"a": 1}]},
    {"name": "ask", "type": "carrier-pigeon"}, {"name": "export", "type": "file", "path": "again.csv"},
    {"name": "bad name!", "type": "file", "path": "x.csv"}, {"type": "file", "path": "x.csv"},
]  # fmt: skip


def approaches(draw: Draw, doc: dict[str, Any]) -> None:
    change = draw(st.sampled_from(words("params adjust action duplicate empty")))
    listed = doc.get("approaches")
    first = (
        listed[0] if isinstance(listed, list) and listed and isinstance(listed[0], dict) else None
    )
    if change == "params":
        _set(doc, ("approaches", 0, "params"), {"usd": draw(weird)})
    elif change == "adjust":
        bounds = st.fixed_dictionaries(
            {}, optional={"step": numbers, "max": numbers, "min": numbers}
        )
        _set(
            doc,
            ("approaches", 0, "adjust"),
            {draw(st.sampled_from(["usd", "dollars"])): draw(bounds)},
        )
    elif change == "action" and first is not None:
        actions = first.get("actions")
        action = draw(st.sampled_from(ACTIONS))
        first["actions"] = [*actions, action] if isinstance(actions, list) else [action]
    elif change == "duplicate" and first is not None:
        listed.append(copy.deepcopy(first))
    elif change == "empty":
        doc["approaches"] = []


BREAKAGES = [drop_key, retype, add_unknown_key, env_reference, expectation, connector,
             metric_columns, policy, scalars, approaches]  # fmt: skip

VALID_CHECKS = [
    {"expect_column_values_to_be_in_set": {"column": "region", "value_set": ["r0", "r1"]}},
    {"expect_table_row_count_to_be_between": {"min_value": 1}},
    {"expect_column_mean_to_be_between": {"column": "rate", "min_value": 0, "max_value": 1}},
    {"expect_column_values_to_match_regex": {"column": "region", "regex": "^r\\d$"}},
    {"expect_column_values_to_be_unique": {"column": "day"}},
    {"expect_column_to_exist": {"column": "asked"}},
    {"expect_column_values_to_not_be_null": {"column": "rate", "mostly": 0.5}},
]
VARIATIONS = [  # changes that keep the declaration valid: runs that reach every stage
    (("cadence",), st.sampled_from(["weekly", "quarterly"])),
    (("result", "direction"), st.just("decrease")),
    (("result", "target"), st.floats(0, 1)),
    (("policy", "sustain"), st.integers(1, 6)),
    (("policy", "baseline_periods"), st.integers(1, 24)),
    (("policy", "max_adjustments"), st.integers(1, 5)),
    (("policy", "sign_off"), st.just(["adjust"])),
    (("timezone",), st.sampled_from(words("Europe/Paris Pacific/Kiritimati America/St_Johns Etc/GMT+12"))),
    (("metrics", "rate"), st.just({"connector": "crm", "period": "day", "numerator": "referred", "denominator": "asked"})),
    (("metrics", "rate", "query"), st.sampled_from([{"filter": {"region": "r0"}}, {"filter": {"region": ["r0", "r1"]}}])),
    (("metrics", "asked"), st.just({"connector": "crm", "period": "day", "value": "asked"})),
    (("checks", "rate"), st.lists(st.sampled_from(VALID_CHECKS), min_size=1, max_size=3)),
    (("review",), st.just({"after_event": "campaign.ended", "delay": "P14D"})),
    (("schedule",), st.just({"cron": "0 6 1 * *"})),
    (("approaches", 0, "adjust"), st.just({"usd": {"step": 5, "min": 0}})),
    (("approaches", 0, "params", "channel"), st.sampled_from(["email", "ümlaut ✓", ENV])),
]  # fmt: skip


def variation(draw: Draw, doc: dict[str, Any]) -> None:
    path, values = draw(st.sampled_from(VARIATIONS))
    _set(doc, path, draw(values))


def nested(depth: int) -> str:
    return "{a: " * depth + "x" + "}" * depth


@st.composite
def damaged(draw: Draw, text: str) -> str | bytes:
    """YAML-level damage: tabs, brackets, duplicate keys, cuts, odd characters and encodings."""
    lines = text.splitlines(keepends=True)
    at = draw(st.integers(0, max(len(lines) - 1, 0)))
    kind = draw(
        st.sampled_from(words("tab bracket duplicate cut insert bom bytes nul anchor nest replace"))
    )
    if kind == "tab":
        lines[at] = "\t" + lines[at].lstrip(" ")
    elif kind == "bracket":
        lines[at] = (
            lines[at].rstrip("\n")
            + draw(st.sampled_from([" [", " {", " ]", " }", ' "', " '", ": :"]))
            + "\n"
        )
    elif kind == "duplicate":
        lines.insert(at, lines[at])
    elif kind == "nul":
        lines[at] = lines[at].replace(":", ":\x00", 1)
    elif kind == "cut":
        return text[: draw(st.integers(0, len(text)))]
    elif kind == "insert":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.text(min_size=1, max_size=8)) + text[at:]
    elif kind == "bom":
        return "\ufeff" + text
    elif kind == "bytes":
        raw = text.encode()
        at = draw(st.integers(0, len(raw)))
        return (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"]))
            + raw[at:]
        )
    elif kind == "anchor":
        return text.replace("policy:\n", "policy: &p\n", 1) + "review:\n  <<: *p\n"
    elif kind == "nest":  # ~300 levels exhaust ruamel's recursion (limit 1000); hypothesis runs
        depth = draw(st.sampled_from([1, 10, 100, 1500]))  # tests with ~2000, hence 1500
        return text.replace("title: ", "title: " + nested(depth) + " #", 1)
    else:
        return draw(
            st.sampled_from(["", "~", "42", "- a\n- b\n", "outcome: [", "{}", "outcome: refer\n"])
        )
    return "".join(lines)


@st.composite
def declarations(draw: Draw) -> str | bytes:
    doc = base_document()
    for _ in range(draw(st.integers(0, 2))):
        variation(draw, doc)
    for _ in range(draw(st.integers(0, 2))):
        draw(st.sampled_from(BREAKAGES))(draw, doc)
    text = dump(doc)
    return draw(damaged(text)) if draw(st.integers(0, 4)) == 0 else text


# -- strategies: data files and periods --------------------------------------------------------------

day_cells = st.one_of(
    st.dates(min_value=date(2023, 1, 1), max_value=date(2026, 12, 31)).map(date.isoformat),
    st.sampled_from(
        [*words("not-a-date 2025-02-30 0001-01-01 9999-12-31 2025-09-03T10:00:00+02:00 NaT 1"),
         *words("2025-09-03T10:00:00Z 20250903 03/09/2025 2025-09"), "", "2025-09-03 10:00"]
    ),
)  # fmt: skip
number_cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 1).map(lambda x: f"{x:.4f}"),
    st.sampled_from(
        [*words("NaN nan inf -inf Infinity 1e308 -1e308 1e-320 -0 abc 1,5 0x10 true ∞"), "",
         " 0.2 ", "1" * 40]
    ),
    st.integers(-(10**20), 10**20).map(str),
)  # fmt: skip


@st.composite
def data_files(draw: Draw) -> str | bytes:
    kind = draw(
        st.sampled_from(words("valid cells cells cells header rows empty header-only bytes"))
    )
    header, rows = list(HEADER), valid_rows()
    if kind == "valid":
        return csv_text(header, rows)
    if kind in ("empty", "header-only"):
        return "" if kind == "empty" else csv_text(header, [])
    if kind == "bytes":
        raw = csv_text(header, rows).encode()
        at = draw(st.integers(0, len(raw)))
        return (
            raw[:at]
            + draw(st.sampled_from([b"\xff\xfe", b"\x00", b"\xef\xbb\xbf", b'"', b"\r"]))
            + raw[at:]
        )
    if kind == "header":  # columns missing, doubled, unknown
        header = draw(st.lists(st.sampled_from([*HEADER, "extra", "", "rate"]), max_size=7))
        return csv_text(header, [r[: len(header)] + ["x"] * (len(header) - len(r)) for r in rows])
    if kind == "rows":  # only some rows, maybe one of them ragged
        keep = draw(st.lists(st.integers(0, len(rows) - 1), max_size=len(rows), unique=True))
        rows = [rows[i] for i in sorted(keep)]
        if rows and draw(st.booleans()):
            rows[draw(st.integers(0, len(rows) - 1))] = draw(
                st.lists(st.text(max_size=4), max_size=7)
            )
        return csv_text(header, rows)
    for _ in range(draw(st.integers(1, 8))):  # cells: odd values here and there
        i, column = draw(st.integers(0, len(rows) - 1)), draw(st.sampled_from([0, 2, 2, 3, 4]))
        rows[i][column] = draw(day_cells if column == 0 else number_cells)
    if draw(st.booleans()):  # or a whole column odd (every rate inf)
        column = draw(st.sampled_from([0, 2]))
        value = draw(day_cells if column == 0 else number_cells)
        for row in rows:
            row[column] = value
    return csv_text(header, rows)


MONTHS = ["2025-09", "2025-10", "2025-12", "2026-01", CURRENT, "2024-03", "2023-01"]
periods = st.one_of(
    st.sampled_from(MONTHS),
    st.sampled_from([*MONTHS, "2025-W36", "2025-W01", "2025-Q3", "2026-Q1"]),
    st.sampled_from(
        [*words("2025-13 2025-00 2025-9 0000-01 0001-01 9999-12 2025-W54 2025-Q5 garbage -1"),
         "２０２５-０９", "", " 2025-09 "]
    ),
    st.text(max_size=10).filter(lambda t: t not in ("--debug", "--verbose")),
)  # fmt: skip
dry_runs = st.sampled_from([True, True, False])  # a third record their cycle in the history


# -- the properties ---------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=int(os.environ.get("RADAR_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


@pytest.fixture
def fuzz_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Prefect API (the CLI runs the engine in-process), a harmless ${RADAR_FUZZ_SET}."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    monkeypatch.delenv("RADAR_FUZZ_UNSET", raising=False)
    monkeypatch.setenv(SET_ENV, "fuzz-value")
    monkeypatch.setenv("COLUMNS", "200")


@given(declaration=declarations(), period=periods, dry_run=dry_runs)
@example(declaration=BASE_YAML, period="2025-09", dry_run=True)
@example(declaration=BASE_YAML, period=CURRENT, dry_run=False)
@FUZZ
def test_generated_declarations_run_or_fail_with_one_line(
    fuzz_env: None, declaration: str | bytes, period: str, dry_run: bool
) -> None:
    assert_clean(Case(declaration, VALID_CSV, period, dry_run))


@given(data=data_files(), period=periods, dry_run=dry_runs)
@example(data=VALID_CSV, period="2025-09", dry_run=False)
@example(data=with_rates("abc"), period="2025-09", dry_run=True)  # text among numbers: a hold
@FUZZ
def test_generated_data_runs_or_fails_with_one_line(
    fuzz_env: None, data: str | bytes, period: str, dry_run: bool
) -> None:
    assert_clean(Case(BASE_YAML, data, period, dry_run))


# -- the product bugs found, as explicit examples (minimal reproductions) ---------------------------


def _yaml(old: str, new: str) -> str:
    assert old in BASE_YAML
    return BASE_YAML.replace(old, new, 1)


def bug(name: str, case: Case) -> Any:
    """The example of an open product bug (see the module's docstring)."""
    return example(case=case).xfail(
        raises=AssertionError, reason=f"product bug {name}: {KNOWN_BUGS[name][0]}"
    )


ALIAS_BOMB = "laughs: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def regression(case: Case) -> Any:
    """The example of a fixed product bug: it must stay fixed."""
    return example(case=case)


@given(case=st.just(Case(BASE_YAML, VALID_CSV)))  # never drawn: only the explicit examples run
# dates-out-of-range: a usage error naming --period, a declaration error for the policy
@regression(Case(BASE_YAML, VALID_CSV, "0001-01", strict=True))
@regression(Case(BASE_YAML, VALID_CSV, "9999-12", strict=True))
@regression(Case(_yaml("baseline_periods: 12", "baseline_periods: 30000"), VALID_CSV, strict=True))
@regression(Case(_yaml("sustain: 3", f"sustain: {2**63}"), VALID_CSV, strict=True))
# yaml-merge-key: merged keys are read (review: does not take the policy's keys: exit 2)
@regression(
    Case(_yaml("policy:\n", "policy: &p\n") + "review:\n  <<: *p\n", VALID_CSV, strict=True)
)
# deep-nesting: one declaration error naming the file
@regression(Case(_yaml("title: ", "title: " + nested(1500) + " #"), VALID_CSV, strict=True))
# alias-bomb: aliases of aliases ("billion laughs") stop with one line instead of expanding 9^9
@regression(Case(BASE_YAML + ALIAS_BOMB, VALID_CSV, strict=True))
# non-finite-json: a non-finite target or parameter is a declaration error, inf in data a hold
@regression(Case(_yaml("target: 0.3", "target: .nan"), VALID_CSV, strict=True))
@regression(Case(_yaml("asks: 2", "asks: .inf"), VALID_CSV, strict=True))
@regression(Case(BASE_YAML, with_rates("inf"), strict=True))
@regression(Case(BASE_YAML, with_rates("inf"), dry_run=False, strict=True))
# validate-multiline: errors holding a line break (a NUL byte, a key with a newline)
@regression(Case(_yaml("title: Customers", "title: Cust\x00omers"), VALID_CSV, strict=True))
@regression(Case(BASE_YAML + '"ti\\ntle": x\n', VALID_CSV, strict=True))
# csv-not-utf8: a `connector '...': cannot read` line
@regression(Case(BASE_YAML, b"\xff" + VALID_CSV.encode(), strict=True))
@regression(Case(BASE_YAML, b"\xff\xfe" + VALID_CSV.encode("utf-16-le"), strict=True))
# numpy-warnings: no RuntimeWarning for inf and -inf in one period, or sums that overflow
@regression(Case(BASE_YAML, with_rates("inf", "-inf"), strict=True))
@regression(Case(BASE_YAML, with_rates("1e308"), strict=True))
# outcome-from-env: a name read from the environment is shown, not redacted as a secret
@regression(Case(_yaml("outcome: refer", "outcome: ${RADAR_FUZZ_SET}"), VALID_CSV, dry_run=False, strict=True))  # fmt: skip
@settings(
    phases=[Phase.explicit],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_regressions(fuzz_env: None, case: Case) -> None:
    assert_clean(case)
