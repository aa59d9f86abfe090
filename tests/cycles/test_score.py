"""The RADAR self-score: each attribute's rule, the bands, and the score in the history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cycles.cli import main
from cycles.declaration import Outcome
from cycles.drivers import DriverState
from cycles.record import CheckSummary, CycleRecord
from cycles.score import BANDS, ELEMENTS, band, round5, score
from cycles.stats import xmr_limits
from cycles.values import ActionRun, ApproachRef, DecisionKind, PeriodValue, SignalKind

from conftest import months, write_declaration, write_monthly_csv

BASELINE = months("2024-09", 12)
FLAT = [0.18, 0.19, 0.17, 0.18, 0.19, 0.18, 0.17, 0.18, 0.19, 0.18, 0.18, 0.17]
LIMITS = xmr_limits(FLAT, BASELINE)  # centre 0.18, limits about [0.154, 0.206]
INCENTIVE = ApproachRef(name="incentive", params={"usd": 20})
ADJUSTED = ApproachRef(name="incentive", params={"usd": 30})


def outcome(**result: Any) -> Outcome:
    return Outcome.model_validate({
        "outcome": "refer", "title": "Customers refer us", "cadence": "monthly",
        "result": {"metric": "rate", "target": 0.3, **result},
        "metrics": {m: {"connector": "crm", "period": "day", "value": m}
                    for m in ("rate", "asks", "promoters")},
        "connectors": {"crm": {"type": "csv", "path": "crm.csv"}},
        "approaches": [
            {"name": "incentive", "rationale": "paid referrals", "params": {"usd": 20},
             "adjust": {"usd": {"step": 10, "max": 60}},
             "actions": [{"name": "offer", "type": "python", "callable": "x:y"}]},
            {"name": "bare"},
        ],
    })  # fmt: skip


TREE = outcome(drivers=[
    {"metric": "asks", "target": 400, "deployment": True},
    {"metric": "promoters", "target": 0.4},
])  # fmt: skip


def driver(
    metric: str, value: float | None, target: float, deployment: bool = False
) -> DriverState:
    return DriverState(
        metric=metric, parent=None, depth=1, target=target, direction="increase",
        deployment=deployment, value=value,
        share_of_target=None if value is None else value / target,
        met=None if value is None else value >= target, moved="flat", moved_vs="baseline limits",
    )  # fmt: skip


ASKS_MET = driver("asks", 430, 400, deployment=True)
PROMOTERS = driver("promoters", 0.36, 0.4)


def cycle(
    value: float | None = 0.18,
    *,
    before: tuple[float | None, ...] = (),
    signal: SignalKind = SignalKind.none,
    limits: bool = True,
    passed: int = 2,
    failed: int = 0,
    decision: DecisionKind = DecisionKind.adjust,
    changed: bool | None = None,
    approach: ApproachRef = INCENTIVE,
    actions: tuple[ActionRun, ...] = (),
    drivers: tuple[DriverState, ...] = (ASKS_MET, PROMOTERS),
) -> CycleRecord:
    """A reviewed cycle after the 12 baseline months and the `before` months of its approach."""
    labels = months("2024-09", 12 + len(before) + 1)
    series = [*FLAT, *before, value]
    if changed is None:
        changed = decision in (DecisionKind.adjust, DecisionKind.switch)
    return CycleRecord(
        outcome="refer", period=labels[-1], cadence="monthly", status="reviewed",
        target=0.3, result_metric="rate", result_value=value, signal=signal,
        limits=LIMITS if limits else None, decision=decision, approach=approach,
        next_approach=ADJUSTED if changed else approach, actions=list(actions),
        metrics={"rate": [PeriodValue(period=p, value=v) for p, v in zip(labels, series, strict=True)]},
        checks=CheckSummary(passed=passed, failed=failed),
        extra={"drivers": [d.model_dump(mode="json") for d in drivers]},
    )  # fmt: skip


def earlier(
    implemented: int | None = 100,
    signal: SignalKind = SignalKind.none,
    approach: ApproachRef = INCENTIVE,
) -> CycleRecord:
    extra = {} if implemented is None else {"score": {"attributes": {"implemented": implemented}}}
    return CycleRecord(
        outcome="refer", period="2024-01", cadence="monthly", target=0.3, status="reviewed",
        decision=DecisionKind.adjust, signal=signal, approach=approach, extra=extra,
    )  # fmt: skip


def ran(status: str, reach: float | None = None) -> ActionRun:
    return ActionRun(name="offer", type="python", key="k", status=status, reach=reach)


CASES: list[tuple[str, str, Outcome, CycleRecord, list[CycleRecord], int]] = [
    # Results: trend
    ("trend: no value", "trend", TREE, cycle(None, decision=DecisionKind.hold), [], 0),
    ("trend: deterioration", "trend", TREE, cycle(0.12, signal=SignalKind.deterioration), [], 0),
    ("trend: flat", "trend", TREE, cycle(0.185), [], 25),
    ("trend: no baseline", "trend", TREE, cycle(0.185, limits=False), [], 25),
    ("trend: better than the centre 3 periods", "trend", TREE, cycle(0.19, before=(0.19, 0.2)), [], 50),
    ("trend: better 2 periods only", "trend", TREE, cycle(0.19, before=(0.17, 0.2)), [], 25),
    ("trend: improvement signal", "trend", TREE, cycle(0.25, signal=SignalKind.improvement), [], 75),
    ("trend: improvement twice", "trend", TREE, cycle(0.25, signal=SignalKind.improvement),
     [earlier(signal=SignalKind.improvement)], 100),
    # Results: target
    ("target: met sustain periods", "target", TREE, cycle(0.31, before=(0.3, 0.32)), [], 100),
    ("target: met now", "target", TREE, cycle(0.31, before=(0.2, 0.32)), [], 75),
    ("target: half way from the centre", "target", TREE, cycle(0.25), [], 50),
    ("target: a quarter of the way", "target", TREE, cycle(0.21), [], 25),
    ("target: barely off the centre", "target", TREE, cycle(0.185), [], 0),
    ("target: no baseline to measure from", "target", TREE, cycle(0.25, limits=False), [], 0),
    # Results: comparisons, segmentation
    ("comparisons: all four", "comparisons", TREE, cycle(), [earlier()], 100),
    ("comparisons: target and baseline", "comparisons", outcome(), cycle(drivers=()), [], 50),
    ("comparisons: target only", "comparisons", outcome(), cycle(limits=False, drivers=()), [], 25),
    ("segmentation: every driver measured", "segmentation", TREE, cycle(), [], 100),
    ("segmentation: half measured", "segmentation", TREE,
     cycle(drivers=(ASKS_MET, driver("promoters", None, 0.4))), [], 50),
    ("segmentation: no drivers", "segmentation", outcome(), cycle(drivers=()), [], 0),
    # Approach
    ("sound: rationale, params, adjust, actions", "sound", TREE, cycle(), [], 100),
    ("sound: a bare approach", "sound", TREE, cycle(approach=ApproachRef(name="bare")), [], 0),
    ("integrated: deployment driver", "integrated", TREE, cycle(), [], 100),
    ("integrated: drivers only", "integrated", TREE, cycle(drivers=(PROMOTERS,)), [], 50),
    ("integrated: no drivers", "integrated", outcome(), cycle(drivers=()), [], 0),
    # Deployment: implemented
    ("implemented: deployment driver met", "implemented", TREE, cycle(), [], 100),
    ("implemented: driver at 80 %", "implemented", TREE,
     cycle(drivers=(driver("asks", 320, 400, True),)), [], 75),
    ("implemented: driver at 60 %", "implemented", TREE,
     cycle(drivers=(driver("asks", 240, 400, True),)), [], 50),
    ("implemented: driver at 40 %: a gap", "implemented", TREE,
     cycle(drivers=(driver("asks", 160, 400, True),), decision=DecisionKind.hold), [], 25),
    ("implemented: actions with reach", "implemented", outcome(),
     cycle(drivers=(), actions=(ran("succeeded", 900),)), [], 100),
    ("implemented: actions without reach", "implemented", outcome(),
     cycle(drivers=(), actions=(ran("succeeded"),)), [], 75),
    ("implemented: a failed action", "implemented", outcome(),
     cycle(drivers=(), actions=(ran("failed"),), decision=DecisionKind.hold), [], 0),
    ("implemented: the weakest evidence counts", "implemented", TREE,
     cycle(actions=(ran("succeeded", 900),), drivers=(driver("asks", 240, 400, True),)), [], 50),
    ("implemented: no evidence (skipped)", "implemented", outcome(),
     cycle(drivers=(), actions=(ran("skipped"),)), [], 0),
    # Deployment: systematic
    ("systematic: first cycle", "systematic", TREE, cycle(), [], 25),
    ("systematic: four in a row", "systematic", TREE, cycle(), [earlier()] * 3, 100),
    ("systematic: capped at four", "systematic", TREE, cycle(), [earlier()] * 6, 100),
    ("systematic: a gap before breaks the run", "systematic", TREE, cycle(),
     [earlier(), earlier(25), earlier()], 50),
    ("systematic: another approach before", "systematic", TREE, cycle(),
     [earlier(approach=ApproachRef(name="bare")), earlier()], 50),
    ("systematic: the approach before it does not count", "systematic", TREE, cycle(),
     [earlier(), earlier(approach=ApproachRef(name="bare"))], 25),
    ("systematic: unscored cycles do not count", "systematic", TREE, cycle(), [earlier(None)], 25),
    ("systematic: not carried out now", "systematic", TREE,
     cycle(drivers=(driver("asks", 160, 400, True),), decision=DecisionKind.hold), [earlier()], 0),
    # Assessment & Refinement
    ("measurement: checks passed, limits", "measurement", TREE, cycle(), [], 100),
    ("measurement: checks passed, no limits", "measurement", TREE, cycle(limits=False), [], 75),
    ("measurement: no checks declared", "measurement", TREE, cycle(passed=0), [], 50),
    ("measurement: a check failed", "measurement", TREE,
     cycle(failed=1, decision=DecisionKind.hold), [], 0),
    ("learning: signal and drivers", "learning", TREE, cycle(), [], 100),
    ("learning: signal only", "learning", outcome(), cycle(drivers=()), [], 75),
    ("learning: no baseline", "learning", TREE, cycle(limits=False), [], 50),
    ("learning: bad data", "learning", TREE, cycle(failed=1, decision=DecisionKind.hold), [], 25),
    ("improvement: off track, changed", "improvement", TREE, cycle(), [], 100),
    ("improvement: on track, kept", "improvement", TREE,
     cycle(0.31, decision=DecisionKind.keep), [], 100),
    ("improvement: deployment gap, kept", "improvement", TREE,
     cycle(drivers=(driver("asks", 160, 400, True),), decision=DecisionKind.hold), [], 75),
    ("improvement: bad data, kept", "improvement", TREE,
     cycle(failed=1, decision=DecisionKind.hold), [], 50),
    ("improvement: off track, not changed", "improvement", TREE,
     cycle(decision=DecisionKind.hold, changed=False), [], 25),
    ("improvement: on track, changed anyway", "improvement", TREE,
     cycle(0.31, decision=DecisionKind.keep, changed=True), [], 25),
]  # fmt: skip


@pytest.mark.parametrize(
    ("attribute", "declared", "record", "history", "points"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_attribute(
    attribute: str, declared: Outcome, record: CycleRecord, history: list[CycleRecord], points: int
) -> None:
    result = score(declared, record, history)
    assert result["attributes"][attribute] == points, result["evidence"][attribute]
    assert result["evidence"][attribute]  # every score says why


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_elements_total_and_band_follow_the_attributes(case: tuple[Any, ...]) -> None:
    _, _, declared, record, history, _ = case
    result = score(declared, record, history)
    attributes = result["attributes"]
    assert set(attributes) == {name for names in ELEMENTS.values() for name in names}
    for element, names in ELEMENTS.items():
        mean = sum(attributes[n] for n in names) / len(names)
        assert abs(result[element] - mean) <= 2.5 and result[element] % 5 == 0
    enablers = (result["approach"] + result["deployment"] + result["assessment"]) / 3
    assert abs(result["total"] - (result["results"] + enablers) / 2) <= 2.5
    for key in (*ELEMENTS, "total"):
        assert 0 <= result[key] <= 100 and result[key] % 5 == 0
    assert result["band"] == band(result["total"])
    json.dumps(result)  # stored as JSON in the history


@pytest.mark.parametrize(
    ("total", "name"),
    [(0, "no evidence"), (10, "no evidence"), (15, "limited evidence"), (35, "limited evidence"),
     (40, "evidence"), (60, "evidence"), (65, "clear evidence"), (85, "clear evidence"),
     (90, "comprehensive evidence"), (100, "comprehensive evidence")],
)  # fmt: skip
def test_bands(total: int, name: str) -> None:
    assert band(total) == name
    assert name in {n for _, n in BANDS}


def test_round5_halves_up() -> None:
    assert [round5(x) for x in (0, 2.4, 2.5, 12.5, 62.5, 97.5, 100)] == [0, 0, 5, 15, 65, 100, 100]


def test_a_better_cycle_scores_higher() -> None:
    weak = score(TREE, cycle(failed=1, decision=DecisionKind.hold), [])
    achieved = cycle(
        0.31, before=(0.3, 0.32), signal=SignalKind.improvement, decision=DecisionKind.achieved
    )
    strong = score(TREE, achieved, [earlier(signal=SignalKind.improvement)] * 3)
    assert weak["total"] < strong["total"]
    assert strong["band"] == "comprehensive evidence"


# -- the score in the history ------------------------------------------------------------------

STORY = dict(zip(BASELINE, FLAT, strict=True)) | {"2025-09": 0.18, "2025-10": 0.25}


def test_score_in_history_json_and_table(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", STORY)
    decl = write_declaration(workdir)
    for period in ("2025-09", "2025-10"):
        assert main(["run", str(decl), "--period", period, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["score"] == data["extra"]["score"]
    assert main(["history", "refer", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["decision"] for r in rows] == ["adjust", "keep"]
    for row in rows:
        for key in ("results", "approach", "deployment", "assessment", "total", "band", "evidence"):
            assert key in row["score"] and row["score"] == row["extra"]["score"]
        assert set(row["score"]["evidence"]) == set(row["score"]["attributes"])
    # the keep on an improvement signal shows more evidence of results than the adjust
    assert rows[1]["score"]["results"] > rows[0]["score"]["results"]
    assert main(["history", "refer"]) == 0
    table = capsys.readouterr().out
    assert "score" in table
    for row in rows:
        assert f"{row['score']['total']} %" in table


def test_an_open_cycle_has_no_score(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", STORY)
    decl = write_declaration(workdir)
    assert main(["run", str(decl), "--json", "--dry-run"]) == 0  # the current period: open
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] is None and data["score"] is None
