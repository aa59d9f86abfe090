"""Prefect's temporary server, started by radar when a flow runs and no Prefect API is configured."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import uuid
from pathlib import Path

import pytest

from conftest import radar
from prefect_server import OWNER_VAR, describe, owned_processes


@pytest.mark.slow
def test_a_flow_run_without_an_api_goes_through_a_temporary_server_that_stops_with_radar(
    tmp_path: Path,
) -> None:
    home, owner = tmp_path / "prefect-home", uuid.uuid4().hex
    proc = radar(
        "run", "referrals", "--period", "2025-09", "--prefect", "--json",
        cwd=tmp_path, env={"PREFECT_HOME": str(home), OWNER_VAR: owner},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no server chatter, no Prefect log lines
    assert json.loads(proc.stdout)["decision"] == "adjust"
    left = owned_processes(owner)
    assert not left, f"the temporary server outlived radar: {describe(left)}"

    # the run, its five stage tasks and its artifacts are in PREFECT_HOME's database, for
    # `prefect server start` to show: the server stopped after Prefect flushed its events
    with contextlib.closing(sqlite3.connect(home / "prefect.db")) as db:
        runs = db.execute("SELECT name, state_name FROM flow_run").fetchall()
        tasks = [name for (name,) in db.execute("SELECT name FROM task_run")]
        artifacts = {key for (key,) in db.execute("SELECT key FROM artifact")}
    assert runs == [("referrals/2025-09", "Completed")]
    assert sorted(tasks) == sorted(["result", "approach", "deployment", "assessment", "review"])
    assert artifacts == {"referrals-review", "referrals-recent", "referrals-chart"}


@pytest.mark.slow
def test_a_temporary_server_that_cannot_start_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    proc = radar(
        "run", "referrals", "--period", "2025-09", "--prefect",
        cwd=tmp_path, env={
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/a-file/prefect.db",
        },
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("radar: Prefect's temporary server did not start (exit code")
    assert "unable to open database file" in proc.stderr
    history = radar("history", "referrals", "--json", cwd=tmp_path)
    assert history.returncode == 0 and json.loads(history.stdout) == []  # nothing recorded


def test_the_port_is_the_servers_from_the_start() -> None:
    """Bound before uvicorn starts (it gets the socket), so nothing else can take the port in
    the seconds uvicorn spends importing Prefect's server."""
    from cycles.temporary_server import TemporaryServer

    server = TemporaryServer()
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as other:
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", server.port))
        server.stop()
        other.bind(("127.0.0.1", server.port))  # released with the server
