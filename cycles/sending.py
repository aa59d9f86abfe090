"""Artifacts sent without waiting: a cycle hands its review, table and chart over and goes on.

Each request to Prefect's API to create an artifact waits on the server (about 25 ms each on
an idle one, far more on a busy one); a cycle's own work takes about as long as its three
requests. A `Sender` posts them from a thread of its own, one lane per artifact key so the
latest artifact of a key is the one created last, while the flow run goes on with its next
cycle. The run that opened the sender waits for everything to be sent before it ends, and
logs any artifact the server refused instead of failing the cycles that made them.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LANES = 6  # requests in flight at once
CLOSE_WAIT = 300.0  # seconds a run waits for its artifacts at its end

_CURRENT: contextvars.ContextVar[Sender | None] = contextvars.ContextVar(
    "radar_artifact_sender", default=None
)


class Sender:
    """A thread with an event loop and one Prefect client, posting artifacts in lanes."""

    def __init__(self, lanes: int = LANES) -> None:
        self.lanes = lanes
        self.sent = 0
        self.failures: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._queues: list[asyncio.Queue[Any]] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        # the thread sees this thread's settings (the API URL a test or a run set)
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="radar-artifacts", daemon=True
        )
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        from prefect import get_client

        try:
            self._queues = [asyncio.Queue() for _ in range(self.lanes)]
            async with get_client() as client:
                lanes = [asyncio.create_task(self._lane(q, client)) for q in self._queues]
                self._ready.set()
                await asyncio.gather(*lanes)
        except BaseException as exc:  # the caller raises it (not ready yet) or logs it
            self._error = exc
            self.failures.append(f"artifact sender stopped: {exc}")
        finally:
            self._ready.set()

    async def _lane(self, queue: asyncio.Queue[Any], client: Any) -> None:
        while True:
            request = await queue.get()
            if request is None:
                return
            try:
                await client.create_artifact(artifact=request)
                self.sent += 1
            except Exception as exc:  # one artifact lost is logged, never fails a cycle
                self.failures.append(f"{request.key}: {exc}")

    def send(self, request: Any) -> None:
        """Queue an `ArtifactCreate`; requests with one key are sent in the order given."""
        if self._error is not None or not self._thread.is_alive():
            raise RuntimeError("the artifact sender has stopped")
        lane = self._queues[zlib.crc32(str(request.key).encode()) % self.lanes]
        self._loop.call_soon_threadsafe(lane.put_nowait, request)

    def close(self, timeout: float = CLOSE_WAIT) -> list[str]:
        """Send what is queued, stop; the failures (one line each)."""
        if self._thread.is_alive():
            for lane in self._queues:
                self._loop.call_soon_threadsafe(lane.put_nowait, None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.failures.append(f"artifacts still unsent after {timeout:g} s")
        return self.failures


def current() -> Sender | None:
    """The sender of the run this code runs in (its threads included), if one is open."""
    return _CURRENT.get()


@contextmanager
def sending(lanes: int = LANES) -> Iterator[Sender]:
    """Open a sender for the duration of a flow run; at its end, wait for every artifact and
    log those that failed as warnings of the run. A sender already open (an enclosing run's)
    is used as it is."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    sender = Sender(lanes)
    token = _CURRENT.set(sender)
    try:
        yield sender
    finally:
        _CURRENT.reset(token)
        failures = sender.close()
        if failures:
            from prefect.logging import get_run_logger

            from cycles.secrets import redact

            more = f"; {len(failures) - 5} more" if len(failures) > 5 else ""
            shown = "; ".join(failures[:5]) + more
            get_run_logger().warning(redact(f"{len(failures)} artifact(s) not published: {shown}"))
