"""The Prefect layer: one flow per outcome, five stage tasks, runs named <outcome>/<period>."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from conftest import ROOT, months, write_declaration, write_monthly_csv

from cycles.declaration import load
from cycles.declaration.loader import declaration_files
from cycles.engine import run_cycle
from cycles.flow import build_flow, run_in_flow
from cycles.store import Store
from cycles.values import Stage

STAGES = [s.value for s in Stage]


def test_every_declaration_under_flows_builds_its_flow() -> None:
    paths = declaration_files(ROOT / "flows")
    assert paths
    for path in paths:
        outcome = load(path)
        flow = build_flow(outcome)
        assert flow.name == outcome.outcome
        assert set(flow.parameters.properties) == {"period", "review", "dry_run"}


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def decl(workdir: Path) -> Path:
    values = {m: 0.18 + 0.003 * ((i * 5) % 3 - 1) for i, m in enumerate(months("2024-09", 14))}
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    return write_declaration(workdir)


def _runs(name: str) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )


def _task_names(run_id: object) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return [t.name for t in sorted(tasks, key=lambda t: t.expected_start_time)]


@pytest.mark.slow
def test_cycle_runs_as_a_prefect_flow(prefect_server: None, decl: Path) -> None:
    outcome = load(decl)
    expected = run_cycle(outcome, "2025-09", store=None)  # dry, no history
    record = run_in_flow(outcome, "2025-09")
    assert record.stages == STAGES
    assert record.decision == expected.decision and record.reasons == expected.reasons
    assert Store().get_cycle("refer", "2025-09") is not None

    [run] = _runs("refer/2025-09")
    assert run.state is not None and run.state.is_completed()
    assert {"outcome:refer", "cadence:monthly"} <= set(run.tags)
    assert _task_names(run.id) == STAGES


@pytest.mark.slow
def test_failed_stage_fails_the_flow_run(prefect_server: None, decl: Path) -> None:
    (decl.parent / "deliver.py").write_text(
        "def ask(context):\n    raise RuntimeError('CRM down')\n"
    )
    decl.write_text(
        decl.read_text().replace(
            "    adjust: {usd: {step: 10, max: 40}}\n",
            "    adjust: {usd: {step: 10, max: 40}}\n"
            "    actions:\n      - {name: ask, type: python, callable: 'deliver:ask'}\n",
        )
    )
    outcome = load(decl)
    current = str(date.today())[:7]
    with pytest.raises(Exception, match=r"deployment failed: action ask: .*CRM down"):
        run_in_flow(outcome, current)
    [run] = _runs(f"refer/{current}")
    assert run.state is not None and run.state.is_failed()
    assert "CRM down" in (run.state.message or "")
