"""The engine through `radar run`: successive periods form a real PDCA loop."""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cycles.choice import phase_effects
from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.engine import run_cycle
from cycles.periods import Cadence, Period
from cycles.policy import PolicyInput, decide
from cycles.record import CheckSummary, CycleRecord
from cycles.signals import detect
from cycles.stats import xmr_limits
from cycles.store import Store
from cycles.values import ApproachRef, DecisionKind, PeriodValue

from conftest import months, write_declaration, write_monthly_csv

# 12 flat baseline months, then a story: flat under the incentive, a broken month, a
# deterioration, an improvement under the nudge and the target held.
STORY: dict[str, float | None] = {
    m: 0.18 + 0.004 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-09", 12))
}
STORY |= {"2025-09": 0.181, "2025-10": 0.183, "2025-11": 0.179, "2025-12": 0.18, "2026-01": 0.182,
          "2026-02": 0.24, "2026-03": 0.31, "2026-04": 0.32, "2026-05": 0.33, "2026-06": 0.15,
          "2026-07": None, "2026-08": 0.31}  # fmt: skip
BROKEN = {"2025-11": 1}
RUN = months("2025-09", 12)


def run_json(*argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def reference(decl: Path, run: list[str] = RUN) -> list[tuple[str, str, ApproachRef]]:
    """The decisions the pure policy makes, bookkeeping written out independently of the engine:
    the signals judge each period against the 12 months before its approach started."""
    outcome = load_yaml(decl)
    rows = pd.read_csv(decl.parent / "data" / "rate.csv", parse_dates=["day"])
    rows["period"] = rows["day"].dt.strftime("%Y-%m")
    means = rows.groupby("period")["rate"].mean().to_dict()
    nulls = rows.groupby("period")["rate"].apply(lambda s: int(s.isna().sum())).to_dict()
    approach = ApproachRef(name="incentive", params={"usd": 20})
    start, adjusts, out = run[0], 0, []
    decided: list[CycleRecord] = []  # what each phase measured, for the evidence of a switch
    for label in run:
        period = Period.parse(label, Cadence.monthly)
        first = Period.parse(start, Cadence.monthly) - 12
        window = [str(first + i) for i in range(period.index - first.index + 1)]
        series = [None if pd.isna(means.get(p, None)) else means[p] for p in window]
        baseline = [v for p, v in zip(window, series, strict=True) if p < start and v is not None]
        evidence = detect(series, window, baseline_end=window.index(start), direction="increase",
                          rules=outcome.policy.signals)  # fmt: skip
        value = means.get(label)
        value = None if value is None or pd.isna(value) else value
        previous = [means.get(str(period - k)) for k in (2, 1)]
        baseline_periods = [p for p in window if p < start and means.get(p) is not None]
        record = CycleRecord(
            outcome="refer", period=label, cadence="monthly", target=0.3, approach=approach,
            result_value=value, checks=CheckSummary(failed=1 if nulls.get(label) else 0),
            limits=xmr_limits(baseline, baseline_periods),
            metrics={"rate": [PeriodValue(period=p, value=v) for p, v in zip(window, series,
                                                                             strict=True)]},
        )  # fmt: skip
        decision = decide(
            PolicyInput(
                metric="rate", period=label, direction="increase", target=0.3, value=value,
                previous_values=previous,
                failed_checks=["not null"] if nulls.get(label) else [],
                limits=xmr_limits(baseline), baseline_count=len(baseline), evidence=evidence,
                approach=approach,
                approaches=list(outcome.approaches), adjustments_in_row=adjusts,
                outcome="refer", phases=phase_effects([*decided, record], "rate"),
            )
        )  # fmt: skip
        record.decision = decision.kind
        decided.append(record)
        out.append((label, decision.kind.value, decision.next_approach))
        if decision.kind is DecisionKind.adjust:
            adjusts += 1
        elif decision.kind in (DecisionKind.keep, DecisionKind.achieved):
            adjusts = 0
        if decision.next_approach.name != approach.name:
            start, adjusts = str(period + 1), 0
        approach = decision.next_approach
    return out


@pytest.fixture
def decl(workdir: Path) -> Path:
    write_monthly_csv(workdir / "data" / "rate.csv", STORY, broken=BROKEN)
    return write_declaration(workdir)


def test_successive_periods_match_the_pure_policy(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = reference(decl)
    kinds = {kind for _, kind, _ in expected}
    assert kinds == {"adjust", "hold", "switch", "keep", "achieved"}, (
        expected
    )  # the story covers all
    got = []
    for label in RUN:
        data = run_json(str(decl), "--period", label, capsys=capsys)
        assert data["stages"] == ["result", "approach", "deployment", "assessment", "review"]
        got.append((label, data["decision"], ApproachRef(**data["next_approach"])))
    assert got == expected
    # the next cycle's approach is the stored review's plan
    history = Store().cycles("refer")
    for before, after in itertools.pairwise(history):
        assert after.approach == before.next_approach


# The same baseline, then a modest rise under the incentive that stays inside the limits.
CREEP = {m: STORY[m] for m in months("2024-09", 12)} | dict.fromkeys(RUN[:5], 0.195)


@pytest.mark.parametrize("signals", ["", "  signals: {rules: [point]}\n"])
def test_signals_of_the_policy_reach_the_decisions(
    workdir: Path, capsys: pytest.CaptureFixture[str], signals: str
) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", CREEP)
    decl = write_declaration(workdir)
    decl.write_text(decl.read_text() + signals)
    expected = reference(decl, RUN[:5])
    got = []
    for label in RUN[:5]:
        data = run_json(str(decl), "--period", label, capsys=capsys)
        got.append((label, data["decision"], ApproachRef(**data["next_approach"])))
        if data["decision"] == "keep":
            assert any(r.startswith("improvement signal: EWMA (λ=0.2) beyond its upper t limit")
                       for r in data["reasons"])  # fmt: skip
    assert got == expected
    kinds = [kind for _, kind, _ in got]
    # the default (ewma_t) sees the rise; the single point alone does not
    assert ("keep" in kinds) == (signals == ""), kinds


def test_json_contract(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(str(decl), "--period", "2025-09", capsys=capsys)
    for key in ("outcome", "period", "stages", "decision", "reasons", "approach", "next_approach",
                "result_value", "target", "checks", "limits"):  # fmt: skip
        assert key in data
    assert data["outcome"] == "refer" and data["period"] == "2025-09"
    assert data["approach"] == {"name": "incentive", "params": {"usd": 20}}
    assert data["checks"]["passed"] == 2 and data["checks"]["failed"] == 0
    assert set(data["limits"]) >= {"centre", "lower", "upper"}
    assert data["limits"]["lower"] < data["limits"]["centre"] < data["limits"]["upper"]
    assert data["result_value"] == pytest.approx(0.181)
    assert data["target"] == 0.3 and data["reasons"]


def test_limits_null_with_short_baseline(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", dict.fromkeys(months("2026-01", 10), 0.2))
    decl = write_declaration(workdir)
    data = run_json(str(decl), "--period", "2026-05", capsys=capsys)
    assert data["limits"] is None
    assert any("no signal can be claimed: 4 baseline periods" in r for r in data["reasons"])


def test_dry_run_records_nothing(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(str(decl), "--period", "2025-09", "--dry-run", capsys=capsys)
    assert data["decision"] == "adjust" and data["dry_run"] is True
    assert Store().cycles("refer") == []


def test_rerun_of_a_reviewed_period_runs_nothing(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_json(str(decl), "--period", "2025-09", capsys=capsys)
    again = run_json(str(decl), "--period", "2025-09", capsys=capsys)
    assert again["stages"] == [] and again["decision"] == first["decision"]
    assert len(Store().cycles("refer")) == 1


def test_review_again_only_for_the_latest_cycle(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(str(decl), "--period", "2025-09", capsys=capsys)
    again = run_json(str(decl), "--period", "2025-09", "--review", capsys=capsys)
    assert again["stages"] == ["assessment", "review"]
    run_json(str(decl), "--period", "2025-10", capsys=capsys)
    assert main(["run", str(decl), "--period", "2025-09", "--review"]) == 2
    assert "would rewrite history" in capsys.readouterr().err


def test_current_period_opens_then_closes(decl: Path) -> None:
    outcome, store = load_yaml(decl), Store()
    opened = run_cycle(outcome, "2026-08", store=store, today=date(2026, 8, 20))
    assert opened.stages == ["result", "approach", "deployment"] and opened.decision is None
    assert opened.standing is not None  # where July stood
    early = run_cycle(outcome, "2026-08", store=store, review=True, today=date(2026, 8, 25))
    assert early.stages == ["assessment", "review"] and early.decision is not None
    later = run_cycle(outcome, "2026-08", store=store, today=date(2026, 9, 2))
    assert later.stages == []


def test_campaign_is_kept_with_the_review(decl: Path) -> None:
    outcome, store = load_yaml(decl), Store()
    run_cycle(outcome, "2025-09", store=store)
    reviewed = run_cycle(outcome, "2025-10", store=store, campaign="spring")
    assert reviewed.extra.campaign == "spring"
    stored = {c.period: c for c in store.cycles("refer")}
    assert stored["2025-10"].extra.campaign == "spring"
    assert stored["2025-09"].extra.campaign is None
    assert "campaign" not in stored["2025-09"].to_json_dict()["extra"]


ACTIONS = """\
    actions:
      - name: ask
        type: python
        callable: "deliver:ask"
        kwargs: {usd: "{params.usd}", period: "{period}"}
"""


def _with_action(decl: Path, body: str) -> None:
    (decl.parent / "deliver.py").write_text(body)
    decl.write_text(decl.read_text().replace("    adjust: {usd: {step: 10, max: 40}}\n",
                                              "    adjust: {usd: {step: 10, max: 40}}\n" + ACTIONS))  # fmt: skip


COUNTING = """\
from pathlib import Path
LOG = Path(__file__).with_name("sent.log")
def ask(context, *, usd, period):
    with LOG.open("a") as f:
        f.write(f"{context.key} {usd} {period}\\n")
    return 120
"""


def test_actions_run_once_per_key_and_never_for_past_periods(decl: Path) -> None:
    _with_action(decl, COUNTING)
    outcome, store = load_yaml(decl), Store()
    past = run_cycle(outcome, "2025-09", store=store, today=date(2026, 11, 26))
    assert [a.status for a in past.actions] == ["skipped"]
    assert not (decl.parent / "sent.log").exists()
    current = run_cycle(outcome, "2026-08", store=store, today=date(2026, 8, 3))
    assert [(a.status, a.reach) for a in current.actions] == [("succeeded", 120.0)]
    run_cycle(outcome, "2026-08", store=store, review=True, today=date(2026, 8, 4))
    lines = (decl.parent / "sent.log").read_text().splitlines()
    # one delivery; its usd is what the 2025-09 review planned (20 -> 30)
    assert lines == ["refer/2026-08/incentive/ask 30 2026-08"]


FLAKY = """\
from pathlib import Path
FLAG = Path(__file__).with_name("fixed")
def ask(context, *, usd, period):
    if not FLAG.exists():
        raise ConnectionError("CRM unreachable")
    return 5
"""


def test_failed_action_fails_deployment_and_rerun_resumes(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_action(decl, FLAKY)
    outcome, store = load_yaml(decl), Store()
    with pytest.raises(Exception, match=r"deployment failed: action ask: .*CRM unreachable"):
        run_cycle(outcome, "2026-08", store=store, today=date(2026, 8, 3))
    stored = store.get_cycle("refer", "2026-08")
    assert stored is not None and stored.completed_stages == ["result", "approach"]
    assert stored.stage_runs[-1].status == "failed"
    (decl.parent / "fixed").touch()
    resumed = run_cycle(outcome, "2026-08", store=store, today=date(2026, 8, 4))
    assert resumed.stages == ["deployment"]
    assert [(a.status, a.attempts) for a in resumed.actions] == [("succeeded", 2)]


def test_failed_action_of_an_ended_period_is_a_deployment_gap(decl: Path) -> None:
    _with_action(decl, FLAKY)
    outcome, store = load_yaml(decl), Store()
    with pytest.raises(Exception, match="deployment failed"):
        run_cycle(outcome, "2025-10", store=store, today=date(2025, 10, 3))
    reviewed = run_cycle(outcome, "2025-10", store=store, today=date(2025, 11, 5))
    assert reviewed.decision is DecisionKind.hold
    assert any("deployment gap: action ask failed" in r for r in reviewed.reasons)


def test_history_lists_cycles(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for label in RUN[:3]:
        run_json(str(decl), "--period", label, capsys=capsys)
    assert main(["history", "refer", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["period"] for r in rows] == RUN[:3]
    assert [r["decision"] for r in rows] == ["adjust", "adjust", "hold"]
    assert rows[0]["stages"] == ["result", "approach", "deployment", "assessment", "review"]
    assert main(["history", "refer"]) == 0
    out = capsys.readouterr().out
    assert "2025-11" in out and "hold" in out
    assert (decl.parent / ".radar" / "radar.db").is_file()  # the embedded default
