"""The Prefect layer: one flow per outcome, five stage tasks, runs named <outcome>/<period>."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from cycles.declaration import load
from cycles.declaration.loader import declaration_files
from cycles.engine import run_cycle
from cycles.flow import build_flow, run_in_flow, wait_for_scheduled_start
from cycles.store import Store
from cycles.values import Stage

from conftest import ROOT, months, write_declaration, write_monthly_csv

STAGES = [s.value for s in Stage]


def test_every_declaration_under_flows_builds_its_flow() -> None:
    paths = declaration_files(ROOT / "flows")
    assert paths
    for path in paths:
        outcome = load(path)
        flow = build_flow(outcome)
        assert flow.name == outcome.outcome
        assert set(flow.parameters.properties) == {
            "period", "review", "dry_run", "campaign", "event_time", "deadline"
        }  # fmt: skip


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


SIGNED = """\
policy:
  sustain: 3
  baseline_periods: 12
  max_adjustments: 3
  sign_off: [adjust, switch]
  sign_off_timeout: {timeout}
"""


def _signed(decl: Path, timeout: str) -> Path:
    text = decl.read_text()
    decl.write_text(text[: text.index("policy:")] + SIGNED.format(timeout=timeout))
    return decl


def _wait_for_state(name: str, state: str, timeout: float = 60) -> object:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # earlier tests may have left finished runs of the same name (in no particular order)
        runs = _runs(name)
        found = [r for r in runs if r.state is not None and r.state.name == state]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"{name} never reached {state}: {[r.state for r in runs]}")


@pytest.mark.slow
def test_sign_off_resumed_with_an_answer(prefect_server: None, decl: Path) -> None:
    import contextvars
    import threading

    from prefect.flow_runs import resume_flow_run

    outcome = load(_signed(decl, "PT5M"))
    result: dict[str, object] = {}
    ctx = contextvars.copy_context()
    worker = threading.Thread(
        target=ctx.run, args=(lambda: result.update(record=run_in_flow(outcome, "2025-09")),)
    )
    worker.start()
    run = _wait_for_state("refer/2025-09", "Paused")
    waiting = Store().get_cycle("refer", "2025-09")
    assert waiting is not None and waiting.status == "awaiting sign-off"
    assert waiting.completed_stages == ["result", "approach", "deployment", "assessment"]
    assert waiting.extra.proposal is not None and waiting.extra.proposal.decision == "adjust"
    resume_flow_run(
        run.id, run_input={"answer": "choose_approach", "approach": "nudge", "note": "ask them"}
    )  # type: ignore[attr-defined]
    worker.join(timeout=60)
    record = result["record"]
    assert record.decision == "switch" and record.next_approach.name == "nudge"  # type: ignore[attr-defined]
    assert any("operator chose nudge instead of adjust (ask them)" in r for r in record.reasons)  # type: ignore[attr-defined]
    stored = Store().get_cycle("refer", "2025-09")
    assert stored is not None and stored.status == "reviewed" and stored.decision == "switch"


@pytest.mark.slow
def test_sign_off_timeout_holds(prefect_server: None, decl: Path) -> None:
    outcome = load(_signed(decl, "PT2S"))
    record = run_in_flow(outcome, "2025-09")
    assert record.decision == "hold"
    assert any("no sign-off of adjust within" in r for r in record.reasons)
    assert record.next_approach == record.approach  # nothing changes without a sign-off


def test_sign_off_without_prefect_waits(decl: Path) -> None:
    outcome = load(_signed(decl, "PT5M"))
    record = run_cycle(outcome, "2025-09", store=Store())
    assert record.status == "awaiting sign-off" and record.decision is None
    assert record.stages == ["result", "approach", "deployment", "assessment"]
    stored = Store().get_cycle("refer", "2025-09")
    assert stored is not None and stored.status == "awaiting sign-off"
    proposal = stored.extra.proposal
    assert proposal is not None and proposal.next_approach is not None
    assert proposal.next_approach.params == {"usd": 30}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("early", "deployed", "waits"),
    [(3.0, True, True), (0.0, True, False), (-5.0, True, False), (600, True, False),
     (3.0, False, False)],
)  # fmt: skip
def test_a_run_started_early_waits_for_its_scheduled_time(
    prefect_server: None, early: float, deployed: bool, waits: bool
) -> None:
    """A worker starts scheduled runs up to 10 s early: a deployment's run waits (never for
    long); an in-process run (no deployment) never does. Each case is a real flow run on the
    harness's server, expected `early` seconds from now; it goes Pending with a start time of
    now, which Prefect's server honours (a worker's prefetch, the server's whole-second
    rounding or another clock start runs before their expected time too), and runs here."""
    from prefect import flow, get_client
    from prefect.client.schemas.objects import StateDetails
    from prefect.flow_engine import run_flow
    from prefect.states import Pending, Scheduled

    @flow(name="early-start")
    def early_start() -> tuple[float, datetime]:
        clock = time.perf_counter()
        wait_for_scheduled_start()
        return time.perf_counter() - clock, datetime.now(UTC)

    scheduled = datetime.now(UTC) + timedelta(seconds=early)
    with get_client(sync_client=True) as client:
        state = Scheduled(scheduled_time=scheduled)
        if deployed:
            deployment = client.create_deployment(
                flow_id=client.create_flow(early_start), name=f"early-{uuid4().hex[:8]}"
            )
            run = client.create_flow_run_from_deployment(deployment, state=state)
        else:
            run = client.create_flow_run(early_start, state=state)
        client.set_flow_run_state(
            run.id, Pending(state_details=StateDetails(scheduled_time=datetime.now(UTC)))
        )
        run = client.read_flow_run(run.id)
    assert (run.deployment_id is not None) == deployed
    assert run.expected_start_time is not None
    assert abs((run.expected_start_time - scheduled).total_seconds()) < 0.01
    waited, done = run_flow(early_start, flow_run=run)
    if waits:
        assert done >= scheduled and waited > 0.2  # started early, then waited for its time
    else:
        assert waited < 0.2


@pytest.mark.slow
def test_artifacts_are_published(prefect_server: None, decl: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    record = run_in_flow(load(decl), "2025-10")
    [run] = _runs("refer/2025-10")
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["refer-review", "refer-recent", "refer-chart"])
            )
        )
    mine = {a.key: a for a in found if a.flow_run_id == run.id}
    assert set(mine) == {"refer-review", "refer-recent", "refer-chart"}
    markdown = str(mine["refer-review"].data)
    assert f"**{record.decision}**" in markdown and "rate ≥ 0.3" in markdown
    assert "incentive" in markdown
    assert '"centre"' in str(mine["refer-recent"].data)
    chart = str(mine["refer-chart"].data)
    assert chart.startswith("# refer: Customers refer us") and "XmR chart of rate" in chart
    [image] = re.findall(r"!\[[^]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", chart)
    svg = base64.b64decode(image).decode()
    assert svg.startswith("<svg") and f">{record.decision}</text>" in svg and "incentive" in svg
