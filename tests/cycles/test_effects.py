"""The current approach's estimated effect with a 90 % interval (issue 13, part 3): its coverage
on simulated phases, its text, the beta-binomial probability, and where it shows (the JSON, the
reasons, the review artifact, the report's phases)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cycles.artifacts import md_text, review_markdown
from cycles.baseline import Spec
from cycles.cli import main
from cycles.effects import Effect, estimate
from cycles.report import build_report
from cycles.report.vega import html_page
from cycles.signals import beta_binomial_improvement
from cycles.store import Store

from conftest import months, write_declaration, write_monthly_csv


def _covered(rng: np.random.Generator, runs: int, n: int, season: int | None = None) -> int:
    """Intervals (of `runs`) that hold the true effect, phases of 1 to 12 periods."""
    hits = 0
    model = Spec(seasonality=season)
    for _ in range(runs):
        t = int(rng.integers(1, 13))
        effect = float(rng.normal(0, 2))
        x = rng.normal(5.0, 1.5, n + t)
        if season:
            x += 3 * np.cos(2 * np.pi * np.arange(n + t) / season)
        x[n:] += effect
        found = estimate(list(x), baseline_end=n, direction="increase", index=list(range(n + t)),
                         model=model)  # fmt: skip
        assert found is not None and found.periods == t
        hits += found.lower <= effect <= found.upper
    return hits


@pytest.mark.parametrize(("n", "season", "runs"), [(12, None, 2000), (6, None, 1000),
                                                   (36, 12, 600)])  # fmt: skip
def test_the_90_percent_interval_covers_the_true_effect(
    n: int, season: int | None, runs: int
) -> None:
    # seeded: deterministic. Coverage within 3 binomial standard errors of 90 %
    hits = _covered(np.random.default_rng(2026 + n), runs, n, season)
    tolerance = 3 * math.sqrt(0.9 * 0.1 / runs)
    assert abs(hits / runs - 0.9) <= tolerance, hits / runs


def test_the_interval_by_hand() -> None:
    # baseline 1, 3, 1, 3, 1, 3 (mean 2, SS 6, 5 df), phase 4, 6 (mean 5, SS 2, 1 df):
    # σ² = 8 / 6, se = σ √(1/2 + 1/6), t(0.95, 6 df) = 1.94318
    found = estimate([1, 3, 1, 3, 1, 3, 4, 6], baseline_end=6, direction="increase",
                     approach="nudge")  # fmt: skip
    assert found is not None
    se = math.sqrt(8 / 6) * math.sqrt(1 / 2 + 1 / 6)
    assert (found.estimate, found.se, found.df) == (pytest.approx(3), pytest.approx(se), 6)
    assert found.lower == pytest.approx(3 - 1.9431802805 * se)
    assert found.upper == pytest.approx(3 + 1.9431802805 * se)
    assert found.reason() == "nudge: +3.0 (90 % interval +1.2 to +4.8) over 2 periods"
    # missing values are skipped; too short a baseline gives none
    assert estimate([1, 3, None, 1, 3, 1, 3, 4, None], baseline_end=7, direction="increase") == (
        estimate([1, 3, 1, 3, 1, 3, 4], baseline_end=6, direction="increase")
    )
    assert estimate([1, 3, 1, 3, 1, 4], baseline_end=5, direction="increase") is None
    assert estimate([1, 3, 1, 3, 1, 3, None], baseline_end=6, direction="increase") is None


def test_the_text() -> None:
    effect = Effect(
        estimate=0.1134, lower=0.0912, upper=0.1321, periods=6, approach="promoter-nudge"
    )
    assert effect.reason() == "promoter-nudge: +0.11 (90 % interval +0.09 to +0.13) over 6 periods"
    small = Effect(estimate=-0.0034, lower=-0.0071, upper=0.0003, periods=1, probability=0.04)
    assert small.text() == (
        "-0.003 (90 % interval -0.007 to +0.000) over 1 period, probability of improvement 0.04 "
        "(beta-binomial)"
    )
    flat = Effect(estimate=-1e-17, lower=-1e-17, upper=-1e-17, periods=3)
    assert flat.text() == "+0.0000 (90 % interval +0.0000 to +0.0000) over 3 periods"


def test_probability_of_improvement_with_counts() -> None:
    base = [(2000.0, 10_000.0)] * 6
    phase = [(2080.0, 10_000.0), (2100.0, 10_000.0)]
    counts = [*base, *phase]
    rates = [s / n for s, n in counts]
    found = estimate(rates, baseline_end=6, direction="increase", counts=counts)
    assert found is not None and found.probability is not None
    # no overdispersion here (φ = 1): the pooled counts as they are
    expected = beta_binomial_improvement(base, (4180.0, 20_000.0))
    assert found.probability == pytest.approx(expected) and expected > 0.99
    worse = estimate(rates, baseline_end=6, direction="decrease", counts=counts)
    assert worse is not None and worse.probability == pytest.approx(1 - expected)


# -- where it shows ----------------------------------------------------------------------------------

BASE = {m: 0.18 + 0.004 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-09", 12))}
LIFT = dict(zip(months("2025-09", 4), [0.2, 0.21, 0.205, 0.215], strict=True))


def run_json(*argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_review_carries_the_effect(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", BASE | LIFT, broken={"2025-12": 1})
    decl = write_declaration(workdir)
    got = [run_json(str(decl), "--period", p, capsys=capsys) for p in months("2025-09", 4)]
    effects = [d["effect"] for d in got]
    assert [e["periods"] for e in effects] == [1, 2, 3, 3]  # 2025-12 failed a check: left out
    assert got[-1]["decision"] == "hold"
    for data, effect in zip(got, effects, strict=True):
        assert set(effect) >= {"estimate", "lower", "upper", "periods"}
        assert effect["lower"] < effect["estimate"] < effect["upper"]
        assert effect == data["extra"]["effect"]
        assert data["reasons"][-1].startswith("incentive: +0.0")
        assert data["reasons"][-1].endswith(f"over {effect['periods']} period" +
                                            ("s" if effect["periods"] > 1 else ""))  # fmt: skip
    baseline_mean = sum(BASE.values()) / 12
    assert effects[2]["estimate"] == pytest.approx(
        (0.2 + 0.21 + 0.205) / 3 - baseline_mean,
        abs=1e-4,  # the csv rows' rounding
    )
    # the review artifact and the report's phases show it
    record = Store().cycles("refer")[-2]
    shown = md_text(f"incentive: {Effect(**effects[2]).text()}")
    assert f"| effect | {shown} |" in review_markdown(record)
    report = build_report(Store().cycles("refer"))
    phase = next(p for p in report.phases if p.approach == "incentive")
    assert phase.effect == Effect(**effects[3]).text()
    assert phase.effect in html_page(report)


def test_the_artifact_escapes_the_approach_name() -> None:
    from cycles.record import CycleRecord

    effect = Effect(estimate=1.0, lower=0.5, upper=1.5, periods=2, approach="*bold* [x](y)")
    record = CycleRecord(outcome="o", period="2026-01", cadence="monthly", target=1.0,
                         extra={"effect": effect.model_dump(mode="json")})  # fmt: skip
    row = next(line for line in review_markdown(record).splitlines() if line.startswith("| effect"))
    expected = r"\*bold\* \[x\]\(y\): +1.0 \(90 % interval +0.5 to +1.5\) over 2 periods"
    assert row == f"| effect | {expected} |"
