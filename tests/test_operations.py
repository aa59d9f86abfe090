"""Operating radar on a real Prefect server: deploy, schedules, campaign-ended reviews, sign-off.

Everything runs as it would in production, as separate processes: one `prefect server start`
for the module (SQLite, its own PREFECT_HOME), `radar deploy` / `radar campaign-ended` /
`radar history` / `prefect deploy` as CLI subprocesses, and a `prefect worker start --pool radar`
process worker whose flow runs are subprocesses too. This process only talks to the server
through Prefect's client (pointed at it with `temporary_settings`, since other test modules may
have imported Prefect with other settings already).

Each scenario works in its own directory (declarations copied from flows/referrals, its own
history database) and stops the worker it started before the next one begins, so a run is
never picked up by another scenario's worker.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

import chromium
from conftest import ROOT
from prefect_server import PREFECT, RADAR, PrefectServer, owned_processes, run_cli

pytestmark = pytest.mark.slow

REFERRALS = ROOT / "flows" / "referrals"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SIGN_OFF_ALL = "  sign_off: [switch, adjust, keep, hold, achieved]\n  sign_off_timeout: {timeout}\n"
SCREENSHOT = ROOT / "tests" / "artifacts" / "flow-run.png"
DECISIONS = {"keep", "adjust", "switch", "hold", "achieved"}
FINAL_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


# -- the server, and this process's client -------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with PrefectServer.start(tmp_path_factory.mktemp("prefect-server")) as started:
        yield started
    left = owned_processes(started.owner)
    assert not left, f"processes started by these tests still run: {left}"


@pytest.fixture
def api(server: PrefectServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrefectServer]:
    """This process's Prefect client talks to the test server for the test's duration."""
    for name, value in server.env().items():
        if name.startswith("PREFECT_"):
            monkeypatch.setenv(name, value)
    with server.settings():
        yield server


def client() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll `probe` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def runs_of(deployment_id: UUID, *, auto_scheduled: bool | None = None) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with client() as c:
        runs = c.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    return [r for r in runs if auto_scheduled is None or r.auto_scheduled == auto_scheduled]


def read_run(run_id: UUID) -> Any:
    with client() as c:
        return c.read_flow_run(run_id)


def wait_state(run_id: UUID, names: set[str], timeout: float, worker: Any = None) -> Any:
    """The run once its state name is one of `names`; fails early if it ends otherwise."""
    final = {"Completed", "Failed", "Crashed", "Cancelled"}

    def probe() -> Any:
        run = read_run(run_id)
        if run.state_name in names:
            return run
        if run.state_name in final:
            log = f"\nworker log:\n{worker.tail()}" if worker is not None else ""
            pytest.fail(f"run {run.name} ended {run.state_name}: {run.state.message}{log}")
        return None

    return wait_for(f"run {run_id} to be {'/'.join(sorted(names))}", probe, timeout)


def task_names(run_id: UUID) -> list[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client() as c:
        tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return [t.name for t in sorted(tasks, key=lambda t: t.start_time or t.expected_start_time)]


# -- projects: copies of flows/referrals -----------------------------------------------------------


def make_project(root: Path, outcome: str = "referrals", *, review_delay: str | None = None,
                 sign_off_timeout: str | None = None) -> Path:  # fmt: skip
    """`root/flows/<outcome>/`: the referrals declaration (renamed), its data and actions."""
    target = root / "flows" / outcome
    shutil.copytree(REFERRALS, target, ignore=shutil.ignore_patterns("__pycache__"))
    source = target / "referrals.yaml"
    text = source.read_text()
    if outcome != "referrals":
        source.unlink()
        source = target / f"{outcome}.yaml"
        text = text.replace("outcome: referrals\n", f"outcome: {outcome}\n", 1)
    if review_delay is not None:
        assert "  delay: P14D\n" in text
        text = text.replace("  delay: P14D\n", f"  delay: {review_delay}\n")
    if sign_off_timeout is not None:
        assert "  max_adjustments: 3\n" in text
        text = text.replace(
            "  max_adjustments: 3\n",
            "  max_adjustments: 3\n" + SIGN_OFF_ALL.format(timeout=sign_off_timeout),
        )
    source.write_text(text)
    return root


def radar_env(server: PrefectServer, project: Path) -> dict[str, str]:
    return server.env(RADAR_DATABASE_URL=f"sqlite:///{project / 'history.db'}")


def history(env: dict[str, str], project: Path, outcome: str) -> dict[str, dict[str, Any]]:
    """`radar history <outcome> --json`, by period."""
    done = run_cli([RADAR, "history", outcome, "--json"], env=env, cwd=project, timeout=60)
    assert done.returncode == 0, done.stderr
    return {c["period"]: c for c in json.loads(done.stdout)}


def deploy(env: dict[str, str], project: Path, *names: str) -> str:
    done = run_cli([RADAR, "deploy", *names], env=env, cwd=project, timeout=120)
    assert done.returncode == 0, f"radar deploy failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def completed_per_stage(record: dict[str, Any]) -> Counter[str]:
    return Counter(r["stage"] for r in record["stage_runs"] if r["status"] == "completed")


def current_month(when: datetime) -> str:
    return when.astimezone(AMSTERDAM).strftime("%Y-%m")


def campaign_events(server: PrefectServer) -> list[dict[str, Any]]:
    import httpx

    answer = httpx.post(
        f"{server.api_url}/events/filter",
        json={"filter": {"event": {"name": ["campaign.ended"]}}, "limit": 50},
        timeout=10,
    )
    answer.raise_for_status()
    return list(answer.json()["events"])


# -- 1. deploy, schedule, and a review after campaign.ended ----------------------------------------


@dataclass
class CampaignReview:
    """What the deploy → worker → campaign-ended scenario observed (shared by two tests)."""

    project: Path
    env: dict[str, str]
    deploy_output: str
    deployment: Any
    scheduled: list[Any]
    automations: list[Any]
    emitted: tuple[datetime, datetime]  # before and after `radar campaign-ended`
    run: Any  # referrals/2026-10, completed
    current: Any  # the run for the event without --period, finished
    events: list[dict[str, Any]] = field(default_factory=list)
    worker_log: str = ""


@pytest.fixture(scope="module")
def campaign_review(
    server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CampaignReview]:
    project = make_project(tmp_path_factory.mktemp("campaign"), review_delay="PT3S")
    env = radar_env(server, project)
    with pytest.MonkeyPatch.context() as mp, server.settings():
        for name, value in server.env().items():
            if name.startswith("PREFECT_"):
                mp.setenv(name, value)
        output = deploy(env, project)
        with client() as c:
            deployment = c.read_deployment_by_name("referrals/referrals")
        # the server schedules runs as soon as a deployment with a schedule is created
        scheduled = wait_for(
            "auto-scheduled runs of referrals/referrals",
            lambda: runs_of(deployment.id, auto_scheduled=True),
            timeout=75,
            every=2,
        )
        with client() as c:
            automations = [
                a for a in c.read_automations()
                if any(getattr(x, "deployment_id", None) == deployment.id for x in a.actions)
            ]  # fmt: skip

        with server.worker(env=env, cwd=project) as worker:
            before = datetime.now(UTC)
            done = run_cli(
                [RADAR, "campaign-ended", "referrals", "--campaign", "spring", "--period", "2026-10"],
                env=env, cwd=project, timeout=60,
            )  # fmt: skip
            after = datetime.now(UTC)
            assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
            # the event without a period: a review of the current period
            done = run_cli([RADAR, "campaign-ended", "referrals"], env=env, cwd=project, timeout=60)
            assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"

            def triggered(period: str | None) -> Any:
                runs = [
                    r for r in runs_of(deployment.id, auto_scheduled=False)
                    if r.parameters.get("period") == period
                ]  # fmt: skip
                return runs[0] if runs else None

            first = wait_for("the run for referrals/2026-10", lambda: triggered("2026-10"), 30)
            first = wait_state(first.id, {"Completed"}, timeout=150, worker=worker)
            current = wait_for("the run without a period", lambda: triggered(None), 30)
            # named when it starts; waited for until it ends (either way) so that stopping the
            # worker does not kill it halfway
            current = wait_for(
                "the run without a period to finish",
                lambda: (run := read_run(current.id)).state_type.value in FINAL_TYPES and run,
                timeout=90,
            )
            log = worker.tail(200)
        events = wait_for("campaign.ended events", lambda: campaign_events(server), 30, every=1)
    yield CampaignReview(
        project=project, env=env, deploy_output=output, deployment=deployment,
        scheduled=scheduled, automations=automations, emitted=(before, after), run=first,
        current=current, events=events, worker_log=log,
    )  # fmt: skip


@pytest.mark.slow
def test_deploy_creates_the_deployment_its_schedule_and_trigger(
    campaign_review: CampaignReview, api: PrefectServer
) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    review = campaign_review
    assert "deployed referrals/referrals" in review.deploy_output
    deployment = review.deployment
    assert deployment.name == "referrals"
    assert deployment.entrypoint == "cycles.deployed.referrals"
    assert deployment.work_pool_name == "radar"
    assert {"outcome:referrals", "cadence:monthly"} <= set(deployment.tags)
    [schedule] = deployment.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert schedule.schedule.cron == "0 6 1 * *"
    assert schedule.schedule.timezone == "Europe/Amsterdam"
    assert schedule.active
    # upcoming runs, each at 06:00 Amsterdam time on the 1st of a month
    assert len(review.scheduled) >= 3
    now = datetime.now(UTC)
    for run in review.scheduled:
        local = run.expected_start_time.astimezone(AMSTERDAM)
        assert (local.day, local.hour, local.minute) == (1, 6, 0), local
        assert run.expected_start_time > now
        assert run.state_name == "Scheduled"
    # the campaign-ended trigger
    [automation] = review.automations
    assert automation.enabled
    trigger = automation.trigger
    assert set(trigger.expect) == {"campaign.ended"}
    assert trigger.match.model_dump()["prefect.resource.id"] == "radar.outcome.referrals"
    [action] = automation.actions
    assert action.type == "run-deployment"
    assert action.schedule_after == timedelta(seconds=3)
    assert action.parameters["review"] is True
    assert set(action.parameters) == {"period", "campaign", "event_time", "review"}


@pytest.mark.slow
def test_campaign_ended_reviews_the_period_after_the_delay(
    campaign_review: CampaignReview, api: PrefectServer
) -> None:
    from prefect.client.schemas.filters import (
        ArtifactCollectionFilter,
        ArtifactCollectionFilterKey,
        ArtifactFilter,
        ArtifactFilterFlowRunId,
    )

    review = campaign_review
    run = review.run
    assert run.name == "referrals/2026-10"
    assert run.state_name == "Completed"
    params = dict(run.parameters)
    event_time = datetime.fromisoformat(params.pop("event_time"))
    assert params == {"period": "2026-10", "campaign": "spring", "review": True}
    assert run.created_by is not None and run.created_by.type == "AUTOMATION"
    assert {"outcome:referrals", "cadence:monthly"} <= set(run.tags)

    # the delay: scheduled 3 s after the event, and not started before that
    [event] = [e for e in review.events if e["payload"].get("period") == "2026-10"]
    occurred = datetime.fromisoformat(event["occurred"].replace("Z", "+00:00"))
    before, after = review.emitted
    assert before - timedelta(seconds=1) <= occurred <= after
    assert abs(event_time - occurred) < timedelta(seconds=1)  # the trigger passes the event's time
    delay = run.expected_start_time - occurred
    assert timedelta(seconds=3) <= delay <= timedelta(seconds=13), delay

    # five stage tasks, in RADAR order
    assert task_names(run.id) == ["result", "approach", "deployment", "assessment", "review"]

    # radar's history (written by the worker's run process)
    cycle = history(review.env, review.project, "referrals")["2026-10"]
    assert cycle["status"] == "reviewed"
    assert cycle["decision"] in DECISIONS
    assert cycle["extra"].get("campaign") == "spring", sorted(cycle["extra"])  # kept with it
    assert completed_per_stage(cycle) == Counter(
        ["result", "approach", "deployment", "assessment", "review"]
    )
    # no stage began before the delay was over: a worker may start a scheduled run up to 10 s
    # early (Prefect's start_time is then early too), and the flow waits for its time
    first = min(datetime.fromisoformat(s["started_at"]) for s in cycle["stage_runs"])
    assert first >= run.expected_start_time, (first, run.expected_start_time)
    assert first - occurred >= timedelta(seconds=3)

    # the artifacts: attached to this flow run, and readable by key (the latest of a key may
    # be the current-period run's, which also finished)
    with client() as c:
        of_run = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
        latest = c.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(
                key=ArtifactCollectionFilterKey(any_=["referrals-review", "referrals-recent"])
            )
        )
    by_key = {a.key: a for a in of_run}
    assert sorted(a.key for a in of_run) == ["referrals-chart", "referrals-recent", "referrals-review"]  # fmt: skip
    assert "data:image/svg+xml;base64," in by_key["referrals-chart"].data
    markdown, table = by_key["referrals-review"], by_key["referrals-recent"]
    assert markdown.type == "markdown" and table.type == "table"
    assert cycle["decision"] in markdown.data and "referral_rate" in markdown.data
    assert "2026-10" in markdown.data
    assert markdown.description == f"referrals/2026-10: {cycle['decision']}"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert rows and "2026-10" in {r["period"] for r in rows}
    assert {a.key for a in latest} == {"referrals-review", "referrals-recent"}
    assert {a.flow_run_id for a in latest} <= {run.id, review.current.id}


@pytest.mark.slow
def test_campaign_ended_without_a_period_reviews_the_current_one(
    campaign_review: CampaignReview, api: PrefectServer
) -> None:
    run = campaign_review.current
    params = dict(run.parameters)
    occurred = datetime.fromisoformat(params.pop("event_time"))
    assert params == {"period": None, "campaign": None, "review": True}
    # the period holding the event's time (not the delayed run's)
    assert run.name == f"referrals/{current_month(occurred)}"
    assert run.name == f"referrals/{current_month(run.expected_start_time)}"


# -- 2. sign-off in a deployment run: suspend, resume, no stage repeated ---------------------------


def assert_waiting_for_sign_off(cycle: dict[str, Any], run_id: UUID) -> None:
    """The history of a cycle whose review waits for a person: assessed, proposal kept."""
    assert cycle["status"] == "awaiting sign-off"
    assert cycle["completed_stages"] == ["result", "approach", "deployment", "assessment"]
    assert cycle["decision"] is None
    assert cycle["extra"]["proposal"]["decision"] in DECISIONS
    waiting = [r["stage"] for r in cycle["stage_runs"] if r["status"] == "awaiting sign-off"]
    assert waiting and set(waiting) == {"review"}
    assert cycle["extra"]["sign_off_requested"]["flow_run"] == str(run_id)


@pytest.mark.slow
def test_sign_off_suspends_the_run_and_resuming_finishes_the_review(
    api: PrefectServer, tmp_path: Path
) -> None:
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    project = make_project(tmp_path, "referrals-signed", sign_off_timeout="PT1H")
    env = radar_env(api, project)
    assert "deployed referrals-signed/referrals-signed" in deploy(env, project)
    with client() as c:
        deployment = c.read_deployment_by_name("referrals-signed/referrals-signed")

    with api.worker(env=env, cwd=project) as worker:
        asked = datetime.now(UTC)
        created = run_deployment(
            name="referrals-signed/referrals-signed", parameters={"period": "2025-09"}, timeout=0
        )
        run = wait_state(created.id, {"Suspended"}, timeout=150, worker=worker)
        assert run.name == "referrals-signed/2025-09"
        assert run.state_type.value == "PAUSED"

        # the form the UI shows: an answer is one of three, nothing pre-filled
        keyset = run.state.state_details.run_input_keyset
        assert keyset is not None, run.state
        with client() as c:
            schema = json.loads(c.read_flow_run_input(run.id, keyset["schema"]))
            description = json.loads(c.read_flow_run_input(run.id, keyset["description"]))
        answer = schema["properties"]["answer"]
        if "$ref" in answer or "allOf" in answer:
            ref = answer.get("$ref") or answer["allOf"][0]["$ref"]
            answer = schema["definitions" if "definitions" in schema else "$defs"][
                ref.split("/")[-1]
            ]
        assert set(answer["enum"]) == {"approve", "choose_approach", "hold"}
        assert "answer" in schema["required"]
        assert "referrals-signed" in description and "2025-09" in description

        # radar's history: assessed, waiting for the sign-off
        cycle = history(env, project, "referrals-signed")["2025-09"]
        assert_waiting_for_sign_off(cycle, run.id)
        waiting_rows = sum(r["status"] == "awaiting sign-off" for r in cycle["stage_runs"])

        # the deadline run that records hold if nobody answers, an hour out
        [deadline] = [r for r in runs_of(deployment.id) if "radar:sign-off-deadline" in r.tags]
        assert deadline.state_name == "Scheduled"
        wait = deadline.expected_start_time - asked
        assert timedelta(minutes=59) < wait < timedelta(minutes=62), wait

        resume_flow_run(
            run.id,
            run_input={
                "answer": "choose_approach",
                "approach": "promoter-nudge",
                "note": "try asking",
            },
        )
        run = wait_state(run.id, {"Completed"}, timeout=150, worker=worker)

    cycle = history(env, project, "referrals-signed")["2025-09"]
    assert cycle["status"] == "reviewed"
    assert cycle["decision"] == "switch"
    assert cycle["next_approach"]["name"] == "promoter-nudge"
    assert any("operator chose promoter-nudge" in r and "try asking" in r for r in cycle["reasons"])
    assert cycle["extra"]["sign_off"]["answer"] == "choose_approach"
    # resuming re-ran the flow from the start, but no stage ran twice and no action repeated
    assert completed_per_stage(cycle) == Counter(
        ["result", "approach", "deployment", "assessment", "review"]
    )
    # resuming asked nothing again: no new waiting row
    assert sum(r["status"] == "awaiting sign-off" for r in cycle["stage_runs"]) == waiting_rows
    assert "proposal" not in cycle["extra"]
    keys = [a["key"] for a in cycle["actions"]]
    assert keys and len(keys) == len(set(keys))
    assert all(a.get("attempts", 0) <= 1 for a in cycle["actions"])
    assert Counter(task_names(run.id)) == Counter(
        ["result", "approach", "deployment", "assessment", "review"]
    )


# -- 3. sign-off timeout: the deadline run records hold --------------------------------------------


@pytest.mark.slow
def test_unanswered_sign_off_is_held_by_the_deadline_run(
    api: PrefectServer, tmp_path: Path
) -> None:
    from prefect.deployments import run_deployment

    project = make_project(tmp_path, "referrals-timeout", sign_off_timeout="PT5S")
    env = radar_env(api, project)
    deploy(env, project)
    with client() as c:
        deployment = c.read_deployment_by_name("referrals-timeout/referrals-timeout")

    with api.worker(env=env, cwd=project) as worker:
        created = run_deployment(
            name="referrals-timeout/referrals-timeout", parameters={"period": "2025-09"}, timeout=0
        )
        run = wait_state(created.id, {"Suspended"}, timeout=150, worker=worker)
        cycle = history(env, project, "referrals-timeout")["2025-09"]
        assert_waiting_for_sign_off(cycle, run.id)
        requested_at = datetime.fromisoformat(cycle["extra"]["sign_off_requested"]["at"])

        def deadline_run() -> Any:
            runs = [r for r in runs_of(deployment.id) if "radar:sign-off-deadline" in r.tags]
            return runs[0] if runs else None

        deadline = wait_for("the deadline run", deadline_run, timeout=30)
        gap = deadline.expected_start_time - requested_at
        assert timedelta(seconds=4) <= gap <= timedelta(seconds=7), gap
        assert deadline.parameters == {"period": "2025-09", "review": True}
        deadline = wait_state(deadline.id, {"Completed"}, timeout=150, worker=worker)
        assert deadline.name == "referrals-timeout/2025-09"
        # nobody answered: the original run is still suspended (the server fails it later)
        assert read_run(run.id).state_name == "Suspended"

    cycle = history(env, project, "referrals-timeout")["2025-09"]
    assert cycle["status"] == "reviewed"
    assert cycle["decision"] == "hold"
    assert any("no sign-off" in r for r in cycle["reasons"]), cycle["reasons"]
    assert cycle["extra"]["sign_off"]["by"] == "timeout"
    # not before the deadline, though a worker may start a scheduled run up to 10 s early
    [review] = [
        s for s in cycle["stage_runs"] if s["stage"] == "review" and s["status"] == "completed"
    ]
    due = datetime.fromisoformat(cycle["extra"]["sign_off_requested"]["deadline"])
    assert datetime.fromisoformat(review["started_at"]) >= due, (review, due)


# -- 4. the Prefect UI shows the finished cycle ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not chromium.available(), reason="needs headless Chromium: apt-get install chromium"
)
def test_the_ui_shows_the_reviewed_cycle(
    campaign_review: CampaignReview, api: PrefectServer
) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run = campaign_review.run
    decision = history(campaign_review.env, campaign_review.project, "referrals")["2026-10"][
        "decision"
    ]
    page = f"{api.url}/runs/flow-run/{run.id}"
    text = chromium.dom_text(page, expect=["referrals/2026-10", "Completed", "Artifacts"])
    assert "referrals/2026-10" in text, text[:2000]
    assert "Completed" in text and "5 Task runs" in text, text[:2000]

    # the review's markdown, rendered on its artifact page
    with client() as c:
        [markdown] = [
            a for a in c.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            if a.key == "referrals-review"
        ]  # fmt: skip
    artifact_page = f"{api.url}/artifacts/artifact/{markdown.id}"
    text = chromium.dom_text(artifact_page, expect=["referral_rate", decision])
    assert "referral_rate" in text and f"decision {decision}" in text, text[:3000]
    assert "referrals/2026-10" in text, text[:3000]

    for url, path in ((page, SCREENSHOT), (artifact_page, SCREENSHOT.with_name("review.png"))):
        shot = chromium.screenshot(url, path)
        assert chromium.png_size(shot) == (1400, 1000)
        assert shot.stat().st_size > 20_000, "a blank page compresses to a few kB"


# -- 5. prefect.yaml: `prefect deploy --all` without prompts ---------------------------------------


@pytest.mark.slow
def test_prefect_deploy_all_from_prefect_yaml(api: PrefectServer, tmp_path: Path) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    project = tmp_path / "repo"
    project.mkdir()
    shutil.copytree(ROOT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    env = radar_env(api, project)
    if (ROOT / "prefect.yaml").is_file():
        shutil.copy(ROOT / "prefect.yaml", project / "prefect.yaml")
    else:
        done = run_cli(
            [RADAR, "deploy", "--write-prefect-yaml", "prefect.yaml"], env=env, cwd=project
        )
        assert done.returncode == 0, done.stderr
    # the pool, unless an earlier test made it (then this exits 1, "already exists")
    run_cli([PREFECT, "work-pool", "create", "radar", "--type", "process"], env=env, cwd=project)
    done = run_cli([PREFECT, "--no-prompt", "deploy", "--all"], env=env, cwd=project, timeout=180)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "referrals/referrals" in done.stdout
    assert not list(project.glob(".prefect*")), "prefect deploy wrote into the project"

    with client() as c:
        deployment = c.read_deployment_by_name("referrals/referrals")
        automations = [
            a for a in c.read_automations()
            if any(getattr(x, "deployment_id", None) == deployment.id for x in a.actions)
        ]  # fmt: skip
    assert deployment.entrypoint == "cycles.deployed.referrals"
    assert deployment.work_pool_name == "radar"
    assert {"outcome:referrals", "cadence:monthly"} <= set(deployment.tags)
    [schedule] = deployment.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 6 1 * *", "Europe/Amsterdam")
    directories = [
        step["prefect.deployments.steps.set_working_directory"]["directory"]
        for step in deployment.pull_steps or []
        if "prefect.deployments.steps.set_working_directory" in step
    ]
    assert [Path(d).resolve() for d in directories] == [project.resolve()]
    [automation] = automations
    [action] = automation.actions
    assert action.schedule_after == timedelta(days=14)
    assert set(action.parameters) == {"period", "campaign", "event_time", "review"}
    assert set(deployment.parameter_openapi_schema["properties"]) >= {"period", "review"}
