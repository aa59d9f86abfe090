"""Outcomes that serve other outcomes (`parent:`): validation, and the parent's review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.engine import run_cycle
from cycles.errors import DeclarationError
from cycles.hierarchy import (
    check_parent,
    children_reasons,
    children_standing,
    declared_children,
    declared_parents,
    tree_order,
)
from cycles.periods import Period
from cycles.record import ChildStanding, CycleRecord
from cycles.store import Store
from cycles.values import DecisionKind

from conftest import months, write_declaration, write_monthly_csv


def declare(root: Path, outcome: str, parent: str | None = None, *, target: float = 0.3) -> Path:
    """`root/flows/<outcome>/<outcome>.yaml` with its own flat data, `parent:` on line 2."""
    directory = root / "flows" / outcome
    write_monthly_csv(directory / "data" / "rate.csv", dict.fromkeys(months("2024-09", 20), 0.2))
    path = write_declaration(directory, outcome=outcome, target=target)
    if parent is not None:
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join([lines[0], f"parent: {parent}\n", *lines[1:]]))
    return path


def cycle(
    outcome: str, period: str, decision: str | None, value: float | None = 0.5, **more: object
) -> CycleRecord:
    more.setdefault("status", "reviewed" if decision else "open")
    return CycleRecord(
        outcome=outcome, period=period, cadence=str(more.pop("cadence", "monthly")), target=0.5,
        decision=DecisionKind(decision) if decision else None, result_value=value,
        **more,
    )  # fmt: skip


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parents", "outcome", "message"),
    [
        ({"support": "referals", "referrals": None}, "support",
         "'referals' is not a declared outcome (did you mean 'referrals'?); known: leads, "
         "referrals, support"),  # the bundled outcomes are declared too
        ({"a": "b", "b": "a"}, "a", "the parents form a cycle: a → b → a"),
        ({"a": "b", "b": "c", "c": "b"}, "a", "the parents form a cycle: b → c → b"),
    ],
)  # fmt: skip
def test_a_parent_must_be_declared_and_not_lead_back(
    workdir: Path, parents: dict[str, str | None], outcome: str, message: str
) -> None:
    for name, parent in parents.items():
        declare(workdir, name, parent)
    loaded = load_yaml(workdir / "flows" / outcome / f"{outcome}.yaml")
    with pytest.raises(DeclarationError) as raised:
        check_parent(loaded, declared_parents())
    error = raised.value
    assert (error.line, error.key, error.message) == (2, "parent", message)
    assert str(error).startswith(f"{loaded.source}:2: parent: ")


def test_a_good_parent_passes_and_an_outcome_cannot_serve_itself(workdir: Path) -> None:
    declare(workdir, "referrals-local")
    child = load_yaml(declare(workdir, "support", "referrals-local"))
    check_parent(child, declared_parents())  # no error
    check_parent(load_yaml(declare(workdir, "top")), {})  # no parent: nothing to check
    with pytest.raises(DeclarationError, match=r"self\.yaml:2: parent: 'self' cannot serve itself"):
        load_yaml(declare(workdir, "self", "self"))
    bad = declare(workdir, "shouty", "Not-An-Id")
    with pytest.raises(
        DeclarationError, match=r"shouty\.yaml:2: parent: 'Not-An-Id' is not an outcome identifier"
    ):
        load_yaml(bad)


def test_validate_names_the_file_line_and_key_and_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, lost = declare(workdir, "support", "referrals"), declare(workdir, "lost", "nowhere")
    declare(workdir, "a", "b")
    declare(workdir, "b", "a")
    assert main(["validate", str(good)]) == 0  # the bundled referrals is declared
    capsys.readouterr()
    assert main(["validate", str(lost), "a", "support"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"radar: {lost}:2: parent: 'nowhere' is not a declared outcome; known: a, b, leads, lost, "
        "referrals, support",
        f"radar: {workdir / 'flows' / 'a' / 'a.yaml'}:2: parent: the parents form a cycle: "
        "a → b → a",
    ]
    assert out.count("ok ") == 1 and "(support)" in out


def test_declarations_given_on_the_command_line_count_as_declared(
    tmp_path: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"  # not where names are looked up
    top, child = declare(elsewhere, "top"), declare(elsewhere, "child", "top")
    assert main(["validate", str(child), str(top)]) == 0, capsys.readouterr().err


def test_children_and_tree_order_from_the_declarations(workdir: Path) -> None:
    declare(workdir, "ops", "referrals")
    declare(workdir, "desk", "ops")
    assert declared_children("referrals") == ["leads", "ops", "support"]  # bundled ones too
    assert declared_children("ops") == ["desk"] and declared_children("desk") == []
    order = tree_order(declared_parents())
    assert order.index(("referrals", 0)) < order.index(("ops", 1)) < order.index(("desk", 2))
    assert tree_order({"a": "b", "b": "a", "c": "gone"}) == [("c", 0), ("a", 0), ("b", 1)]


def test_a_tick_or_a_run_all_worker_reads_the_parents_once(workdir: Path) -> None:
    """Inside `declarations_fixed()` (a shard's tick) and after `fix_declarations()` (a run-all
    worker) the parents are those read when it began: each review would otherwise read every
    declaration again. Outside, a new declaration counts at once."""
    from contextvars import copy_context

    from cycles.hierarchy import declarations_fixed, fix_declarations

    declare(workdir, "ops", "referrals")
    with declarations_fixed():
        declare(workdir, "desk", "ops")
        assert declared_children("ops") == []
    assert declared_children("ops") == ["desk"]

    def worker() -> list[str]:
        fix_declarations()
        declare(workdir, "bench", "ops")
        return declared_children("ops")

    assert copy_context().run(worker) == ["desk"]
    assert declared_children("ops") == ["bench", "desk"]


# -- the parent's review (pure) -------------------------------------------------------------------


def test_each_child_s_latest_review_up_to_the_parent_s_period() -> None:
    children = {
        "support": [
            cycle("support", "2026-09", "adjust", 0.42),
            cycle("support", "2026-10", "keep", 0.91),
            cycle("support", "2026-11", "achieved", 0.95),  # after the parent's period
        ],
        "leads": [
            cycle("leads", "2026-08", "adjust", 0.3),
            cycle("leads", "2026-09", "keep", 0.6, status="void"),  # set aside
            cycle("leads", "2026-10", None, None),  # not reviewed yet
        ],
        "ops": [cycle("ops", "2026-W44", "hold", None, cadence="weekly")],  # another cadence
        "new": [],
    }
    entries = children_standing(children, Period.parse("2026-10", "monthly"))
    assert [(e.outcome, e.period, e.decision, e.value) for e in entries] == [
        ("leads", "2026-08", "adjust", 0.3),
        ("new", None, None, None),
        ("ops", "2026-W44", "hold", None),
        ("support", "2026-10", "keep", 0.91),
    ]
    assert children_reasons(entries, "2026-10") == [
        "child leads: adjust in 2026-08, 0.3 vs ≥ 0.5",
        "child new: no review yet",
        "child ops: hold in 2026-W44, no value vs ≥ 0.5",
        "child support: keep, 0.91 ≥ 0.5",
    ]
    down = [ChildStanding(outcome="wait", period="2026-10", decision=DecisionKind.keep, value=3.5,
                          target=4, direction="decrease")]  # fmt: skip
    assert children_reasons(down, "2026-10") == ["child wait: keep, 3.5 ≤ 4"]


# -- the parent's review (engine) -----------------------------------------------------------------


def test_the_parent_s_review_lists_its_children(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = load_yaml(declare(workdir, "top"))
    child = load_yaml(declare(workdir, "child", "top", target=0.15))
    store = Store()
    run_cycle(child, Period.parse("2025-09", "monthly"), store=store)
    record = run_cycle(top, Period.parse("2025-09", "monthly"), store=store)
    assert record.reasons[-1] == "child child: achieved, 0.2 ≥ 0.15" or record.reasons[-1] == (
        "child child: keep, 0.2 ≥ 0.15"
    )
    assert main(["history", "top", "--json"]) == 0
    [data] = json.loads(capsys.readouterr().out)
    [entry] = data["children"]
    assert entry == {"outcome": "child", "period": "2025-09", "decision": entry["decision"],
                     "value": pytest.approx(0.2), "target": 0.15, "direction": "increase"}  # fmt: skip
    assert data["extra"]["children"] == data["children"]
    alone = run_cycle(child, Period.parse("2025-10", "monthly"), store=store)
    assert alone.extra.children == [] and alone.to_json_dict()["children"] == []
    assert "children" not in alone.to_json_dict()["extra"]
