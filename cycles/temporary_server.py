"""Prefect's temporary API server, for commands that run flows when no Prefect API is configured.

Prefect starts one itself at the first flow run (`SubprocessASGIServer`): uvicorn serving
`prefect.server.api.server:create_app` in a subprocess. Importing that class imports the whole
server into the calling process too, 5-6 s of CPU on a 2-core machine spent next to the
subprocess doing the same. This module starts the same subprocess without that import, so the
command can go on loading its data while the server starts. It hands uvicorn a socket it has
bound already (`--fd`): the port is the server's from the start, where choosing a free port and
letting the subprocess bind it seconds later could find it taken, or answered by another server.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cycles.errors import RadarError

# flows need no block types: registering them costs ~1 s of a new database's first start
# (`prefect server start` registers them when it starts); a user's setting wins
NO_BLOCK_TYPES = {"PREFECT_API_BLOCKS_REGISTER_ON_START": "false"}
# what Prefect's SubprocessASGIServer sets (no UI, the ephemeral server's set of services), and
# errors logged to the server's private log, read when it fails to start
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "ERROR",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "ERROR",
}
STARTUP_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"  # Prefect's own setting
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception)\b")


class TemporaryServer:
    """`start()` returns at once; `wait()` blocks until the API answers and returns its URL.
    The server stops when the process exits, after Prefect has flushed its logs and events."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)  # a request made before uvicorn serves waits in the backlog
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    def start(self) -> TemporaryServer:
        spec = importlib.util.find_spec("prefect")  # found, not imported: the subprocess does
        assert spec is not None and spec.origin is not None, "prefect is a dependency"
        app_dir = str(Path(spec.origin).parent.parent)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--app-dir", app_dir,
                "--factory", "prefect.server.api.server:create_app",
                "--fd", str(self._socket.fileno()),
                "--log-level", "error", "--lifespan", "on",
            ],
            env={**NO_BLOCK_TYPES, **os.environ, **SERVER_ENV},
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            pass_fds=(self._socket.fileno(),),
        )  # fmt: skip
        self._socket.close()  # the server holds its own copy
        # registered before Prefect registers its log and event flushers, so it runs after them
        atexit.register(self.stop)
        return self

    def wait(self, timeout: float | None = None) -> str:
        import httpx

        assert self.process is not None, "start() first"
        limit = timeout or float(os.environ.get(STARTUP_TIMEOUT, 120))
        deadline = time.monotonic() + limit
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RadarError(
                        f"Prefect's temporary server did not start (exit code "
                        f"{self.process.returncode}): {self._reason()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return self.url
                time.sleep(0.1)
        self.stop()
        raise RadarError(
            f"Prefect's temporary server did not answer within {limit:g} s ({STARTUP_TIMEOUT})"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._socket.close()
        self._log.close()

    def _reason(self) -> str:
        """The server's last exception line, else its last line."""
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().decode(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        errors = [line for line in lines if EXCEPTION_LINE.match(line)]
        return (errors or lines or ["no output"])[-1]

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Flows run in this block talk to this server, once it answers."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.wait()}):
            yield


def api(server: TemporaryServer | None) -> contextlib.AbstractContextManager[None]:
    """The API flows run against in this block: `server`, or the configured one."""
    return contextlib.nullcontext() if server is None else server.serving()
