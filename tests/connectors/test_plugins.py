"""Third-party connectors and actions register through entry points and are used by `type`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from connectors import registry
from cycles.declaration import load_yaml
from cycles.engine import run_cycle
from cycles.store import Store

from conftest import ROOT, months

PLUGIN = ROOT / "tests" / "plugins" / "radar-echo"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed for real, as a user would (pip builds its wheel with its own build
    backend and installs it, entry points and all), into a directory of its own rather than
    this venv: --no-build-isolation uses the hatchling of the `test` extra, --no-index and
    --no-deps keep the network out (its dependency, radar-cycles, is the project under test)."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-index", "--no-build-isolation", "--no-cache-dir",
         "--target", str(target), str(PLUGIN)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [info] = target.glob("radar_echo-*.dist-info")
    assert "echo = radar_echo:EchoConnector" in (info / "entry_points.txt").read_text()
    return target


@pytest.fixture
def plugin(site: Path) -> Iterator[Path]:
    sys.path.insert(0, str(site))
    registry.clear_cache()
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("radar_echo", None)
    registry.clear_cache()


ROWS = [{"day": f"{m}-10", "rate": 0.2} for m in months("2025-01", 20)]
DECLARATION = f"""\
outcome: echoed
title: Rows from a plugin
cadence: monthly
result: {{metric: rate, target: 0.5}}
metrics:
  rate: {{connector: inline, period: day, value: rate}}
connectors:
  inline:
    type: echo
    rows: {json.dumps(ROWS)}
checks:
  rate:
    - expect_column_values_to_be_between: {{column: rate, min_value: 0, max_value: 1}}
approaches:
  - name: shout
    params: {{volume: 3}}
    actions:
      - {{name: hello, type: shout, message: "volume {{params.volume}} for {{period}}"}}
"""


def test_plugin_types_are_listed_and_used(plugin: Path, workdir: Path) -> None:
    assert "echo" in registry.known_types(registry.CONNECTORS)
    assert "shout" in registry.known_types(registry.ACTIONS)
    decl = workdir / "echoed.yaml"
    decl.write_text(DECLARATION)
    outcome = load_yaml(decl)
    store = Store()
    past = run_cycle(outcome, "2026-06", store=store, today=date(2026, 11, 1))
    assert past.result_value == pytest.approx(0.2) and past.checks.passed == 1
    assert past.decision is not None
    current = run_cycle(outcome, "2026-11", store=store, today=date(2026, 11, 2))
    assert [(a.name, a.status, a.reach) for a in current.actions] == [
        ("hello", "succeeded", float(len("volume 3 for 2026-11")))
    ]


def test_plugin_through_the_command_line(site: Path, tmp_path: Path) -> None:
    (tmp_path / "echoed.yaml").write_text(DECLARATION)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("RADAR_DATABASE_URL", None)
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cycles.cli", "run", "echoed.yaml", "--period", "2026-06", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result_value"] == pytest.approx(0.2)


def test_missing_plugin_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "echoed.yaml").write_text(DECLARATION)
    proc = subprocess.run(
        [sys.executable, "-m", "cycles.cli", "validate", "echoed.yaml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "echoed.yaml:9: connectors.inline.type: unknown connector type 'echo'" in proc.stderr
    assert "a plugin providing it may not be installed" in proc.stderr
