"""An operator's calendar: future periods refused, dry runs never, backfills, void cycles, the tick
month after month (in-process, on a shifted clock), and the history found from any directory."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cycles.cli import main

from conftest import Clock, months, write_monthly_csv

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DECLARATION = """\
outcome: calendar
title: Customers refer us
cadence: monthly
timezone: Europe/Amsterdam
result: {metric: rate, target: 0.3}
metrics:
  rate: {connector: crm, period: day, value: rate}
connectors:
  crm: {type: csv, path: data/rate.csv}
approaches:
  - name: incentive
    params: {usd: 20}
    adjust: {usd: {step: 10, max: 60}}
    actions:
      - name: export
        type: file
        path: "out/{period}-incentive.json"
        rows: [{period: "{period}", usd: "{params.usd}"}]
  - name: nudge
    params: {asks: 2}
    actions:
      - {name: export, type: file, path: "out/{period}-nudge.json", rows: [{period: "{period}"}]}
"""


def project(root: Path, review: str = "") -> Path:
    """A declaration with a file action per approach, and flat data 2024-01 .. 2026-12."""
    values = {m: 0.18 + 0.002 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-01", 36))}
    write_monthly_csv(root / "data" / "rate.csv", values)
    path = root / "calendar.yaml"
    path.write_text(DECLARATION + textwrap.dedent(review))
    return path


@pytest.fixture
def decl(workdir: Path) -> Path:
    return project(workdir)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def history(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    return {c["period"]: c for c in run_json(capsys, "history", "calendar")}


def exported(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "out").glob("*.json")) if (root / "out").is_dir() else []


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# -- future periods and dry runs ------------------------------------------------------------------


def test_a_future_period_is_refused_before_anything_happens(
    decl: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(decl), "--period", "2030-03"]) == 2
    err = one_error(capsys)
    assert "2030-03 has not begun" in err and "nothing was recorded and no action ran" in err
    assert not (workdir / ".radar").exists() and exported(workdir) == []

    run_json(capsys, "run", str(decl), "--period", "2025-09")  # a history now exists
    assert main(["run", str(decl), "--period", "2030-W10"]) == 2  # not even a period of it
    assert main(["run", str(decl), "--period", "2030-03", "--review"]) == 2
    assert "has not begun" in capsys.readouterr().err
    assert list(history(capsys)) == ["2025-09"] and exported(workdir) == []


def test_a_dry_run_is_never_refused_and_records_nothing(
    decl: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = run_json(capsys, "run", str(decl), "--period", "2030-03", "--dry-run")
    assert future["stages"] == ["result", "approach", "deployment"]
    assert [a["status"] for a in future["actions"]] == ["dry-run"]
    assert not (workdir / ".radar").exists(), "a dry run created a history"

    for period in ("2025-09", "2025-10"):
        run_json(capsys, "run", str(decl), "--period", period)
    before = history(capsys)
    # re-reviewing 2025-09 would rewrite what 2025-10 built on: refused, but not as a dry run
    assert main(["run", str(decl), "--period", "2025-09", "--review"]) == 2
    assert "would rewrite history" in one_error(capsys)
    again = run_json(capsys, "run", str(decl), "--period", "2025-09", "--review", "--dry-run")
    assert again["stages"] == ["assessment", "review"] and again["decision"] is not None
    assert history(capsys) == before


# -- backfills ------------------------------------------------------------------------------------


def test_backfill_runs_each_period_in_order_with_actions_skipped(
    decl: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(decl), "--from", "2025-06", "--to", "2025-09"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line[:4] == "2025"]
    assert [line.split()[0] for line in lines] == ["2025-06", "2025-07", "2025-08", "2025-09"]
    cycles = history(capsys)
    assert list(cycles) == ["2025-06", "2025-07", "2025-08", "2025-09"]
    assert all(c["status"] == "reviewed" for c in cycles.values())
    assert {a["status"] for c in cycles.values() for a in c["actions"]} == {"skipped"}
    assert exported(workdir) == []
    # each review planned the next period's approach
    assert cycles["2025-07"]["approach"] == cycles["2025-06"]["next_approach"]

    listed = run_json(capsys, "run", str(decl), "--from", "2025-10", "--to", "2025-11")
    assert [c["period"] for c in listed] == ["2025-10", "2025-11"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-06", "--to", "2030-01"], "2030-01 has not begun"),
        (["--from", "2025-09", "--to", "2025-06"], "comes after --to"),
        (["--to", "2025-06"], "--to needs --from"),
        (["--from", "2025-06", "--period", "2025-07"], "either --period or --from"),
    ],
)
def test_a_bad_backfill_is_refused_before_any_period_runs(
    decl: Path, workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["run", str(decl), *args]) == 2
    assert message in one_error(capsys)
    assert not (workdir / ".radar").exists()


# -- void -----------------------------------------------------------------------------------------


def test_void_keeps_the_cycle_and_the_policy_forgets_it(
    decl: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # the history table, unfolded
    from cycles.declaration import load
    from cycles.engine import run_cycle

    run_json(capsys, "run", str(decl), "--from", "2025-06", "--to", "2025-08")
    cycles = history(capsys)
    assert [cycles[p]["next_approach"]["params"]["usd"] for p in ("2025-07", "2025-08")] == [40, 50]

    assert main(["void", "calendar", "2025-08", "--reason", "the export was a test file"]) == 0
    out = capsys.readouterr().out
    assert "calendar/2025-08 is void: the export was a test file" in out
    # the next opening plans from the review before: 2025-07 said usd 40
    assert "the next opening runs incentive (usd=40)" in out
    nxt = run_json(capsys, "run", str(decl), "--period", "2025-09", "--dry-run")
    assert nxt["approach"] == {"name": "incentive", "params": {"usd": 40}}
    assert "planned by the 2025-07 review" in nxt["extra"]["approach_reason"]

    voided = history(capsys)["2025-08"]
    assert voided["status"] == "void" and voided["decision"] == "adjust"  # kept as it was
    assert voided["extra"]["void"]["reason"] == "the export was a test file"
    assert main(["history", "calendar"]) == 0
    assert "void: the export was a test file" in capsys.readouterr().out
    # a void cycle is never run again, and its period's value counts in no later baseline
    assert main(["run", str(decl), "--period", "2025-08", "--review"]) == 2
    assert "is void" in one_error(capsys)
    from cycles.store import Store

    later = run_cycle(load(decl), "2025-09", store=Store())
    assert "2025-08" not in [v.period for v in later.metrics["rate"]]
    assert "2025-07" in [v.period for v in later.metrics["rate"]]


def test_void_of_an_unknown_cycle_is_a_usage_error(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "run", str(decl), "--period", "2025-06")
    assert main(["void", str(decl), "2025-07", "--reason", "x"]) == 2
    assert "no cycle calendar/2025-07" in one_error(capsys)
    assert main(["void", str(decl), "2025-06", "--reason", " "]) == 2
    assert "--reason" in one_error(capsys)


# -- the tick, month after month ------------------------------------------------------------------


def local(year: int, month: int, day: int = 1, hour: int = 6) -> datetime:
    return datetime(year, month, day, hour, 0, 5, tzinfo=AMSTERDAM)


def completed(cycle: dict[str, Any]) -> Counter[str]:
    return Counter(r["stage"] for r in cycle["stage_runs"] if r["status"] == "completed")


def test_each_tick_reviews_the_month_that_ended_and_opens_the_new_one(
    decl: Path, workdir: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.at(local(2026, 1))
    [january] = run_json(capsys, "tick", str(decl))
    assert january["period"] == "2026-01" and january["stages"] == ["result", "approach",
                                                                    "deployment"]  # fmt: skip
    assert exported(workdir) == ["2026-01-incentive.json"]  # the action ran on the 1st

    clock.at(local(2026, 2))
    ran = run_json(capsys, "tick", str(decl))
    assert [(c["period"], c["stages"]) for c in ran] == [
        ("2026-01", ["assessment", "review"]),
        ("2026-02", ["result", "approach", "deployment"]),
    ]
    assert ran[1]["approach"] == ran[0]["next_approach"]  # the review planned the opening
    assert exported(workdir) == ["2026-01-incentive.json", "2026-02-incentive.json"]

    before = history(capsys)
    again = run_json(capsys, "tick", str(decl))  # the same slot again: a retry changes nothing
    assert [c["stages"] for c in again] == [[]]
    assert history(capsys) == before
    for cycle in before.values():
        assert all(n == 1 for n in completed(cycle).values()), cycle["stage_runs"]
    assert all(a["attempts"] == 1 for c in before.values() for a in c["actions"])

    main(["tick", str(decl)])
    out = capsys.readouterr().out
    assert "history: sqlite:///" in out and str(workdir / ".radar" / "radar.db") in out


def test_a_review_that_waits_for_its_event_or_its_deadline(
    workdir: Path, clock: Clock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # the history table, unfolded
    decl = project(workdir, "review: {after_event: campaign.ended, delay: P2D}\n")
    clock.at(local(2026, 1))
    run_json(capsys, "tick", str(decl))

    clock.at(local(2026, 2))
    [february] = run_json(capsys, "tick", str(decl))  # January waits for its event
    assert february["period"] == "2026-02"
    reason = february["extra"]["approach_reason"]
    assert "review of 2026-01 pending: campaign.ended + P2D" in reason
    pending = history(capsys)["2026-01"]
    assert pending["status"] == "review pending" and pending["decision"] is None
    assert main(["history", str(decl.stem)]) == 0
    assert "review pending" in capsys.readouterr().out

    # the event's run reviews January after February opened: February stays as it was
    clock.at(local(2026, 2, 12))
    january = run_json(capsys, "run", str(decl), "--period", "2026-01", "--review")
    assert january["decision"] is not None and january["stages"] == ["assessment", "review"]
    assert history(capsys)["2026-02"] == history(capsys)["2026-02"]
    assert history(capsys)["2026-02"]["approach"] == february["approach"]

    clock.at(local(2026, 3))
    [march] = run_json(capsys, "tick", str(decl))  # February waits: its deadline is Apr 3
    assert march["approach"] == january["next_approach"]  # planned by January's late review
    assert "planned by the 2026-01 review" in march["extra"]["approach_reason"]
    assert "review of 2026-02 pending" in march["extra"]["approach_reason"]

    clock.at(local(2026, 4, 3))  # no event for February by its deadline (Apr 3, 00:00)
    ran = run_json(capsys, "tick", str(decl))
    assert [(c["period"], c["stages"]) for c in ran] == [
        ("2026-02", ["assessment", "review"]),
        ("2026-04", ["result", "approach", "deployment"]),
    ]
    assert ran[0]["reasons"][0] == "no campaign.ended event by 2026-04-03 00:00 CEST"
    cycles = history(capsys)
    assert cycles["2026-03"]["status"] == "review pending"  # its deadline is May 3
    for cycle in cycles.values():
        assert all(n == 1 for n in completed(cycle).values()), cycle["stage_runs"]


# -- history found like git finds .git/ -----------------------------------------------------------


def test_the_history_is_found_from_a_subdirectory(
    decl: Path, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run", str(decl), "--period", "2025-09"]) == 0
    assert "(new: no .radar/ at or above" in capsys.readouterr().out  # said once, when made
    sub = workdir / "flows" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert main(["run", str(decl), "--period", "2025-10"]) == 0
    out = capsys.readouterr().out
    assert f"history: sqlite:///{workdir / '.radar' / 'radar.db'}" in out and "new:" not in out
    assert list(history(capsys)) == ["2025-09", "2025-10"]
    assert not (sub / ".radar").exists()


def test_a_dry_run_or_a_read_creates_no_history(
    decl: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "run", str(decl), "--period", "2025-09", "--dry-run")
    assert main(["history", str(decl)]) == 0  # the declaration's file names the outcome too
    assert "no cycles recorded for 'calendar'" in capsys.readouterr().out
    assert main(["outcomes"]) == 0
    assert not (workdir / ".radar").exists()


# -- output an operator can rely on ---------------------------------------------------------------


def test_what_a_python_action_prints_stays_out_of_the_json(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decl = project(workdir)
    (workdir / "noisy.py").write_text(
        "import sys\n"
        "def act(context, **kwargs):\n"
        "    print('sending to', context.key)\n"
        "    print('careful', file=sys.stderr)\n"
        "    return 3\n"
    )
    decl.write_text(
        decl.read_text().replace(
            "      - name: export\n        type: file\n",
            "      - {name: noisy, type: python, callable: 'noisy:act'}\n"
            "      - name: export\n        type: file\n",
        )
    )
    from cycles.periods import Cadence, Period

    current = str(Period.containing(datetime.now(AMSTERDAM).date(), Cadence.monthly))
    record = run_json(capsys, "run", str(decl), "--period", current)
    assert [a["name"] for a in record["actions"]] == ["noisy", "export"]
    assert record["actions"][0]["reach"] == 3


def test_validate_imports_python_actions_and_checks_webhooks(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = decl.read_text()
    decl.write_text(text.replace(
        "  - name: nudge\n    params: {asks: 2}\n    actions:\n",
        "  - name: nudge\n    params: {asks: 2}\n    actions:\n"
        "      - {name: ask, type: python, callable: 'no_such_module:act'}\n",
    ))  # fmt: skip
    assert main(["validate", str(decl)]) == 2
    err = one_error(capsys)
    assert "calendar.yaml:" in err and "approaches[1].actions[0]" in err
    assert "cannot import no_such_module:act" in err
    decl.write_text(text.replace(
        "  - name: nudge\n    params: {asks: 2}\n    actions:\n",
        "  - name: nudge\n    params: {asks: 2}\n    actions:\n"
        "      - {name: ask, type: webhook, url: 'http://'}\n",
    ))  # fmt: skip
    assert main(["validate", str(decl)]) == 2
    assert "url" in one_error(capsys)


def test_outcomes_lists_declarations_with_their_last_cycle(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = workdir / "flows" / "calendar"
    flows.mkdir(parents=True)
    decl = project(flows)
    run_json(capsys, "run", "calendar", "--period", "2025-09")
    rows = {r["outcome"]: r for r in run_json(capsys, "outcomes")}
    assert rows["calendar"]["cadence"] == "monthly"
    assert rows["calendar"]["last_period"] == "2025-09"
    assert rows["calendar"]["last_decision"] in {"keep", "adjust", "switch", "hold", "achieved"}
    assert rows["calendar"]["declaration"] == str(decl)
    assert "referrals" in rows  # the bundled example
    assert main(["outcomes"]) == 0
    assert "calendar" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["deploy"], ["campaign-ended", "calendar"]])
def test_an_unreachable_prefect_api_is_one_line_naming_it(
    decl: Path, workdir: Path, command: list[str]
) -> None:
    from conftest import radar

    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # the discard port: nothing answers
    args = [*command, str(decl)] if command == ["deploy"] else command
    ran = radar(*args, cwd=workdir, env=env, timeout=60)
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1, ran.stderr
    assert "cannot reach the Prefect API at http://127.0.0.1:9/api" in ran.stderr
    assert "prefect server start" in ran.stderr
