"""Seasonal and trended baselines through the engine and `radar validate` (issue 13, part 2).

Three years of a monthly rate with a December peak (+0.10 on 0.20): with `policy.seasonality: 12`
the December review is judged against December's centre line, so the peak alone is no
improvement signal; without it the plain chart calls the peak one and keeps the approach.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from cycles.cli import main
from cycles.declaration import load_yaml
from cycles.errors import DeclarationError
from cycles.report import build_report
from cycles.report.vega import html_page
from cycles.store import Store

from conftest import months, write_declaration, write_monthly_csv

_RNG = random.Random(13)
NOISE = [round(_RNG.gauss(0, 0.004), 4) for _ in range(60)]  # seeded, not seasonal
MONTHS = months("2022-12", 37)  # the 36 baseline months before 2025-12, and 2025-12


def seasonal(first: str = "2022-12", n: int = 37, peak: float = 0.10) -> dict[str, float | None]:
    return {
        m: 0.2 + (peak if m.endswith("-12") else 0.0) + NOISE[k]
        for k, m in enumerate(months(first, n))
    }


def declare(workdir: Path, policy: str = "", values: dict[str, float | None] | None = None) -> Path:
    write_monthly_csv(workdir / "data" / "rate.csv", values or seasonal())
    decl = write_declaration(workdir, target=0.5, baseline=36)
    decl.write_text(decl.read_text() + policy)  # under policy:
    return decl


def run_json(*argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_december_is_no_signal_with_seasonality(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decl = declare(workdir, "  seasonality: 12\n")
    data = run_json(str(decl), "--period", "2025-12", capsys=capsys)
    assert data["decision"] == "adjust", data["reasons"]
    assert not any(r.startswith("improvement signal") for r in data["reasons"])
    assert "judged against a seasonal (additive factors, 12 periods) centre line fitted to the "\
        "baseline" in data["reasons"]  # fmt: skip
    # the limits are December's: the centre line of the season, ± 2.66 × the deseasonalised MR
    assert data["limits"]["centre"] == pytest.approx(0.3, abs=0.004)
    assert data["limits"]["lower"] < data["result_value"] < data["limits"]["upper"]
    model = data["extra"]["baseline_model"]
    assert model["seasonality"] == 12 and model["additive"] is True
    assert sum(model["factors"]) == pytest.approx(0, abs=1e-12)
    assert model["factors"][11] == pytest.approx(0.1 * 11 / 12, abs=0.004)  # December's
    assert model["centre"]["2025-12"] == pytest.approx(data["limits"]["centre"])
    assert model["centre"]["2025-06"] == pytest.approx(0.2, abs=0.004)  # level 0.2083 − 0.0083
    # the effect is measured against December's centre too: about nothing
    effect = data["effect"]
    assert effect["periods"] == 1 and effect["lower"] < 0 < effect["upper"]


def test_december_is_a_signal_without_seasonality(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decl = declare(workdir)
    data = run_json(str(decl), "--period", "2025-12", capsys=capsys)
    assert data["decision"] == "keep"
    assert any(r.startswith("improvement signal: EWMA") for r in data["reasons"])
    assert data["effect"]["lower"] > 0  # against the plain mean, December looks like a lift


def test_a_real_lift_in_december_is_still_seen(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = seasonal()
    values["2025-12"] = (values["2025-12"] or 0) + 0.05
    decl = declare(workdir, "  seasonality: auto\n", values)
    data = run_json(str(decl), "--period", "2025-12", capsys=capsys)
    assert data["decision"] == "keep", data["reasons"]
    assert any(r.startswith("seasonality auto: a seasonal pattern of 12 periods") for r in
               data["reasons"])  # fmt: skip


def test_a_trend_declared(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    climb = {m: 0.2 + 0.001 * k + NOISE[k] / 4 for k, m in enumerate(months("2024-12", 13))}
    write_monthly_csv(workdir / "data" / "rate.csv", climb)
    decl = write_declaration(workdir, target=0.5)
    decl.write_text(decl.read_text() + "  trend: true\n")
    data = run_json(str(decl), "--period", "2025-12", capsys=capsys)
    assert data["limits"]["centre"] == pytest.approx(0.2 + 0.001 * 12, abs=0.001)
    assert data["extra"]["baseline_model"]["trend"] is True
    assert "judged against a trended centre line fitted to the baseline" in data["reasons"]


def test_seasonality_needs_two_seasons_of_baseline(workdir: Path) -> None:
    decl = write_declaration(workdir)  # baseline_periods: 12
    decl.write_text(decl.read_text() + "  seasonality: 12\n")
    text = decl.read_text()
    line = text[: text.index("seasonality:")].count("\n") + 1
    with pytest.raises(DeclarationError) as info:
        load_yaml(decl)
    assert str(info.value) == (
        f"{decl}:{line}: policy.seasonality: seasonality 12 needs baseline_periods of at least "
        "24 (two seasons of baseline), not 12"
    )


def test_the_report_draws_the_seasonal_centre_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = seasonal(n=39)  # … 2026-02
    decl = declare(workdir, "  seasonality: 12\n", values)
    for period in ("2025-12", "2026-01", "2026-02"):
        run_json(str(decl), "--period", period, capsys=capsys)
    report = build_report(Store().cycles("refer"))
    centre = {p.period: p.centre for p in report.charts[0].points}
    assert centre["2024-12"] == pytest.approx(0.3, abs=0.004)  # a baseline December
    assert centre["2025-06"] == pytest.approx(0.2, abs=0.004)
    assert centre["2026-01"] == pytest.approx(0.2, abs=0.004)
    page = html_page(report)
    assert "Approaches and their effect on rate" in page
    assert report.phases[-1].effect.endswith("over 3 periods")


# -- radar validate --------------------------------------------------------------------------------


def validate(decl: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["validate", str(decl)]) == 0
    return capsys.readouterr().out.splitlines()


def test_validate_warns_of_an_undeclared_season(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import date

    from cycles import engine

    monkeypatch.setattr(engine, "today_in", lambda outcome: date(2026, 1, 15))
    decl = declare(workdir)
    lines = validate(decl, capsys)
    assert lines[0].startswith("ok ")
    warned = [line for line in lines if line.startswith("warning")]
    assert len(warned) == 1, lines
    assert warned[0].startswith(
        "warning the last 36 months of rate show a seasonal pattern of 12 periods (F test p < 0.001"
    )
    assert "declare seasonality: 12 with baseline_periods of at least 36" in warned[0]
    # declared: no warning; auto: it says what it found
    decl.write_text(decl.read_text() + "  seasonality: 12\n")
    assert [line for line in validate(decl, capsys) if line.startswith("warning")] == []
    decl.write_text(decl.read_text().replace("seasonality: 12", "seasonality: auto"))
    auto = [line for line in validate(decl, capsys) if line.startswith("warning")]
    assert len(auto) == 1 and "seasonality auto: a seasonal pattern of 12 periods" in auto[0]


def test_validate_warns_of_autocorrelation(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import date

    from cycles import engine

    monkeypatch.setattr(engine, "today_in", lambda outcome: date(2026, 1, 15))
    wander = [0.0, 0.002, 0.005, 0.006, 0.004, 0.001, -0.002, -0.004, -0.005, -0.003, 0.0, 0.003]
    values = {m: 0.2 + wander[k] for k, m in enumerate(months("2025-01", 12))}
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    decl = write_declaration(workdir)
    lines = validate(decl, capsys)
    warned = [line for line in lines if line.startswith("warning")]
    assert len(warned) == 1, lines
    assert warned[0].startswith(
        "warning lag-1 autocorrelation of the baseline a cycle opened now would use (the last 12 "
        "months of rate) is 0."
    )
    assert "XmR limits from moving ranges are too narrow" in warned[0]
