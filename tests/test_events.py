"""Decision events on a real Prefect server: `radar.cycle.reviewed` with its labels, and the
README's automation notifying on the decisions it names (issue 17, part 2)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from conftest import ROOT
from prefect_server import RADAR, PrefectServer, run_cli

pytestmark = pytest.mark.slow


class Inbox:
    """A local server that keeps every notification posted to it."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append(json.loads(body or b"null"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/notify"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with PrefectServer.start(tmp_path_factory.mktemp("events")) as started, started.settings():
        yield started


def readme_automation() -> str:
    """The automation YAML the README shows (the block after `# notify.yaml`)."""
    text = (ROOT / "README.md").read_text()
    [block] = re.findall(r"```yaml\n(# notify\.yaml.*?)```", text, re.S)
    return block


def test_reviews_emit_events_and_the_readme_automation_notifies(
    server: PrefectServer, tmp_path: Path
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    inbox = Inbox()
    block = CustomWebhookNotificationBlock(
        name="inbox", url=inbox.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    )
    block_id = block.save("radar-test-inbox", overwrite=True)
    automation = tmp_path / "notify.yaml"
    automation.write_text(
        readme_automation().replace("00000000-0000-0000-0000-000000000000", str(block_id))
    )
    env = server.env(RADAR_DATABASE_URL=f"sqlite:///{tmp_path / 'history.db'}")
    done = run_cli([str(Path(RADAR).parent / "prefect"), "automation", "create", "--from-file",
                    str(automation)], env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    time.sleep(2)  # the server loads new automations on its own schedule

    # the demo's first five months, as Prefect flow runs: adjust, adjust, hold, adjust, switch
    done = run_cli([RADAR, "run", "referrals", "--from", "2025-09", "--to", "2026-01", "--json"],
                   env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    decisions = {c["period"]: c["decision"] for c in json.loads(done.stdout)}
    assert decisions == {"2025-09": "adjust", "2025-10": "adjust", "2025-11": "hold",
                         "2025-12": "adjust", "2026-01": "switch"}  # fmt: skip

    import httpx

    def events() -> list[dict[str, Any]]:
        answer = httpx.post(
            f"{server.api_url}/events/filter",
            json={"filter": {"event": {"name": ["radar.cycle.reviewed"]}}, "limit": 50},
            timeout=10,
        )
        answer.raise_for_status()
        return list(answer.json()["events"])

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(events()) < 5 or len(inbox.received) < 2):
        time.sleep(1)
    seen = {e["resource"]["radar.period"]: e for e in events()}
    assert sorted(seen) == sorted(decisions)
    for period, event in seen.items():
        resource = event["resource"]
        assert resource["prefect.resource.id"] == "radar.outcome.referrals"
        assert resource["radar.decision"] == decisions[period]
        assert resource["radar.approach"] == "referral-incentive"
        assert event["payload"]["reasons"] and event["payload"]["period"] == period
    assert seen["2026-01"]["resource"]["radar.next-approach"] == "promoter-nudge"

    time.sleep(3)  # an adjust that notified late would show now
    bodies = sorted(n["body"] for n in inbox.received)
    assert len(bodies) == 2, bodies
    assert bodies[0].startswith("referrals 2025-11: hold, next referral-incentive.")
    assert bodies[1].startswith("referrals 2026-01: switch, next promoter-nudge.")
    assert "3 adjustments in a row without a keep" in bodies[1]
    inbox.server.shutdown()
