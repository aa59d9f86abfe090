"""Shared by the benchmarks: an isolated environment and a sample outcome with 24 months of data.

Imports nothing from Prefect or the project, so it can run before Prefect's settings are set.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import statistics
import tempfile
from datetime import date, timedelta
from pathlib import Path

MONTHS = 24

DECLARATION = """\
outcome: bench
title: Customers refer us
cadence: monthly
result: {metric: rate, target: 0.30, direction: increase}
metrics:
  rate: {connector: crm, period: day, value: rate}
connectors:
  crm: {type: csv, path: data/rate.csv}
checks:
  rate:
    - expect_column_values_to_not_be_null: {column: rate}
    - expect_column_values_to_be_between: {column: rate, min_value: 0, max_value: 1}
approaches:
  - name: incentive
    params: {usd: 20}
    adjust: {usd: {step: 10, max: 40}}
  - name: nudge
    params: {asks: 2}
policy: {sustain: 3, baseline_periods: 12, max_adjustments: 3}
"""


def isolate(prefix: str = "radar-bench-") -> Path:
    """A fresh temp dir holding the history database and PREFECT_HOME; call before Prefect loads."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, tmp, True)  # registered first, so it runs after Prefect's
    os.environ["PREFECT_HOME"] = str(tmp / "prefect-home")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
    os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "CRITICAL"
    os.environ["RADAR_DATABASE_URL"] = f"sqlite:///{tmp / 'radar.db'}"
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE"):
        os.environ.pop(name, None)
    return tmp


def past_months(n: int = MONTHS, today: date | None = None) -> list[str]:
    """The n whole months before today's month, oldest first, as YYYY-MM."""
    year, month = (today or date.today()).year, (today or date.today()).month
    labels = []
    for _ in range(n):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        labels.append(f"{year:04d}-{month:02d}")
    return labels[::-1]


def write_sample(directory: Path) -> tuple[Path, list[str]]:
    """Declaration `bench.yaml` + data/rate.csv (daily rows, two regions); returns it and months."""
    labels = past_months()
    rows = ["day,region,rate,asked,referred"]
    for i, label in enumerate(labels):
        first = date.fromisoformat(f"{label}-01")
        day = first
        while day.month == first.month:
            for r, region in enumerate(("north", "south")):
                rate = 0.18 + 0.01 * math.sin(i + day.day / 7 + r) + (0.05 if i >= 18 else 0)
                rows.append(f"{day},{region},{rate:.4f},1000,{round(rate * 1000)}")
            day += timedelta(days=1)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "data" / "rate.csv").write_text("\n".join(rows) + "\n")
    path = directory / "bench.yaml"
    path.write_text(DECLARATION)
    return path, labels


def stats(samples: list[float]) -> str:
    """`median (min, n)` in seconds."""
    if not samples:
        return "n/a"
    return f"{statistics.median(samples):7.3f} s (min {min(samples):.3f}, n={len(samples)})"


def verdict(ok: bool, what: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}: {what}"
