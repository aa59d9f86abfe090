"""Prefect's temporary server, started by radar when a flow runs and no Prefect API is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from prefect_server import OWNER_VAR, describe, owned_processes


def radar(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **env}
    for name in ("RADAR_DATABASE_URL", "PREFECT_API_URL", "PREFECT_PROFILE"):
        full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "cycles.cli", *args], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_flow_run_without_an_api_goes_through_a_temporary_server_that_stops_with_radar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, owner = tmp_path / "prefect-home", uuid.uuid4().hex
    proc = radar(
        "run", "referrals", "--period", "2025-09", "--prefect", "--json",
        cwd=tmp_path, PREFECT_HOME=str(home), **{OWNER_VAR: owner},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no server chatter, no Prefect log lines
    assert json.loads(proc.stdout)["decision"] == "adjust"
    left = owned_processes(owner)
    assert not left, f"the temporary server outlived radar: {describe(left)}"

    # the run, its five stage tasks and its artifacts are in PREFECT_HOME's database, for
    # `prefect server start` to show
    from prefect.client.orchestration import get_client

    from cycles.temporary_server import TemporaryServer

    monkeypatch.setenv("PREFECT_HOME", str(home))
    server = TemporaryServer().start()
    try:
        with server.serving(), get_client(sync_client=True) as client:
            [run] = client.read_flow_runs()
            tasks = client.read_task_runs()
            artifacts = client.read_artifacts()
    finally:
        server.stop()
    assert run.name == "referrals/2025-09" and run.state_name == "Completed"
    assert sorted(t.name for t in tasks) == sorted(
        ["result", "approach", "deployment", "assessment", "review"]
    )
    assert {a.key for a in artifacts} == {"referrals-review", "referrals-recent", "referrals-chart"}
    assert server.process is None  # stopped


@pytest.mark.slow
def test_a_temporary_server_that_cannot_start_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    proc = radar(
        "run", "referrals", "--period", "2025-09", "--prefect",
        cwd=tmp_path, PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp_path}/a-file/prefect.db",
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("radar: Prefect's temporary server did not start (exit code")
    assert "unable to open database file" in proc.stderr
    history = radar("history", "referrals", "--json", cwd=tmp_path)
    assert history.returncode == 0 and json.loads(history.stdout) == []  # nothing recorded
