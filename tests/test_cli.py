"""The command line end to end: the demo, help, and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cycles.cli import main

from conftest import radar

DECISIONS = {"keep", "adjust", "switch", "hold", "achieved"}


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "history", "validate", "demo"):
        assert command in out


def test_demo_in_process(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-prefect"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line[:4].isdigit() and line[4] == "-"]
    assert len(lines) >= 12
    assert {word for line in lines for word in line.split()} >= DECISIONS
    assert "radar history referrals" in out and "radar report referrals" in out
    assert main(["history", "referrals", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert len(history) == len(lines)
    assert {c["decision"] for c in history} == DECISIONS
    assert (workdir / ".radar" / "radar.db").is_file()
    # the outcomes serving referrals ran first each month: its reviews list their decisions
    assert [c["outcome"] for c in history[-1]["children"]] == ["leads", "support"]
    assert history[-1]["reasons"][-2].startswith("child leads: hold, ")
    serving = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and
               " in 2026-10: " in line}  # fmt: skip
    assert set(serving) == {"support", "leads"}
    assert "adjust" in serving["leads"] and "keep" in serving["leads"]
    assert out.rstrip().splitlines()[-1].startswith("portfolio: reports/index.html")
    page = (workdir / "reports" / "index.html").read_text()
    for outcome in ("referrals", "support", "leads"):
        assert f'href="{outcome}.html"' in page
        assert (workdir / "reports" / f"{outcome}.html").is_file()


@pytest.mark.slow
def test_demo_through_prefect_in_an_empty_directory(tmp_path: Path) -> None:
    proc = radar("demo", cwd=tmp_path, env={"PREFECT_HOME": str(tmp_path / "prefect-home")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no Prefect log lines, no server chatter
    assert "(new: no .radar/ at or above" in proc.stdout  # the demo says it started a history
    lines = [
        line for line in proc.stdout.splitlines() if line[:7].count("-") == 1 and line[:4].isdigit()
    ]
    assert len(lines) >= 12
    assert {word for line in lines for word in line.split()} >= DECISIONS
    assert "prefect server start" in proc.stdout and "radar history referrals" in proc.stdout
    assert "INFO" not in proc.stdout and "Starting temporary server" not in proc.stdout
    assert "the outcomes serving referrals" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("portfolio: reports/index.html")
    assert (tmp_path / "reports" / "index.html").is_file()


def test_run_by_name_with_the_bundled_example(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "referrals", "--period", "2025-09", "--json", "--dry-run"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == "adjust" and data["next_approach"]["params"] == {"incentive_usd": 30}
    assert data["actions"][0]["status"] == "skipped"  # a past period: never executed


def test_readable_summary(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "referrals", "--period", "2025-11", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "referrals · 2025-11" in out and "hold" in out and "data check failed" in out


def test_other_failures_exit_1_with_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADAR_DATABASE_URL", "postgresql://radar:s3cret-pw@127.0.0.1:1/nothing")
    assert main(["history", "referrals"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("radar: ")
    assert "s3cret-pw" not in err and "Traceback" not in err


def test_debug_shows_the_traceback(workdir: Path) -> None:
    proc = radar("--debug", "run", "nope.yaml", cwd=workdir)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "no such declaration file" in proc.stderr


def test_history_of_an_unknown_outcome(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "referals"]) == 2  # the bundled outcome is declared, not this one
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown outcome 'referals'" in err
    assert "did you mean 'referrals'?" in err
    assert not (workdir / ".radar").exists(), "reading history created one"


def test_history_of_a_declared_outcome_without_cycles(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "referrals"]) == 0
    assert "no cycles recorded" in capsys.readouterr().out
    assert main(["history", "referrals", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_db_upgrade(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "upgraded from empty to 0001" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "at revision 0001: nothing to do" in capsys.readouterr().out


@pytest.mark.skipif(
    not os.environ.get("RADAR_TEST_POSTGRES_URL"),
    reason="RADAR_TEST_POSTGRES_URL not set: PostgreSQL upgrade skipped",
)
def test_db_upgrade_on_postgresql(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    import sqlalchemy as sa

    from cycles.store import normalise_url

    base = normalise_url(os.environ["RADAR_TEST_POSTGRES_URL"])
    schema = f"radar_up_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        monkeypatch.setenv("RADAR_DATABASE_URL", url.render_as_string(hide_password=False))
        assert main(["db", "upgrade"]) == 0
        assert "upgraded from empty to 0001" in capsys.readouterr().out
        assert (
            main(["run", "referrals", "--period", "2025-09", "--json"]) == 0
        )  # the store is usable
        assert json.loads(capsys.readouterr().out)["decision"] == "adjust"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_period_outside_the_years_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for period in ("0001-01", "9999-12"):
        assert main(["run", "referrals", "--period", period, "--dry-run"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert err.startswith(f"radar: --period: '{period}': the year must be 1900-2999"), err


def test_validate_prints_each_error_on_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import write_declaration, write_monthly_csv

    write_monthly_csv(workdir / "data" / "rate.csv", {"2025-01": 0.2})
    good = write_declaration(workdir)
    bad = write_declaration(workdir, outcome="bad", extra='"ti\\ntle": x\n')  # a key with a newline
    line = bad.read_text().count("\n")  # the last line
    assert main(["validate", str(bad), str(good)]) == 2
    out, err = capsys.readouterr()
    assert err == f"radar: {bad}:{line}: ti tle: unknown key\n" and f"ok {good}" in out


def test_json_is_strict_when_data_holds_infinite_values(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import months, write_declaration, write_monthly_csv

    data = workdir / "data" / "rate.csv"
    write_monthly_csv(data, dict.fromkeys(months("2025-01", 9), 0.2))
    data.write_text(data.read_text().replace("0.198000", "inf").replace("0.202000", "-inf"))
    decl = write_declaration(workdir)

    def strict(text: str) -> object:
        def refuse(name: str) -> None:
            raise AssertionError(f"not strict JSON: {name}")

        return json.loads(text, parse_constant=refuse)

    assert main(["run", str(decl), "--period", "2025-09", "--json"]) == 0
    out, err = capsys.readouterr()
    record = strict(out)
    assert err.startswith("radar: started a new history in") and err.count("\n") == 1
    assert isinstance(record, dict)
    assert record["decision"] == "hold" and record["checks"]["failed"] >= 1
    assert any("are not finite numbers" in reason for reason in record["reasons"])
    assert main(["history", "refer", "--json"]) == 0
    history = strict(capsys.readouterr().out)
    assert isinstance(history, list) and [c["period"] for c in history] == ["2025-09"]


def test_print_json_writes_null_for_non_finite_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    from cycles.console import print_json

    print_json({"nan": float("nan"), "list": [float("inf"), 1.5], "tuple": (float("-inf"),)})
    out = capsys.readouterr().out
    assert json.loads(out) == {"nan": None, "list": [None, 1.5], "tuple": [None]}


def test_a_prefect_api_is_found_in_the_environment_a_profile_or_in_process_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without one, a flow run starts radar's temporary server; with one, it must not."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cycles.cli import prefect_api_configured

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    with temporary_settings(updates={PREFECT_API_URL: None}):
        assert not prefect_api_configured()
        (tmp_path / "profiles.toml").write_text(
            'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
        )
        assert prefect_api_configured()
        (tmp_path / "profiles.toml").unlink()
        monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
        assert prefect_api_configured()
        monkeypatch.delenv("PREFECT_API_URL")
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert prefect_api_configured()  # a test or an embedding process set it in-process


def test_the_demo_pauses_after_a_flow_run_in_proportion_to_it() -> None:
    from cycles.demo import SETTLE_MAX, SETTLE_MIN, settle_seconds

    assert settle_seconds(0.01) == SETTLE_MIN  # a fast run still leaves the server a moment
    assert settle_seconds(0.4) == pytest.approx(0.1)  # a loaded server: a longer pause
    assert settle_seconds(60) == SETTLE_MAX


def test_a_reader_that_goes_away_is_not_an_error(workdir: Path) -> None:
    """`radar run ... | head`: the command's work is done; the closed pipe ends it quietly."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "cycles.cli", "run", "referrals", "--period", "2026-10",
         "--review", "--dry-run"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before radar writes anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""
