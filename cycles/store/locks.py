"""One run at a time per outcome and period, released even when the process is killed.

PostgreSQL: a session advisory lock; MySQL/MariaDB: GET_LOCK; both end with their connection.
SQLite: an exclusive `flock` on a file beside the database, which the kernel drops with the
process. Runs of different outcomes or periods never wait for each other.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from cycles.errors import AlreadyRunning, StoreError


def _key(outcome: str, period: str) -> tuple[int, str]:
    digest = hashlib.blake2b(f"radar:{outcome}/{period}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True), f"radar-{digest.hex()}"


def _busy(outcome: str, period: str, holder: str = "") -> AlreadyRunning:
    by = f" ({holder})" if holder else ""
    return AlreadyRunning(f"{outcome}/{period} is already running{by}; try again when it ends")


POLL = 0.2  # seconds between tries while waiting for a lock


@contextmanager
def run_lock(engine: sa.Engine, outcome: str, period: str, wait: float = 0) -> Iterator[None]:
    """Hold the lock of `outcome`/`period` for the duration. Another run holding it: wait up to
    `wait` seconds for it to end, then raise AlreadyRunning (at once with `wait=0`)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with _file_lock(engine, outcome, period, wait):
            yield
        return
    # a server lock; other databases have no portable one: the unique (outcome, period) row
    # still prevents doubles
    number, name = _key(outcome, period)
    with session_lock(engine, number, name, wait, lambda: _busy(outcome, period)):
        yield


@contextmanager
def session_lock(
    engine: sa.Engine, number: int, name: str, wait: float, busy: Callable[[], Exception]
) -> Iterator[None]:
    """Hold a lock of the database server for the duration, on a connection of its own:
    PostgreSQL's session advisory lock `number`, MySQL/MariaDB's GET_LOCK(`name`); the server
    frees either with its connection, so a killed process leaves none behind. Another session
    holding it: try again every POLL seconds for up to `wait` seconds, then raise `busy()`.
    Other databases: no lock."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        take = sa.text("SELECT pg_try_advisory_lock(:k)")
        release = sa.text("SELECT pg_advisory_unlock(:k)")
    elif dialect in ("mysql", "mariadb"):
        take, release = sa.text("SELECT GET_LOCK(:n, 0)"), sa.text("SELECT RELEASE_LOCK(:n)")
    else:
        yield
        return
    params: dict[str, object] = {"k": number, "n": name}
    deadline = time.monotonic() + wait
    with engine.connect() as conn:
        while True:
            got = conn.execute(take, params).scalar() == 1  # PostgreSQL: true; MySQL: 1
            conn.commit()
            if got:
                break
            if time.monotonic() >= deadline:
                raise busy()
            time.sleep(POLL)
        try:
            yield
        finally:
            _release(conn, release, params)


def _release(conn: sa.Connection, release: sa.TextClause, params: dict[str, object]) -> None:
    """Unlock; when that fails (a server past its deadline), close the session instead: the
    server frees a session lock with its connection, and a pooled connection must not keep it."""
    try:
        conn.execute(release, params)
        conn.commit()
    except sa.exc.SQLAlchemyError:
        conn.invalidate()


@contextmanager
def _file_lock(engine: sa.Engine, outcome: str, period: str, wait: float) -> Iterator[None]:
    """An exclusive `flock` on `<database>.locks/radar-<hash>.lock`. The directory is created
    0700 and the file 0600; neither is opened through a link (a planted link would otherwise
    have its target truncated), and the file must be a regular file with one link."""
    import fcntl

    from cycles.store.files import open_lock_file

    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    _, name = _key(outcome, period)
    path = Path(database).with_name(Path(database).name + ".locks") / f"{name}.lock"
    deadline = time.monotonic() + wait
    try:
        handle = open_lock_file(path)
    except OSError as exc:
        reason = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise StoreError(f"cannot open the run lock {path}: {reason}") from None
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(POLL)
                    continue
                handle.seek(0)
                raise _busy(outcome, period, handle.read(500).strip()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%H:%M:%S} UTC"
        )
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
