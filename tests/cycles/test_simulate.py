"""`radar simulate`: the policy on series shaped like a declaration's own data (cycles.simulate)."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest

from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.demo import demo_outcome
from cycles.errors import RadarError
from cycles.periods import Cadence, Period
from cycles.signals import D2
from cycles.simulate import read_baseline, simulate
from cycles.stats import xmr_limits

from conftest import months, write_declaration, write_monthly_csv

FLAT = [0.18, 0.19, 0.17, 0.18, 0.19, 0.18, 0.17, 0.18, 0.19, 0.18, 0.18, 0.17]
BEFORE = Period.parse("2025-09", Cadence.monthly)


@pytest.fixture
def declared(workdir: Path) -> Path:
    write_monthly_csv(workdir / "data" / "rate.csv", dict(zip(months("2024-09", 12), FLAT,
                                                               strict=True)))  # fmt: skip
    return write_declaration(workdir)


def test_the_baseline_is_read_through_the_connector(declared: Path) -> None:
    baseline = read_baseline(load_yaml(declared), BEFORE)
    assert baseline.periods == months("2024-09", 12)
    assert baseline.values == pytest.approx(FLAT)
    limits = xmr_limits(FLAT)
    assert limits is not None
    assert baseline.level == pytest.approx(limits.centre)
    assert baseline.sigma == pytest.approx(limits.moving_range / D2)
    assert not baseline.proportion and baseline.binomial_sd is None


def test_signals_and_switches_on_simulated_series(declared: Path) -> None:
    outcome = load_yaml(declared)
    baseline = read_baseline(outcome, BEFORE)
    sim = simulate(outcome, baseline, periods=6, series=60, policy_series=20)
    assert sim.sigma == pytest.approx(baseline.sigma)
    assert sim.unit_shift == pytest.approx({k: k_ * baseline.sigma for k, k_ in
                                            (("1", 1), ("2", 2), ("3", 3))})  # fmt: skip
    assert 0 <= sim.false_per_period < 0.1
    assert sim.false_per_year == pytest.approx(12 * sim.false_per_period)
    for shares in sim.caught.values():
        assert shares == sorted(shares)  # within 1 ≤ within 3 ≤ within 6
    assert sim.caught["1"][2] <= sim.caught["3"][2] and sim.caught["3"][2] > 0.8
    assert sim.target_shift == pytest.approx(0.30 - baseline.level)  # 16σ: always caught
    assert sim.target_caught == [1.0, 1.0, 1.0]
    assert sim.good_switched is not None and sim.null_kept is not None
    assert 0 <= sim.good_switched <= 1 and 0 <= sim.null_kept <= 1
    again = simulate(outcome, baseline, periods=6, series=60, policy_series=20)
    assert again == sim  # seeded


def test_decrease_shifts_go_down(workdir: Path) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", dict(zip(months("2024-09", 12), FLAT,
                                                               strict=True)))  # fmt: skip
    outcome = load_yaml(write_declaration(workdir, direction="decrease", target=0.1))
    sim = simulate(outcome, read_baseline(outcome, BEFORE), periods=3, series=40,
                   policy_series=0)  # fmt: skip
    assert sim.unit_shift["2"] < 0 and sim.target_shift is not None and sim.target_shift < 0
    assert sim.good_switched is None  # no policy runs asked for


def test_a_proportion_with_counts_has_binomial_noise() -> None:
    outcome = demo_outcome()
    baseline = read_baseline(outcome, BEFORE)
    assert baseline.proportion and baseline.binomial_sd is not None
    assert 0 < baseline.binomial_sd < baseline.sigma  # the rest varies between months
    sim = simulate(outcome, baseline, periods=3, series=40, policy_series=0)
    data = sim.to_json_dict()
    assert list(data)[:4] == ["false_per_period", "caught", "sigma", "unit_shift"]
    assert set(data["caught"]) == {"1", "2", "3"} and len(data["caught"]["2"]) == 3


def test_too_little_baseline(declared: Path) -> None:
    outcome = load_yaml(declared)
    with pytest.raises(RadarError, match=r"has 4 values in the 12 periods before 2025-01"):
        read_baseline(outcome, Period.parse("2025-01", Cadence.monthly))


def test_simulate_and_validate_on_the_command_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["simulate", "referrals", "--before", "2025-09", "--periods", "3", "--series", "40"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"false_per_period", "caught", "sigma", "unit_shift"} <= set(data)
    assert data["baseline"][0] == "2024-09" and data["series"] == 40
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "a rise of +0.00871 (2σ) in referral_rate is caught within 1 / 3 / 6 months" in out
    assert main([*argv[:2], "--periods", "0"]) == 2
    small = functools.partial(simulate, periods=3, series=40)  # what validate runs, smaller
    monkeypatch.setattr("cycles.simulate.simulate", small)
    assert main(["validate", "referrals", "--simulate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok ") and "false improvement signals on a stable process" in out


def test_a_declared_seasonality_is_simulated(workdir: Path) -> None:
    season = [0.02 * math.sin(2 * math.pi * m / 12) for m in range(12)]
    noise = [0.002 * ((i * 7) % 5 - 2) for i in range(24)]
    values = {p: 0.2 + season[i % 12] + noise[i] for i, p in enumerate(months("2023-09", 24))}
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    plain = load_yaml(write_declaration(workdir, baseline=24))
    path = workdir / "seasonal.yaml"
    path.write_text((workdir / "refer.yaml").read_text() + "  seasonality: 12\n")  # in policy:
    seasonal = load_yaml(path)
    baseline = read_baseline(seasonal, BEFORE)
    assert (
        len(baseline.values) == 24
        and baseline.index[0] == Period.parse("2023-09", Cadence.monthly).index
    )
    with_season = simulate(seasonal, baseline, periods=3, series=40, policy_series=0)
    without = simulate(plain, baseline, periods=3, series=40, policy_series=0)
    assert any("seasonal (additive factors, 12 periods)" in n for n in with_season.notes)
    assert with_season.sigma < without.sigma / 2  # the season is the line, not noise
    assert with_season.caught["2"][2] > 0.5
