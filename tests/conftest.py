"""Shared fixtures: a working directory with its own history database, and sample outcomes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from cycles.periods import Cadence, Period

ROOT = Path(__file__).resolve().parents[1]


def radar(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: int = 240
) -> subprocess.CompletedProcess[str]:
    """`radar ARGS` in a new process: the default history in `cwd`, no Prefect API or profile
    from the calling environment, `env` on top."""
    full_env = {**os.environ, "COLUMNS": "200"}
    for name in ("RADAR_DATABASE_URL", "PREFECT_API_URL", "PREFECT_PROFILE"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cycles.cli", *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory whose history lives in `.radar/radar.db` (the default)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RADAR_DATABASE_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    return tmp_path


def month_days(period: Period, n: int) -> list[date]:
    """n dates spread over the period."""
    span = (period.end - period.start).days
    return [period.start + timedelta(days=(i * span) // n) for i in range(n)]


def write_monthly_csv(
    path: Path,
    values: Mapping[str, float | None],
    *,
    rows: int = 4,
    broken: Mapping[str, int] | None = None,
) -> Path:
    """Rows per month whose mean `rate` is the given value; `broken[p]` rows of p have no rate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "region", "rate", "asked", "referred"])
        for label, value in values.items():
            period = Period.parse(label, Cadence.monthly)
            if value is None:
                continue
            spread = [value + d for d in (-0.002, 0.002, -0.001, 0.001)[:rows]]
            spread += [value] * (rows - len(spread))
            for i, (day, v) in enumerate(zip(month_days(period, rows), spread, strict=True)):
                rate = "" if broken and i < broken.get(label, 0) else f"{v:.6f}"
                writer.writerow([day.isoformat(), f"r{i}", rate, 1000, round(v * 1000)])
    return path


def months(first: str, n: int) -> list[str]:
    start = Period.parse(first, Cadence.monthly)
    return [str(start + i) for i in range(n)]


DECLARATION = """\
outcome: {outcome}
title: Customers refer us
cadence: monthly
result:
  metric: rate
  target: {target}
  direction: {direction}
metrics:
  rate:
    connector: crm
    period: day
    value: rate
connectors:
  crm:
    type: csv
    path: data/rate.csv
checks:
  rate:
    - expect_column_values_to_not_be_null: {{column: rate}}
    - expect_column_values_to_be_between: {{column: rate, min_value: 0, max_value: 1}}
approaches:
  - name: incentive
    params: {{usd: 20}}
    adjust: {{usd: {{step: 10, max: 40}}}}
  - name: nudge
    params: {{asks: 2}}
policy:
  sustain: {sustain}
  baseline_periods: {baseline}
  max_adjustments: {max_adjustments}
"""


def write_declaration(
    directory: Path,
    *,
    outcome: str = "refer",
    target: float = 0.30,
    direction: str = "increase",
    sustain: int = 3,
    baseline: int = 12,
    max_adjustments: int = 3,
    extra: str = "",
) -> Path:
    path = directory / f"{outcome}.yaml"
    text = DECLARATION.format(
        outcome=outcome, target=target, direction=direction, sustain=sustain,
        baseline=baseline, max_adjustments=max_adjustments,
    )  # fmt: skip
    path.write_text(text + textwrap.dedent(extra))
    return path


@pytest.fixture
def env_clean() -> Iterator[None]:
    """Restore os.environ after a test that edits it directly."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secrets remembered from `${NAME}` are process-wide; each test starts without them."""
    from cycles import secrets

    yield
    secrets.forget_all()


class Clock:
    """radar's clock, shifted for every process that inherits `RADAR_TEST_CLOCK` (cycles.clock):
    `clock.at(when)` makes radar's now `when` (and the real clock moves on from there)."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def at(self, when: datetime) -> None:
        from datetime import UTC

        self.file.write_text(f"{(when - datetime.now(UTC)).total_seconds():.6f}")

    def env(self) -> dict[str, str]:
        return {"RADAR_TEST_CLOCK": str(self.file)}


@pytest.fixture
def clock(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Clock:
    shifted = Clock(tmp_path_factory.mktemp("clock") / "offset")
    monkeypatch.setenv("RADAR_TEST_CLOCK", str(shifted.file))
    return shifted
