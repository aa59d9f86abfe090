"""Drivers under the result: declared as a tree, each node assessed, deployment gaps held."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.drivers import DriverState
from cycles.engine import run_cycle
from cycles.periods import Cadence, Period
from cycles.policy import PolicyInput, decide
from cycles.stats import xmr_limits
from cycles.store import Store
from cycles.values import ApproachRef, DecisionKind

from conftest import month_days, months

BASELINE = months("2024-09", 12)  # 12 baseline months before the first reviewed one
RATE = [0.18, 0.19, 0.17, 0.18, 0.19, 0.18, 0.17, 0.18, 0.19, 0.18, 0.18, 0.17]
ASKS = [430, 425, 440, 428, 433, 436, 422, 431, 429, 438, 426, 434]  # per row; target 400
PROMOTERS = [0.36, 0.35, 0.37, 0.36, 0.36, 0.35, 0.37, 0.36, 0.35, 0.36, 0.37, 0.36]
OPENS = [0.5, 0.52, 0.49, 0.51, 0.5, 0.5, 0.52, 0.49, 0.51, 0.5, 0.5, 0.51]

DECLARATION = """\
outcome: refer
title: Customers refer us
cadence: monthly
result:
  metric: rate
  target: 0.30
  drivers:
    - metric: asks
      target: 400
      deployment: true
      drivers:
        - metric: opens
          target: 0.6
    - metric: promoters
      target: 0.40
metrics:
  rate: {connector: crm, period: day, value: rate}
  asks: {connector: crm, period: day, value: asks}
  opens: {connector: crm, period: day, value: opens}
  promoters: {connector: crm, period: day, value: promoters}
connectors:
  crm: {type: csv, path: data/crm.csv}
checks:
  asks:
    - expect_column_values_to_not_be_null: {column: asks}
approaches:
  - name: incentive
    params: {usd: 20}
    adjust: {usd: {step: 10, max: 60}}
  - name: nudge
    params: {asks: 2}
policy:
  sustain: 3
  baseline_periods: 12
  max_adjustments: 3
"""

Month = tuple[float, float | None, float, float]  # rate, asks, opens, promoters


def write_data(directory: Path, reviewed: dict[str, Month]) -> None:
    """Two rows a month: the baseline above, then `reviewed` months; each row holds the mean."""
    series: dict[str, Month] = {
        m: (RATE[i], ASKS[i], OPENS[i], PROMOTERS[i]) for i, m in enumerate(BASELINE)
    }
    series |= reviewed
    path = directory / "data" / "crm.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "rate", "asks", "opens", "promoters"])
        for label, (rate, asks, opens, promoters) in series.items():
            for day in month_days(Period.parse(label, Cadence.monthly), 2):
                writer.writerow([day, rate, "" if asks is None else asks, opens, promoters])


@pytest.fixture
def decl(workdir: Path) -> Path:
    path = workdir / "refer.yaml"
    path.write_text(DECLARATION)
    return path


# -- declaration -------------------------------------------------------------------------------

# (id, old text, new text, line marker in the new text, key, message substring)
BAD = [
    ("driver names no metric", "    - metric: asks\n", "    - metric: askz\n", "metric: askz",
     "result.drivers[0].metric", "'askz' is not a key of metrics (did you mean 'asks'?)"),
    ("nested driver names no metric", "        - metric: opens", "        - metric: clicks",
     "metric: clicks", "result.drivers[0].drivers[0].metric", "'clicks' is not a key of metrics"),
    ("the result metric as its own driver", "    - metric: promoters", "    - metric: rate",
     "metric: rate\n      target: 0.40", "result.drivers[1].metric", "'rate' is the result metric"),
    ("a driver twice in the tree", "    - metric: promoters", "    - metric: opens",
     "metric: opens\n      target: 0.40", "result.drivers[1].metric",
     "'opens' is already a driver at result.drivers[0].drivers[0]"),
    ("a driver without a target", "      target: 400\n", "", "    - metric: asks",
     "result.drivers[0].target", "required key is missing"),
    ("unknown key in a driver", "      deployment: true", "      deployed: true", "deployed:",
     "result.drivers[0].deployed", "unknown key"),
    ("deployment is a yes or no", "      deployment: true", "      deployment: often", "often",
     "result.drivers[0].deployment", "valid boolean"),
    ("deployment_gap is a share", "  max_adjustments: 3", "  max_adjustments: 3\n  deployment_gap: 1.5",
     "deployment_gap", "policy.deployment_gap", "less than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "marker", "key", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_driver_declaration(
    decl: Path, capsys: pytest.CaptureFixture[str],
    old: str, new: str, marker: str, key: str, message: str,
) -> None:  # fmt: skip
    write_data(decl.parent, {})
    text = decl.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    decl.write_text(text)
    line = text[: text.index(marker)].count("\n") + 1
    assert main(["validate", str(decl)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"radar: {decl}:{line}: {key}: "), err
    assert message in err and err.count("\n") == 1, err


def test_the_python_form_builds_the_same_tree(decl: Path) -> None:
    from cycles.declaration import Outcome

    loaded = load_yaml(decl)
    built = Outcome.model_validate(loaded.model_dump(mode="python"))
    assert built.result == loaded.result
    nodes = [(spec.metric, parent, depth) for _, spec, parent, depth in built.result.driver_nodes()]
    assert nodes == [("asks", None, 1), ("opens", "asks", 2), ("promoters", None, 1)]


# -- assessment --------------------------------------------------------------------------------


def test_assessment_evaluates_every_node(decl: Path) -> None:
    # asks jump far above their baseline; opens and promoters stay put
    write_data(decl.parent, {"2025-09": (0.185, 820, 0.5, 0.36)})
    outcome = load_yaml(decl)
    record = run_cycle(outcome, "2025-09", store=Store())
    nodes = record.extra.drivers
    assert [(n.metric, n.parent, n.depth) for n in nodes] == [
        ("asks", None, 1), ("opens", "asks", 2), ("promoters", None, 1),
    ]  # fmt: skip
    by_metric = {n.metric: n for n in nodes}
    for name, node in by_metric.items():
        spec = next(s for _, s, _, _ in outcome.result.driver_nodes() if s.metric == name)
        assert node.target == spec.target and node.deployment == spec.deployment
        # stored like the result metric: per period, over the same window
        assert [v.period for v in record.metrics[name]] == [
            v.period for v in record.metrics["rate"]
        ]
        assert node.value is not None
        assert node.value == pytest.approx(record.metrics[name][-1].value)
        assert node.share_of_target == pytest.approx(node.value / node.target)
        assert node.met == (node.value >= node.target)

    asks = by_metric["asks"]
    baseline = xmr_limits(ASKS)
    assert baseline is not None and baseline.upper < 820
    assert asks.moved == "improved" and asks.moved_vs == "baseline limits"
    assert asks.limits is not None and asks.limits.upper == pytest.approx(baseline.upper)
    assert by_metric["opens"].moved == "flat" and by_metric["opens"].met is False


def test_a_driver_without_baseline_is_compared_with_its_previous_period(decl: Path) -> None:
    write_data(decl.parent, {"2025-09": (0.18, 430, 0.5, 0.36), "2025-10": (0.18, 431, 0.7, 0.36)})
    decl.write_text(decl.read_text().replace("baseline_periods: 12", "baseline_periods: 3"))
    outcome = load_yaml(decl)
    store = Store()
    run_cycle(outcome, "2025-09", store=store)
    record = run_cycle(outcome, "2025-10", store=store)
    opens = next(n for n in record.extra.drivers if n.metric == "opens")
    assert opens.limits is None and opens.moved_vs == "previous period"
    assert opens.moved == "improved"  # 0.5 -> 0.7


def test_a_driver_check_that_fails_holds_like_the_results(decl: Path) -> None:
    write_data(decl.parent, {"2025-09": (0.185, None, 0.5, 0.36)})
    record = run_cycle(load_yaml(decl), "2025-09", store=Store())
    assert record.decision is DecisionKind.hold
    assert any("not_be_null on asks" in r for r in record.reasons)


# -- review ------------------------------------------------------------------------------------

QUOTE = (
    "result flat; driver `asks` reached 40 % of its target: deployment gap, not a failed approach"
)


def test_deployment_driver_far_below_target_holds_instead_of_adjusting(decl: Path) -> None:
    write_data(decl.parent, {"2025-09": (0.18, 160, 0.5, 0.36), "2025-10": (0.18, 240, 0.5, 0.36)})
    outcome, store = load_yaml(decl), Store()
    held = run_cycle(outcome, "2025-09", store=store)
    assert held.decision is DecisionKind.hold
    assert QUOTE in held.reasons
    assert held.next_approach == held.approach  # the approach is not judged
    assert "asks at 40 % of target" in (held.extra.summary or "")
    # 60 % of the target is short, but not far enough below it for a deployment gap
    judged = run_cycle(outcome, "2025-10", store=store)
    assert judged.decision is DecisionKind.adjust
    assert not any("deployment gap" in r for r in judged.reasons)


def test_the_threshold_is_a_policy_key(decl: Path) -> None:
    write_data(decl.parent, {"2025-09": (0.18, 240, 0.5, 0.36)})
    decl.write_text(decl.read_text() + "  deployment_gap: 0.7\n")
    record = run_cycle(load_yaml(decl), "2025-09", store=Store())
    assert record.decision is DecisionKind.hold
    assert any(
        "driver `asks` reached 60 % of its target: deployment gap" in r for r in record.reasons
    )


def test_deployment_gap_holds_instead_of_switching(decl: Path) -> None:
    # a deterioration signal would switch; the approach was not carried out, so it holds
    write_data(decl.parent, {"2025-09": (0.10, 100, 0.5, 0.36)})
    record = run_cycle(load_yaml(decl), "2025-09", store=Store())
    assert record.decision is DecisionKind.hold
    gap = "result deteriorated; driver `asks` reached 25 % of its target: deployment gap"
    assert any(r.startswith(gap) for r in record.reasons)


def test_a_driver_that_is_not_deployment_never_holds(decl: Path) -> None:
    # promoters at a tenth of their target: a missed driver, but the approach was deployed
    write_data(decl.parent, {"2025-09": (0.18, 430, 0.5, 0.04)})
    record = run_cycle(load_yaml(decl), "2025-09", store=Store())
    assert record.decision is DecisionKind.adjust


def test_a_met_target_is_kept_whatever_the_drivers(decl: Path) -> None:
    write_data(decl.parent, {"2025-09": (0.35, 100, 0.5, 0.36)})
    assert run_cycle(load_yaml(decl), "2025-09", store=Store()).decision is DecisionKind.keep


def test_reasons_name_the_drivers_that_moved_and_those_that_did_not(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_data(decl.parent, {"2025-09": (0.185, 820, 0.5, 0.36)})
    assert main(["run", str(decl), "--period", "2025-09", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    moved = next(r for r in data["reasons"] if r.startswith("drivers that moved"))
    still = next(r for r in data["reasons"] if r.startswith("drivers that did not move"))
    assert "`asks` improved" in moved and "`opens`" not in moved
    assert "`opens`" in still and "`promoters`" in still
    assert data["decision"] == "adjust"  # drivers moved, the result did not: judge the approach


def test_policy_names_each_gap() -> None:
    limits = xmr_limits(RATE)
    asks = DriverState(
        metric="asks", parent=None, depth=1, target=400, direction="increase", deployment=True,
        value=160, share_of_target=0.4, met=False, moved="worsened", moved_vs="baseline limits",
    )  # fmt: skip
    inp = PolicyInput(
        metric="rate", period="2025-09", direction="increase", target=0.3, value=0.18,
        limits=limits, baseline_count=12, approach=ApproachRef(name="a"),
        approaches=[{"name": "a"}, {"name": "b"}], adjustments_in_row=5,
        deployment_gaps=["action ask failed", asks], drivers=[asks],
    )  # fmt: skip
    decision = decide(inp)
    assert decision.kind is DecisionKind.hold
    assert "deployment gap: action ask failed" in decision.reasons
    assert QUOTE in decision.reasons
    assert any(r.startswith("drivers that moved: `asks` worsened") for r in decision.reasons)
