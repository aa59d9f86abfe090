"""A real Prefect server and worker as subprocesses, for integration tests and benchmarks.

Plain context managers, no pytest import, so a benchmark can use them too:

    with PrefectServer.start(tmp) as server:            # prefect server start, waits for /api/health
        env = server.env(RADAR_DATABASE_URL=...)        # for subprocesses (radar, prefect CLIs)
        with server.settings():                         # in-process clients talk to this server
            ...
        with server.worker(env=env, cwd=project):       # prefect worker start --pool radar
            ...

Everything started here is stopped at exit: SIGTERM to the process's group, wait, SIGKILL.
Processes started with `start_new_session=True` lead their own group, so uvicorn children and
helpers die with them. Prefect's process worker runs each flow run in a new session of its own
(`runner/_starter_engine.py`, `isolate_process_group`), which a group kill misses: so every
environment handed out carries an owner token (`RADAR_TEST_OWNER`), and `owned_processes`
finds every live process with it in its environment, however it was started or re-parented.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
PREFECT = str(VENV_BIN / "prefect")
RADAR = str(VENV_BIN / "radar")
OWNER_VAR = "RADAR_TEST_OWNER"

# Settings of the test process that must not leak into subprocesses talking to a test server.
_DROPPED = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "PREFECT_HOME",
            "RADAR_DATABASE_URL", "RADAR_FLOWS", OWNER_VAR)  # fmt: skip


class ServerStartError(RuntimeError):
    """The server did not answer /api/health in time (the message ends with its log tail)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


# -- processes ------------------------------------------------------------------------------------


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def owned_processes(owner: str) -> list[int]:
    """Live processes (not zombies) whose environment carries `RADAR_TEST_OWNER=<owner>`."""
    marker = f"{OWNER_VAR}={owner}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if marker in _environ(int(entry.name)).split(b"\0") and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def describe(pids: Sequence[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        out.append(f"{pid}: {cmd.strip()}")
    return "; ".join(out)


def stop_process(proc: subprocess.Popen[Any], *, grace: float = 15.0) -> None:
    """SIGTERM the process's group (it leads one), wait, then SIGKILL the group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # the leader may be gone while its children (uvicorn, a run process) are not
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def kill_owned(owner: str, *, grace: float = 5.0) -> list[int]:
    """SIGTERM then SIGKILL every process carrying the owner token; the pids found at first."""
    pids = owned_processes(owner)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and owned_processes(owner):
        time.sleep(0.1)
    for pid in owned_processes(owner):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and owned_processes(owner):
        time.sleep(0.1)
    return pids


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion in its own session (killed with its group on timeout)."""
    proc = subprocess.Popen(
        list(args), env=dict(env), cwd=cwd, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc, grace=2)
        out, err = proc.communicate()
        raise AssertionError(
            f"{' '.join(args)} did not finish in {timeout} s\nstdout:\n{out}\nstderr:\n{err}"
        ) from None
    done = subprocess.CompletedProcess(list(args), proc.returncode, out, err)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}\nstdout:\n{out}\nstderr:\n{err}"
        )
    return done


# -- server and worker ----------------------------------------------------------------------------


@dataclass
class Worker:
    proc: subprocess.Popen[Any]
    log: Path
    pool: str

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class PrefectServer:
    """A `prefect server start` on 127.0.0.1 with its own PREFECT_HOME (SQLite)."""

    port: int
    home: Path
    log: Path
    proc: subprocess.Popen[Any]
    owner: str
    workers: list[Worker] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    # -- starting and stopping -------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        directory: Path,
        *,
        timeout: float = 120.0,
        database_url: str | None = None,
        server_env: Mapping[str, str] | None = None,
    ) -> Iterator[PrefectServer]:
        """Start a server in `directory` (its PREFECT_HOME and log); stop it and all else at exit.

        `database_url`: the server's database (`postgresql+asyncpg://...`; default SQLite in its
        PREFECT_HOME); `server_env`: more settings for the server process only."""
        directory.mkdir(parents=True, exist_ok=True)
        home = directory / "prefect-home"
        home.mkdir(exist_ok=True)
        owner = uuid.uuid4().hex
        port = free_port()
        log = directory / "server.log"
        server = cls(port=port, home=home, log=log, proc=None, owner=owner)  # type: ignore[arg-type]
        env = server.env(**(server_env or {}))
        if database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        with log.open("wb") as out:
            server.proc = subprocess.Popen(
                [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        try:
            server.wait_healthy(timeout)
            yield server
        finally:
            server.stop()

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until GET /api/health answered true; ServerStartError with the log tail."""
        import httpx

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"prefect server exited with {self.proc.returncode} before answering "
                    f"/api/health; last lines of {self.log}:\n{log_tail(self.log)}"
                )
            try:
                answer = httpx.get(f"{self.api_url}/health", timeout=2)
                if answer.status_code == 200 and answer.json() is True:
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise ServerStartError(
            f"prefect server on port {self.port} did not answer /api/health within {timeout} s; "
            f"last lines of {self.log}:\n{log_tail(self.log)}"
        )

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        stop_process(self.proc)
        kill_owned(self.owner)

    @contextlib.contextmanager
    def worker(
        self,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        pool: str = "radar",
        args: Sequence[str] = (),
        name: str | None = None,
    ) -> Iterator[Worker]:
        """`prefect worker start --pool <pool>` (polling every second); stopped at exit.

        Stopping kills the worker's group and any flow-run process it left (found by the owner
        token in `env`, which must come from `self.env()`).
        """
        environment = dict(env if env is not None else self.env())
        environment.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")
        assert environment.get(OWNER_VAR) == self.owner, "pass an env made by PrefectServer.env()"
        directory = Path(cwd) if cwd is not None else self.home.parent
        log = directory / f"worker-{name or pool}-{uuid.uuid4().hex[:6]}.log"
        command = [PREFECT, "worker", "start", "--pool", pool, *args]
        if name:
            command += ["--name", name]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, env=environment, cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        worker = Worker(proc=proc, log=log, pool=pool)
        self.workers.append(worker)
        try:
            yield worker
        finally:
            before = set(owned_processes(self.owner))
            worker.stop()
            self.workers.remove(worker)
            # flow-run processes of this worker (own sessions): the owner token minus the server
            server_side = _tree(self.proc.pid) | {w.proc.pid for w in self.workers}
            for pid in before - server_side:
                if pid != self.proc.pid and _alive(pid):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)

    # -- talking to it ---------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a subprocess that talks to this server."""
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_URL=self.url,
            PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
            **{OWNER_VAR: self.owner},
        )
        env.update(extra)
        return env

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        """Point this process's Prefect client at the server, even if Prefect is imported.

        Prefect reads environment settings once, at import; `temporary_settings` replaces the
        settings context, which `get_client()` reads.
        """
        from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url, PREFECT_UI_URL: self.url}):
            yield


def _tree(pid: int) -> set[int]:
    """`pid` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo.extend(children.get(p, []))
    return found
