"""The monthly loop on a real Prefect server with a real process worker, months in minutes.

Two outcomes are deployed from a directory outside `flows/` (their webhook's base URL is a
`${NAME}` that only the worker's environment sets). Each tick is a run of the outcome's
deployment without parameters, scheduled now on Prefect's clock while radar's clock
(`RADAR_TEST_CLOCK`, read by every run process of the worker) stands at 06:00 on the 1st of a
month. Runs radar schedules for later (a review's deadline) are due when radar's clock passes
their time: the test then starts them, as Prefect would when the day came.

- `campaign` is reviewed by `campaign.ended` (+5 s): January's event comes after February opened;
  February's never comes, so the tick of April (past its deadline) reviews it.
- `silent` declares a 2-day deadline and never gets an event: a run scheduled for each deadline
  reviews the month.
A local HTTP server counts the webhook deliveries per `Idempotency-Key`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from conftest import Clock, months, write_monthly_csv
from prefect_server import RADAR, PrefectServer, owned_processes, run_cli

pytestmark = pytest.mark.slow

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
OPENING = ["result", "approach", "deployment"]
CLOSING = ["assessment", "review"]

DECLARATION = """\
outcome: {name}
title: Customers refer us ({name})
cadence: monthly
timezone: Europe/Amsterdam
result: {{metric: rate, target: 0.3}}
metrics:
  rate: {{connector: crm, period: day, value: rate}}
connectors:
  crm: {{type: csv, path: data/rate.csv}}
approaches:
  - name: incentive
    params: {{usd: 20}}
    adjust: {{usd: {{step: 10, max: 60}}}}
    actions:
      - name: offer
        type: webhook
        url: "${{HOOK_BASE}}/hook"
        payload: {{period: "{{period}}", usd: "{{params.usd}}"}}
  - name: nudge
    params: {{asks: 2}}
    actions:
      - name: ask
        type: webhook
        url: "${{HOOK_BASE}}/hook"
        payload: {{period: "{{period}}"}}
review:
{review}
"""
REVIEWS = {
    "campaign": "  after_event: campaign.ended\n  delay: PT5S\n",
    "silent": "  after_event: campaign.ended\n  delay: PT5S\n  deadline: P2D\n",
}


# -- a webhook receiver that counts deliveries per Idempotency-Key --------------------------------


class Receiver:
    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner.lock:
                    owner.keys[self.headers.get("Idempotency-Key", "")] += 1
                body = json.dumps({"reach": 10}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(self.keys)


# -- Prefect's side ----------------------------------------------------------------------------------


def client() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def flow_runs(*names: str) -> list[Any]:
    """Every flow run of the flows named `names` (deployment runs and subflow runs)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with client() as c:
        return list(c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=list(names)))))


def scheduled_time(run: Any) -> datetime:
    """When a scheduled run is due on Prefect's clock (its state's time: a run scheduled again
    keeps its first expected start)."""
    details = run.state.state_details if run.state else None
    return (details and details.scheduled_time) or run.expected_start_time


def task_runs(run_ids: list[UUID]) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client() as c:
        return list(
            c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
        )


@dataclass
class Loop:
    """The server, the project and the two clocks (radar's and Prefect's)."""

    server: PrefectServer
    project: Path
    env: dict[str, str]
    clock: Clock
    receiver: Receiver
    deployments: dict[str, UUID] = field(default_factory=dict)
    worker: Any = None
    offsets: list[tuple[datetime, timedelta]] = field(default_factory=list)  # (since, offset)

    def at(self, when: datetime) -> None:
        """Move radar's clock to `when`, and start the runs radar scheduled for a time now past."""
        self.clock.at(when)
        now = datetime.now(UTC)
        self.offsets.append((now, when - now))
        from prefect.states import Scheduled

        for run in flow_runs(*self.deployments):
            if run.state_type.value != "SCHEDULED" or not any(
                t.startswith("radar:review-") for t in run.tags
            ):
                continue
            due = scheduled_time(run) + self.offset_at(run.created)
            if due <= when:
                with client() as c:
                    c.set_flow_run_state(run.id, Scheduled(scheduled_time=now), force=True)

    def explain(self) -> str:
        """The runs and the worker's log, for a failure message."""
        runs = sorted(flow_runs(*self.deployments), key=lambda r: r.created)
        lines = [
            f"{r.name:<18} {r.state_name:<10} tags={sorted(r.tags)} params={r.parameters} "
            f"start={scheduled_time(r):%m-%d %H:%M:%S} msg={r.state.message if r.state else ''}"
            for r in runs
        ]
        tail = self.worker.tail(80) if self.worker else ""
        return "\nruns:\n" + "\n".join(lines) + f"\nworker log:\n{tail}"

    def offset_at(self, moment: datetime) -> timedelta:
        earlier = [offset for since, offset in self.offsets if since <= moment]
        return earlier[-1] if earlier else timedelta(0)

    def tick(self, name: str, copies: int = 1) -> list[UUID]:
        """Runs of the outcome's deployment without parameters, scheduled now (a tick)."""
        from prefect.states import Scheduled

        with client() as c:
            return [
                c.create_flow_run_from_deployment(
                    self.deployments[name], parameters={},
                    state=Scheduled(scheduled_time=datetime.now(UTC)),
                ).id
                for _ in range(copies)
            ]  # fmt: skip

    def retry(self, run_id: UUID) -> None:
        from prefect.states import Scheduled

        with client() as c:
            c.set_flow_run_state(run_id, Scheduled(scheduled_time=datetime.now(UTC)), force=True)

    def settle(self, timeout: float = 240) -> None:
        """Wait until no run that is due (on Prefect's clock) is unfinished."""

        def quiet() -> bool:
            now = datetime.now(UTC) + timedelta(seconds=2)
            busy = [
                r for r in flow_runs(*self.deployments)
                if r.state_type.value not in FINAL
                and (r.state_type.value != "SCHEDULED" or scheduled_time(r) <= now)
            ]  # fmt: skip
            return not busy

        wait_for("the due runs to finish", quiet, timeout, every=1.5)

    def history(self, name: str) -> dict[str, dict[str, Any]]:
        done = run_cli([RADAR, "history", name, "--json"], env=self.env, cwd=self.project)
        assert done.returncode == 0, done.stderr
        return {c["period"]: c for c in json.loads(done.stdout)}

    def emit(self, name: str, period: str) -> None:
        done = run_cli(
            [RADAR, "campaign-ended", f"elsewhere/{name}.yaml", "--period", period],
            env=self.env, cwd=self.project,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("monthly-loop")
    project = root / "project"
    elsewhere = project / "elsewhere"  # not under flows/: `radar deploy PATH` from anywhere
    values = {m: 0.18 + 0.002 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2025-06", 30))}
    write_monthly_csv(elsewhere / "data" / "rate.csv", values)
    for name, review in REVIEWS.items():
        (elsewhere / f"{name}.yaml").write_text(DECLARATION.format(name=name, review=review))
    receiver = Receiver()
    clock = Clock(root / "clock")
    clock.file.write_text("0")
    with PrefectServer.start(root / "prefect") as server, server.settings():
        base = server.env(RADAR_DATABASE_URL=f"sqlite:///{project / 'history.db'}")
        base.pop("HOOK_BASE", None)
        # the deploying machine has no HOOK_BASE: only the worker's environment sets it
        done = run_cli([RADAR, "deploy", "elsewhere/campaign.yaml", "elsewhere/silent.yaml"],
                       env=base, cwd=project, timeout=180)  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        assert done.stdout.count("the worker needs HOOK_BASE") == 2, done.stdout
        env = {**base, **clock.env(), "HOOK_BASE": receiver.url}
        the_loop = Loop(server, project, env, clock, receiver)
        with client() as c:
            for name in REVIEWS:
                the_loop.deployments[name] = c.read_deployment_by_name(f"{name}/{name}").id
        with server.worker(env=env, cwd=project, args=["--limit", "4"]) as worker:
            the_loop.worker = worker
            yield the_loop
    receiver.server.shutdown()
    assert not owned_processes(server.owner)


def local(year: int, month: int, day: int = 1, hour: int = 6, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, 5, tzinfo=AMSTERDAM)


def test_three_months_of_ticks_deliver_and_review_each_period_once(loop: Loop) -> None:
    # January: both open; the January tick of `campaign` runs twice at once (two workers, one
    # slot), and `silent`'s is retried after it finished
    loop.at(local(2027, 1))
    twice = loop.tick("campaign", copies=2)
    [silent_january] = loop.tick("silent")
    loop.settle()
    loop.retry(silent_january)
    loop.settle()

    # February: both open February; January waits for its event (`silent`: for its deadline)
    loop.at(local(2027, 2))
    loop.tick("campaign")
    loop.tick("silent")
    loop.settle()
    campaign = loop.history("campaign")
    assert campaign["2027-01"]["status"] == "review pending"
    assert "campaign.ended + PT5S" in campaign["2027-01"]["extra"]["pending"]
    assert "review of 2027-01 pending" in campaign["2027-02"]["extra"]["approach_reason"]

    # Feb 3: `silent`'s deadline run reviews its January
    loop.at(local(2027, 2, 3, 0, 1))
    loop.settle()
    silent = loop.history("silent")
    assert silent["2027-01"]["reasons"][:1] == [
        "no campaign.ended event by 2027-02-03 00:00 CET"
    ], loop.explain()

    # Feb 10: January's campaign ended; its review lands after February opened
    loop.at(local(2027, 2, 10))
    loop.emit("campaign", "2027-01")
    try:
        wait_for("the campaign review of 2027-01",
                 lambda: loop.history("campaign")["2027-01"]["status"] == "reviewed", 120)  # fmt: skip
    except pytest.fail.Exception as exc:
        raise AssertionError(f"{exc}{loop.explain()}") from None
    loop.settle()

    # March: January's plan opens March; February still waits
    loop.at(local(2027, 3))
    loop.tick("campaign")
    loop.tick("silent")
    loop.settle()
    loop.at(local(2027, 3, 3, 0, 1))  # `silent`'s February deadline
    loop.settle()

    # April: no event for `campaign`'s February by its deadline (Apr 1, 00:00 + 5 s): the tick
    # reviews it before it opens April
    loop.at(local(2027, 4))
    loop.tick("campaign")
    loop.tick("silent")
    loop.settle()

    campaign, silent = loop.history("campaign"), loop.history("silent")
    assert sorted(campaign) == sorted(silent) == ["2027-01", "2027-02", "2027-03", "2027-04"]
    for name, cycles in (("campaign", campaign), ("silent", silent)):
        for period, cycle in cycles.items():
            stages = Counter(r["stage"] for r in cycle["stage_runs"] if r["status"] == "completed")
            reviewed = period in ("2027-01", "2027-02")
            assert stages == Counter(OPENING + (CLOSING if reviewed else [])), (name, period)
            assert cycle["status"] == ("reviewed" if reviewed else
                                       "open" if period == "2027-04" else "review pending")  # fmt: skip
            assert [a["status"] for a in cycle["actions"]] == ["succeeded"], (name, period)
    assert campaign["2027-02"]["reasons"][0] == "no campaign.ended event by 2027-04-01 00:00 CEST"
    assert campaign["2027-03"]["approach"] == campaign["2027-01"]["next_approach"]

    # every period's action was delivered exactly once, with its idempotency key
    expected = {
        f"{name}/{period}/{cycle['approach']['name']}/{cycle['actions'][0]['name']}"
        for name, cycles in (("campaign", campaign), ("silent", silent))
        for period, cycle in cycles.items()
    }
    assert loop.receiver.counts() == Counter(dict.fromkeys(expected, 1))

    # no flow run failed or crashed; both copies of one slot and the retry completed
    runs = flow_runs("campaign", "silent")
    finished = [r for r in runs if r.state_type.value in FINAL]
    assert {r.state_type.value for r in finished} == {"COMPLETED"}, [
        (r.name, r.state_name, r.state.message) for r in finished if r.state_name != "Completed"
    ]
    assert {r.state_type.value for r in runs if r.id in twice} == {"COMPLETED"}

    # the UI's run names agree with the history: each stage ran once, as a task of a flow run
    # named after the period it belongs to
    names = {r.id: r.name for r in runs}
    tasks = task_runs(list(names))
    stages = {*OPENING, *CLOSING}  # a subflow shows in its parent as a task run of its own
    seen = Counter(
        (names[t.flow_run_id], t.name)
        for t in tasks
        if t.state_type.value == "COMPLETED" and t.name in stages
    )
    recorded = Counter(
        (f"{name}/{period}", r["stage"])
        for name, cycles in (("campaign", campaign), ("silent", silent))
        for period, cycle in cycles.items()
        for r in cycle["stage_runs"] if r["status"] == "completed"
    )  # fmt: skip
    assert seen == recorded

    # each run's log states what it decided, and why
    [reviewed] = [r for r in runs if r.name == "silent/2027-01" and r.state_name == "Completed"
                  and "radar:review-deadline" in r.tags]  # fmt: skip
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with client() as c:
        logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[reviewed.id])))
    said = " ".join(log.message for log in logs)
    decision = silent["2027-01"]["decision"]
    assert f"silent/2027-01: assessment, review; decision {decision}: no campaign.ended" in said
