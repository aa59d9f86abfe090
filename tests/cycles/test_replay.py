"""`radar replay`: re-deciding recorded periods from their recorded metrics (cycles.replay)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
from rich.text import Text

from cycles.declaration import load_yaml
from cycles.demo import demo_outcome, demo_periods
from cycles.engine import run_cycle
from cycles.errors import DeclarationError
from cycles.record import CycleRecord
from cycles.replay import load_policy, override_policy, render, replay
from cycles.store import Store
from cycles.values import DecisionKind

from conftest import months, write_declaration, write_monthly_csv

# 12 flat baseline months, then cycles: flat, a broken month, a rise
SERIES: dict[str, float | None] = {
    m: 0.18 + 0.004 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-09", 12))
}
SERIES |= {"2025-09": 0.181, "2025-10": 0.183, "2025-11": 0.179, "2025-12": 0.18,
           "2026-01": 0.182, "2026-02": 0.24}  # fmt: skip


@pytest.fixture(scope="module")
def demo_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[CycleRecord]]:
    """The bundled demo's 14 months, run in-process into a SQLite history (as cycles.demo)."""
    path = tmp_path_factory.mktemp("demo") / "radar.db"
    store = Store(f"sqlite:///{path}")
    outcome = demo_outcome()
    for period in demo_periods(outcome):
        run_cycle(outcome, period, store=store)
    return store, store.cycles(outcome.outcome)


def test_the_declared_policy_reproduces_every_recorded_decision(
    demo_history: tuple[Store, list[CycleRecord]],
) -> None:
    _, cycles = demo_history
    result = replay(demo_outcome(), cycles)
    assert [r.period for r in result.rows] == [c.period for c in cycles]  # all 14 reviewed
    assert len(result.rows) == 14 and result.differing == []
    for row, cycle in zip(result.rows, cycles, strict=True):
        assert (row.replayed, row.replayed_approach, row.replayed_next) == (
            cycle.decision, cycle.approach, cycle.next_approach,
        )  # fmt: skip
        assert row.reasons == cycle.reasons  # the children's standing as the engine found it
    assert result.runs == {"referral-incentive": (5, 5), "promoter-nudge": (9, 9)}
    assert {row.recorded for row in result.rows} >= {
        DecisionKind.adjust, DecisionKind.hold, DecisionKind.switch, DecisionKind.keep,
        DecisionKind.achieved,
    }  # fmt: skip


def test_another_policy_replays_the_chain(demo_history: tuple[Store, list[CycleRecord]]) -> None:
    _, cycles = demo_history
    result = replay(override_policy(demo_outcome(), {"max_adjustments": 2}), cycles)
    rows = {r.period: r for r in result.rows}
    assert [p for p, r in rows.items() if not r.differs][:3] == ["2025-09", "2025-10", "2025-11"]
    december = rows["2025-12"]
    assert (december.recorded, december.replayed) == (DecisionKind.adjust, DecisionKind.switch)
    assert "2 adjustments in a row without a keep (max_adjustments 2)" in december.reasons
    # January then runs the nudge, as the replayed December planned: the chain is re-decided
    assert rows["2026-01"].replayed_approach is not None
    assert rows["2026-01"].replayed_approach.name == "promoter-nudge"
    assert rows["2026-01"].recorded_approach is not None
    assert rows["2026-01"].recorded_approach.name == "referral-incentive"
    assert result.runs == {"referral-incentive": (5, 4), "promoter-nudge": (9, 10)}
    lines = render(result, under="the policy of what-if.yaml")
    text = "\n".join(Text.from_markup(line).plain for line in lines)  # as the terminal shows it
    assert "2025-12  adjust   → referral-incentive (incentive_usd=50) switch" in text
    assert "replayed: 2 adjustments in a row without a keep (max_adjustments 2)" in text
    assert "referral-incentive 5 → 4 periods; promoter-nudge 9 → 10 periods" in text


def test_from_a_period_on(demo_history: tuple[Store, list[CycleRecord]]) -> None:
    _, cycles = demo_history
    result = replay(override_policy(demo_outcome(), {"max_adjustments": 2}), cycles,
                    since="2026-03")  # fmt: skip
    assert result.rows[0].period == "2026-03" and len(result.rows) == 8
    assert result.differing == []  # the nudge ran since 2026-01 as recorded: nothing changes


def test_void_cycles_are_skipped(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'radar.db'}")
    outcome = demo_outcome()
    for period in demo_periods(outcome)[:6]:
        run_cycle(outcome, period, store=store)
    store.void_cycle("referrals", "2026-02", "ran by mistake")
    result = replay(outcome, store.cycles("referrals"))
    assert "2026-02" not in [r.period for r in result.rows] and len(result.rows) == 5
    assert result.differing == []  # the void period was the last but one: nothing depended on it


def test_a_review_that_came_after_the_next_period_opened(workdir: Path) -> None:
    """The engine's chain when reviews lag: 2025-11 opened before 2025-10 was reviewed, so it
    carried over 2025-09's plan; the replay reads the stage times and does the same."""
    write_monthly_csv(workdir / "data" / "rate.csv", SERIES, broken={"2025-11": 1})
    outcome, store = load_yaml(write_declaration(workdir)), Store()
    run_cycle(outcome, "2025-09", store=store, today=date(2026, 11, 1))
    run_cycle(outcome, "2025-10", store=store, today=date(2025, 10, 3))  # opens October only
    run_cycle(outcome, "2025-11", store=store, today=date(2025, 11, 2))  # opens November
    run_cycle(outcome, "2025-10", store=store, review=True, today=date(2025, 11, 20))
    for period in ("2025-11", "2025-12", "2026-01", "2026-02"):
        run_cycle(outcome, period, store=store, today=date(2026, 11, 1))
    cycles = store.cycles("refer")
    november = next(c for c in cycles if c.period == "2025-11")
    assert "review of 2025-10 pending" in (november.extra.approach_reason or "")
    result = replay(outcome, cycles)
    assert len(result.rows) == 6 and result.differing == []


def test_a_replay_writes_nothing(demo_history: tuple[Store, list[CycleRecord]]) -> None:
    store, cycles = demo_history
    path = Path(store.url.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    replay(override_policy(demo_outcome(), {"choice": "order", "max_adjustments": 1}), cycles)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert store.cycles("referrals") == cycles


def test_json_rows(demo_history: tuple[Store, list[CycleRecord]]) -> None:
    _, cycles = demo_history
    row = replay(override_policy(demo_outcome(), {"max_adjustments": 2}), cycles).rows[3]
    data = row.to_json_dict()
    assert {"period", "recorded", "replayed", "reasons"} <= set(data)
    assert (data["period"], data["recorded"], data["replayed"]) == ("2025-12", "adjust", "switch")
    assert data["differs"] is True and data["recorded_reasons"] == row.recorded_reasons


def test_a_policy_file(tmp_path: Path) -> None:
    outcome = demo_outcome()
    nested = tmp_path / "nested.yaml"
    nested.write_text("policy:\n  max_adjustments: 2\n  choice: order\n")
    changed = load_policy(outcome, nested)
    assert (changed.policy.max_adjustments, changed.policy.choice) == (2, "order")
    assert changed.policy.sustain == outcome.policy.sustain  # the rest as declared
    bare = tmp_path / "bare.yaml"
    bare.write_text("sustain: 2\n")
    assert load_policy(outcome, bare).policy.sustain == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  sustain: 3\n  max_adjustmets: 2\n")
    with pytest.raises(DeclarationError) as caught:
        load_policy(outcome, bad)
    assert "bad.yaml:3" in str(caught.value) and "policy.max_adjustmets" in str(caught.value)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("policy:\n  choice: random\n")
    with pytest.raises(DeclarationError, match=r"wrong.yaml:2.*policy.choice"):
        load_policy(outcome, wrong)
