"""Many outcomes at once (`cycles.batch.run_many`, `radar run-all`): worker processes, the same
decisions as `run_cycle` one after another, failures kept to their outcome, one cycle per outcome
and period, worker processes replaced as they go.

PostgreSQL history: RADAR_TEST_POSTGRES_URL (a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from cycles.batch import BatchResult, run_many
from cycles.cli import main
from cycles.declaration import load
from cycles.engine import run_cycle
from cycles.store import Store

from conftest import months, write_declaration, write_monthly_csv

BASELINE = months("2025-01", 15)
PERIOD = "2026-04"  # the 16th month: past, so every stage runs
WIGGLE = (0.0, 0.004, -0.003, 0.002, -0.004, 0.003)
SHAPES = {  # the last month's value and the decision it leads to
    "steady": 0.201,  # adjust
    "rising": 0.26,  # keep: improvement signal
    "broken": 0.20,  # hold: rows without a value, a data check fails
    "falling": 0.14,  # switch: deterioration signal
}
EXPECTED = {"steady": "adjust", "rising": "keep", "broken": "hold", "falling": "switch"}


def _outcomes(flows: Path) -> dict[str, Path]:
    paths = {}
    for name, last in SHAPES.items():
        values = {m: 0.20 + WIGGLE[i % len(WIGGLE)] for i, m in enumerate(BASELINE)}
        values[PERIOD] = last
        broken = {PERIOD: 2} if name == "broken" else None
        write_monthly_csv(flows / name / "data" / "rate.csv", values, broken=broken)
        paths[name] = write_declaration(flows / name, outcome=name)
    return paths


def _by_outcome(results: list[BatchResult]) -> dict[str, BatchResult]:
    return {r.outcome: r for r in results}


def _bad(flows: Path) -> Path:
    bad = flows / "bad" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text("outcome: bad\ntitle: no result, metrics or approaches\n")
    return bad


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    _outcomes(tmp_path / "flows")
    return tmp_path / "flows"


@pytest.fixture(
    params=["sqlite", "postgresql"] if os.environ.get("RADAR_TEST_POSTGRES_URL") else ["sqlite"]
)
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh history database (PostgreSQL: a schema of its own)."""
    import sqlalchemy as sa

    from cycles.store import normalise_url

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'batch.db'}"
        return
    name = f"radar_batch_{uuid.uuid4().hex[:8]}"
    base = sa.make_url(normalise_url(os.environ["RADAR_TEST_POSTGRES_URL"]))
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        yield base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        engine.dispose()


# -- run_many ---------------------------------------------------------------------------------


def test_decisions_match_running_each_alone(flows: Path, tmp_path: Path, history_url: str) -> None:
    results = _by_outcome(list(run_many([flows], PERIOD, workers=2, store_url=history_url)))

    alone = Store(f"sqlite:///{tmp_path / 'alone.db'}")
    expected = {}
    for name in SHAPES:
        record = run_cycle(load(flows / name / f"{name}.yaml"), PERIOD, store=alone)
        expected[name] = record.decision.value if record.decision else None
    alone.dispose()
    assert expected == EXPECTED

    assert {n: (r.ok, r.period, r.decision) for n, r in results.items()} == {
        n: (True, PERIOD, d) for n, d in expected.items()
    }
    assert 0 < len({r.worker for r in results.values()}) <= 2
    assert all(r.worker != os.getpid() for r in results.values())  # not run in this process
    store = Store(history_url)
    for name, result in results.items():
        assert result.record is not None and result.record.decision == expected[name]
        assert len(result.record.stages) == 5
        assert [c.decision.value for c in store.cycles(name) if c.decision] == [expected[name]]
    store.dispose()


def test_a_broken_declaration_does_not_stop_the_others(flows: Path, tmp_path: Path) -> None:
    bad = _bad(flows)
    (flows / "missing").mkdir()
    missing = write_declaration(flows / "missing", outcome="missing")  # its CSV does not exist
    url = f"sqlite:///{tmp_path / 'batch.db'}"

    results = _by_outcome(list(run_many([flows], PERIOD, workers=2, store_url=url)))

    assert sorted(results) == sorted([*SHAPES, "bad", "missing"])
    assert {name: results[name].decision for name in SHAPES} == EXPECTED
    for name, path in (("bad", bad), ("missing", missing)):
        failed = results[name]
        assert not failed.ok and failed.exit_code == 2 and failed.decision is None
        assert str(path) in (failed.error or "") and "\n" not in (failed.error or "")
    assert "file not found" in (results["missing"].error or "")
    assert results["bad"].period is None
    store = Store(url)
    assert store.outcomes() == sorted(SHAPES)
    store.dispose()


def test_the_same_outcome_twice_runs_one_cycle(flows: Path, tmp_path: Path) -> None:
    steady = flows / "steady" / "steady.yaml"
    twin = tmp_path / "twin" / "steady.yaml"  # another file declaring the same outcome
    shutil.copytree(steady.parent, twin.parent)
    url = f"sqlite:///{tmp_path / 'batch.db'}"

    results = list(run_many([steady, steady, twin], PERIOD, workers=2, store_url=url))

    assert len(results) == 2  # the same file twice is one item
    ran, other = sorted(results, key=lambda r: r.ok, reverse=True)
    assert (ran.source, ran.decision) == (str(steady), "adjust")
    assert (other.source, other.exit_code, other.worker) == (str(twin), 2, 0)  # never sent
    assert f"'steady' is also declared in {steady}" in (other.error or "")
    store = Store(url)
    cycles = store.cycles("steady")
    assert [c.period for c in cycles] == [PERIOD]
    assert len(cycles[0].stage_runs) == 5  # no stage ran twice
    store.dispose()


def test_loaded_outcomes_are_sent_by_path(flows: Path, tmp_path: Path) -> None:
    outcome = load(flows / "rising" / "rising.yaml")
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    (result,) = run_many([outcome], PERIOD, workers=1, store_url=url, dry_run=True)
    assert (result.outcome, result.decision, result.source) == (
        "rising",
        "keep",
        str(outcome.source),
    )
    store = Store(url)
    assert store.outcomes() == []  # a dry run records nothing
    store.dispose()


def test_worker_processes_are_replaced_so_memory_stays_flat(flows: Path, tmp_path: Path) -> None:
    """With `recycle=1`, a pool of 2 runs 2 cycles and the next 2 run in fresh processes."""
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    results = list(run_many([flows], PERIOD, workers=2, store_url=url, recycle=1, dry_run=True))

    assert {r.outcome: r.decision for r in results} == EXPECTED
    first, second = {r.worker for r in results[:2]}, {r.worker for r in results[2:]}
    assert len(first) <= 2 and len(second) <= 2 and not first & second


def test_stopping_early_runs_nothing_more(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    for i in range(10):
        values = {m: 0.20 + WIGGLE[j % len(WIGGLE)] for j, m in enumerate([*BASELINE, PERIOD])}
        write_monthly_csv(flows / f"o{i}" / "data" / "rate.csv", values)
        write_declaration(flows / f"o{i}", outcome=f"o{i}")
    url = f"sqlite:///{tmp_path / 'batch.db'}"

    results = run_many([flows], PERIOD, workers=1, store_url=url)
    (first,) = islice(results, 1)
    results.close()  # what a Ctrl-C does: the pool is shut down, queued cycles cancelled

    store = Store(url)
    ran = store.outcomes()
    store.dispose()
    # the one under way and the two already handed to the worker process's queue
    assert first.outcome in ran and len(ran) <= 4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next(run_many([], workers=0))


# -- radar run-all ----------------------------------------------------------------------------


def test_run_all_prints_one_json_object_per_outcome(
    workdir: Path, flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _bad(flows)

    assert main(["run-all", str(flows), "--period", PERIOD, "--workers", "2", "--json"]) == 1

    captured = capsys.readouterr()
    data = {item["outcome"]: item for item in json.loads(captured.out)}
    assert {n: (d["decision"], d["error"]) for n, d in data.items()} == {
        **{n: (d, None) for n, d in EXPECTED.items()},
        "bad": (None, data["bad"]["error"]),
    }
    for name in EXPECTED:  # the cycle object of `radar run --json`, and where it came from
        assert data[name]["period"] == PERIOD and len(data[name]["stages"]) == 5
        assert {"reasons", "approach", "next_approach", "result_value", "target", "checks",
                "limits"} <= set(data[name])  # fmt: skip
        assert data[name]["source"] == str(flows / name / f"{name}.yaml")
    assert str(bad) in data["bad"]["error"] and data["bad"]["source"] == str(bad)
    assert data["bad"]["stages"] == [] and data["bad"]["checks"] is None
    assert captured.err == "radar: 1 of 5 outcomes failed\n"

    assert main(["history", "falling", "--json"]) == 0  # the default history, like `radar run`
    assert [c["decision"] for c in json.loads(capsys.readouterr().out)] == ["switch"]


def test_run_all_readable_lines(
    workdir: Path, flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(flows / "rising" / "rising.yaml"), str(flows / "steady"), "--period", PERIOD]

    assert main(["run-all", *args, "--dry-run"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert sorted(line.split()[:2] for line in lines[:2]) == [
        ["rising", PERIOD],
        ["steady", PERIOD],
    ]
    assert "keep" in next(line for line in lines if line.startswith("rising"))
    assert "adjust" in next(line for line in lines if line.startswith("steady"))
    assert lines[2].startswith("2 outcomes in ") and "1 keep, 1 adjust" in lines[2]
    assert "dry run" in lines[2]
    assert main(["history", "rising", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing recorded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers: must be at least 1"),
        (["nowhere.yaml"], "no such declaration file"),
        (["no_such_outcome"], "no declaration file or declared outcome named 'no_such_outcome'"),
        (["empty"], "no declarations under empty"),
    ],
)
def test_run_all_bad_arguments_exit_2(
    workdir: Path, flows: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (workdir / "empty").mkdir()
    first = args if args[0] != "--workers" else [str(flows), *args]
    assert main(["run-all", *first]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_run_all_bad_period_fails_every_outcome_with_exit_2(
    workdir: Path, flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run-all", str(flows), "--period", "someday", "--workers", "1"]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 5 and all("failed" in line and "--period" in line for line in lines[:4])
    assert captured.err == "radar: 4 of 4 outcomes failed\n"


def test_run_all_never_prints_a_secret_known_only_to_its_worker(
    workdir: Path, flows: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADAR_BATCH_SECRET", "hunter2-in-a-title")
    path = flows / "rising" / "rising.yaml"
    path.write_text(path.read_text().replace("refer us", "refer us ${RADAR_BATCH_SECRET}"))

    assert main(["run-all", str(path), "--period", PERIOD, "--json", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "hunter2" not in out
    # a title read from the environment is shown as written, never with its value
    assert json.loads(out)[0]["title"] == "Customers refer us ${RADAR_BATCH_SECRET}"


def test_a_worker_that_dies_takes_only_its_own_outcome(flows: Path, tmp_path: Path) -> None:
    """A declaration whose loading ends the process breaks the pool; the cycles it took down
    run again, each alone, so only the culprit fails."""
    crash = flows / "crash" / "crash.py"
    crash.parent.mkdir()
    crash.write_text("import os\n\nos._exit(3)  # before any Outcome( is made\n")
    url = f"sqlite:///{tmp_path / 'batch.db'}"

    results = _by_outcome(list(run_many([flows], PERIOD, workers=2, store_url=url)))

    assert {name: results[name].decision for name in SHAPES} == EXPECTED
    assert (results["crash"].ok, results["crash"].exit_code) == (False, 1)
    assert "worker process died" in (results["crash"].error or "")
