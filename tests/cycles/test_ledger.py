"""The action ledger after a run that died mid-action: what is repeated, and how it is recorded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cycles.declaration import load
from cycles.engine import run_cycle
from cycles.errors import ActionError
from cycles.periods import Cadence, Period
from cycles.stages import action_key
from cycles.store import Store

from conftest import months, write_declaration, write_monthly_csv

CURRENT = Period.containing(date.today(), Cadence.monthly)


@pytest.fixture
def project(workdir: Path) -> Path:
    write_monthly_csv(workdir / "data" / "rate.csv", dict.fromkeys(months("2024-01", 48), 0.2))
    (workdir / "calls.py").write_text(
        "from pathlib import Path\n"
        "def call(context):\n"
        "    with (Path(__file__).parent / 'calls.log').open('a') as log:\n"
        "        log.write(context.key + '\\n')\n"
        "    return 1\n"
    )
    decl = write_declaration(workdir)
    decl.write_text(
        decl.read_text().replace(
            "    adjust: {usd: {step: 10, max: 40}}\n",
            "    adjust: {usd: {step: 10, max: 40}}\n"
            "    actions:\n"
            "      - {name: call, type: python, callable: 'calls:call'}\n"
            "      - {name: export, type: file, path: 'out/{period}.csv', rows: [{a: 1}]}\n",
        )
    )
    return decl


def test_an_attempt_whose_outcome_is_unknown_is_resent_and_recorded_as_such(
    project: Path, workdir: Path
) -> None:
    outcome = load(project)
    store = Store()
    ids = {"outcome": "refer", "period": str(CURRENT), "approach": "incentive"}
    # a run killed after beginning both actions, before recording how they ended
    for action, kind in (("call", "python"), ("export", "file")):
        key = action_key("refer", str(CURRENT), "incentive", action)
        store.begin_action(key=key, action=action, type=kind, **ids)
    # the file action had written its export (and its key) before the kill
    first = run_cycle(outcome, CURRENT, store=Store(f"sqlite:///{workdir / 'scratch.db'}"))
    assert {a.status for a in first.actions} == {"succeeded"}
    (workdir / "calls.log").unlink()

    record = run_cycle(outcome, CURRENT, store=store)
    by_name = {a.name: a for a in record.actions}
    # python: the sink cannot tell, so the ledger says it was resent (same key, maybe seen twice)
    assert by_name["call"].status == "resent" and by_name["call"].attempts == 2
    assert "resent after an attempt whose outcome is unknown" in (by_name["call"].error or "")
    assert (workdir / "calls.log").read_text().splitlines() == [by_name["call"].key]
    # file: the export's own key shows it was written: succeeded, nothing written again
    assert by_name["export"].status == "succeeded" and by_name["export"].attempts == 2
    # either way it is final: a later run repeats nothing
    again = run_cycle(outcome, CURRENT, store=store, review=True)
    assert {a.name: a.status for a in again.actions} == {"call": "resent", "export": "succeeded"}
    assert (workdir / "calls.log").read_text().count("\n") == 1


def test_an_unknown_outcome_stays_unknown_through_a_failed_attempt(
    project: Path, workdir: Path
) -> None:
    (workdir / "calls.py").write_text(
        "from pathlib import Path\n"
        "def call(context):\n"
        "    here = Path(__file__).parent\n"
        "    with (here / 'calls.log').open('a') as log:\n"
        "        log.write(context.key + '\\n')\n"
        "    if (here / 'fail').exists():\n"
        "        raise RuntimeError('receiver said 503')\n"
        "    return 1\n"
    )
    outcome = load(project)
    store = Store()
    key = action_key("refer", str(CURRENT), "incentive", "call")
    # a run killed while the callable ran, after it acted
    store.begin_action(key=key, outcome="refer", period=str(CURRENT), approach="incentive",
                       action="call", type="python")  # fmt: skip
    (workdir / "calls.log").write_text(key + "\n")
    (workdir / "fail").touch()  # the next attempt fails: it does not tell whether that one acted
    with pytest.raises(ActionError):
        run_cycle(outcome, CURRENT, store=store)
    failed = store.get_action(key)
    assert failed is not None and failed.status == "failed"
    assert (failed.error or "").startswith("after an attempt whose outcome is unknown: ")
    (workdir / "fail").unlink()
    record = run_cycle(outcome, CURRENT, store=store)
    [call] = [a for a in record.actions if a.name == "call"]
    assert (call.status, call.attempts) == ("resent", 3)  # called 3 times: never `succeeded`
    assert (workdir / "calls.log").read_text().count("\n") == 3
