"""Engine set-up, Alembic migrations and error translation for the history database.

Every wait on a database server has an end: `timeout_args` gives the driver arguments that bound
it (PyMySQL's read/write timeouts, PostgreSQL's `statement_timeout` and `connect_timeout`,
SQLite's busy timeout), and `said_late` turns the error a driver raises when one ran out into
one line (`<url> did not answer within 60 s`). The history database's deadline is
`RADAR_DATABASE_TIMEOUT` seconds (default 60; a SQLite history waits 30 s for another writer
unless it is set). The `sql` source and action use the same helpers with their own `timeout`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cycles.errors import StoreError
from cycles.numbers import finite, finite_data
from cycles.store.files import prepare_sqlite_file
from cycles.store.locks import session_lock
from cycles.store.models import HEAD

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE = "radar_write"  # execution option: SQLite takes the write lock at BEGIN (IMMEDIATE)
TIMEOUT_ENV = "RADAR_DATABASE_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # seconds: the longest any one query of the history database may take
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a SQLite history waits for another writer, unless set
CONNECT_TIMEOUT = 10.0  # seconds to open a connection (no more than the timeout)
VERSION_TABLE = "alembic_version"
_ADVISORY_LOCK = 0x52414441  # "RADA": serialises concurrent PostgreSQL migrations
_MYSQL_LOCK = "radar_cycles_migrate"
_MIGRATING = threading.Lock()
_DEADLINES: weakref.WeakKeyDictionary[Engine, tuple[float, float]] = weakref.WeakKeyDictionary()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return finite(float(value))
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return finite_data(value.tolist())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """The JSON every backend accepts: no NaN/Infinity; dates as ISO strings."""
    return json.dumps(finite_data(value), default=_json_default, allow_nan=False)


def parse_url(raw: str) -> URL:
    """Parse without ever echoing the URL (it may hold a password) in the error."""
    try:
        return make_url(raw)
    except (ArgumentError, ValueError):
        raise StoreError(
            "the database URL is not valid (expected e.g. sqlite:///path/radar.db "
            "or postgresql://user@host/db)"
        ) from None


def history_timeout(default: float = DEFAULT_TIMEOUT) -> float:
    """`RADAR_DATABASE_TIMEOUT` in seconds (else `default`): how long one query may take."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise StoreError(f"{TIMEOUT_ENV} must be a number of seconds above 0, not {raw!r}")
    return seconds


def timeout_args(url: URL, seconds: float, connect: float) -> dict[str, Any]:
    """Driver `connect_args` that end every wait on the server: `connect` seconds to connect,
    `seconds` per query. Arguments the URL's query string sets already are left to it.

    PyMySQL: `connect_timeout` (the TCP connect), `read_timeout`/`write_timeout` (the handshake
    and every query: a server that never answers raises after `seconds`). psycopg2:
    `connect_timeout` (the whole connection set-up) and `-c statement_timeout` appended to the
    URL's `options` (the server cancels a longer statement). SQLite: the busy `timeout`.
    """
    driver, query = url.get_driver_name(), url.query
    args: dict[str, Any] = {}
    if driver == "pymysql":
        args = {"connect_timeout": connect, "read_timeout": seconds, "write_timeout": seconds}
    elif driver == "psycopg2":
        args = {"connect_timeout": _whole(connect)}
        given = query.get("options", "")
        options = " ".join(given) if isinstance(given, tuple) else given
        if "statement_timeout" not in options:  # connect_args replace the URL's own options
            args["options"] = f"{options} -c statement_timeout={math.ceil(seconds * 1000)}".strip()
    elif driver == "pysqlite":
        args = {"timeout": seconds}
    return {key: value for key, value in args.items() if key == "options" or key not in query}


def _whole(seconds: float) -> int:
    return max(1, math.ceil(seconds))  # libpq takes whole seconds


def driver_exception(exc: BaseException) -> BaseException:
    """The database driver's exception that a SQLAlchemy error wraps, else `exc` itself."""
    return getattr(exc, "orig", None) or exc


_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)")


def driver_lines(exc: BaseException, *, code: bool = True) -> list[str]:
    """The lines of the driver's message (`driver_exception`) for a one-line error: stripped,
    without blank ones or SQLAlchemy's "(Background on this error at: ...)". `code=False`:
    the message alone of pymysql's `(code, message)`."""
    orig = driver_exception(exc)
    args = tuple(getattr(orig, "args", ()))
    mysql = not code and len(args) == 2 and isinstance(args[1], str)
    text = _BACKGROUND.sub("", args[1] if mysql else str(orig))
    return [line.strip() for line in text.splitlines() if line.strip()]


def deadline_hit(exc: BaseException, seconds: float, connect: float) -> float | None:
    """The deadline (in seconds) that `exc` says ran out, or None when it is another error."""
    orig = driver_exception(exc)
    module, text = type(orig).__module__, str(orig)
    args = tuple(getattr(orig, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else None
    if module.startswith("pymysql") and "timed out" in text:
        return connect if code == 2003 else seconds if code in (2006, 2013) else None
    if module.startswith("psycopg2"):
        if getattr(orig, "pgcode", None) == "57014" and "statement timeout" in text:
            return seconds
        if "timeout expired" in text:
            return _whole(connect)
    if module.startswith("sqlite3") and "database is locked" in text:
        return seconds
    return None


def said_late(exc: BaseException, where: str, seconds: float, connect: float) -> str | None:
    """`<where> did not answer within N s` (SQLite: locked past its busy timeout), or None."""
    hit = deadline_hit(exc, seconds, connect)
    if hit is None:
        return None
    if type(driver_exception(exc)).__module__.startswith("sqlite3"):
        return f"{where}: database is locked by another connection (busy timeout {hit:g} s)"
    return f"{where} did not answer within {hit:g} s"


def make_engine(raw: str) -> Engine:
    """An engine for `raw`; SQLite files get their directory, WAL, busy timeout, foreign keys.

    Every query ends within `RADAR_DATABASE_TIMEOUT` seconds (`timeout_args`)."""
    url = parse_url(raw)
    backend = url.get_backend_name()
    seconds = history_timeout(SQLITE_BUSY_TIMEOUT if backend == "sqlite" else DEFAULT_TIMEOUT)
    connect = min(CONNECT_TIMEOUT, seconds)
    kwargs: dict[str, Any] = {}
    if backend in ("sqlite", "postgresql", "mysql", "mariadb"):
        kwargs["json_serializer"] = dumps
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
        elif not database.startswith("file:"):
            path = Path(database).expanduser().resolve()
            try:  # .radar/ 0700, the file 0600, neither through a planted link
                prepare_sqlite_file(Path(database).expanduser().absolute())
            except OSError as exc:
                raise StoreError(
                    f"cannot create the history database {path}: {exc.strerror or exc}"
                ) from None
            url = url.set(database=str(path))
    else:
        kwargs["pool_pre_ping"] = True
        if backend in ("mysql", "mariadb"):  # no gap locks: concurrent inserts fail cleanly
            kwargs["isolation_level"] = "READ COMMITTED"
        if url.drivername in ("postgresql+psycopg2", "mysql+pymysql"):
            kwargs["connect_args"] = timeout_args(url, seconds, connect)
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise StoreError(
            f"database URL scheme {url.drivername!r} is not supported "
            "(use sqlite://, postgresql:// or mysql://)"
        ) from None
    except ImportError as exc:
        raise StoreError(f"the driver for {url.drivername!r} is not installed: {exc}") from None
    if backend == "sqlite" and url.get_driver_name() == "pysqlite":
        _sqlite_events(engine, math.ceil(seconds * 1000))
    _DEADLINES[engine] = (seconds, connect)
    return engine


def _sqlite_events(engine: Engine, busy_ms: int) -> None:
    """Let SQLAlchemy own BEGIN (so DDL is transactional) and take the write lock up front."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a killed process loses no commit (the WAL is in the OS cache); only a
        # power cut can drop the last commits, never corrupt the file. Saves an fsync per stage.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def display(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _reason(exc: BaseException, password: str | None) -> str:
    """The driver's message on one line, without the password."""
    message = re.sub(r"\s+", " ", " ".join(driver_lines(exc)))
    if password:
        message = message.replace(password, "***")
    return message[:400] or type(exc).__name__


@contextmanager
def translate(engine: Engine) -> Iterator[None]:
    """Turn SQLAlchemy and Alembic failures into one-line StoreErrors naming the redacted URL."""
    try:
        yield
    except StoreError:
        raise
    except (SQLAlchemyError, _alembic_errors()) as exc:
        password = engine.url.password
        seconds, connect = _DEADLINES.get(engine, (DEFAULT_TIMEOUT, CONNECT_TIMEOUT))
        late = said_late(exc, f"history database {display(engine)}", seconds, connect)
        if late is not None:
            raise StoreError(f"{late} ({TIMEOUT_ENV})") from exc
        raise StoreError(
            f"history database {display(engine)}: {_reason(exc, str(password or ''))}"
        ) from exc


def _alembic_errors() -> type[Exception]:
    from alembic.util import CommandError

    return CommandError


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with _quiet_alembic():
        return MigrationContext.configure(conn).get_current_revision()


def needs_upgrade(engine: Engine) -> bool:
    """True unless the database is already at HEAD.

    Reads `alembic_version` directly: importing Alembic's runtime costs more than the query.
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return True
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
        return list(versions) != [HEAD]


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic logs INFO lines; keep them off the user's terminal whatever logging is set up."""
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def upgrade(engine: Engine) -> None:
    """Apply every pending migration in one transaction (DDL is transactional on SQLite/PG).

    Migrations are serialised: in-process by a lock (Alembic's context is a global) and
    across processes by the database (SQLite's write lock, PostgreSQL advisory lock, GET_LOCK).
    """
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config(stdout=io.StringIO())
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    writer = engine.execution_options(**{WRITE: True})
    try:
        # the lock is held until the migration's transaction has committed, so the next
        # process to get it sees the new revision
        with _MIGRATING, _quiet_alembic(), _database_lock(engine), writer.begin() as conn:
            revision = current_revision(conn)
            if revision == HEAD:
                return
            if revision is not None and not _known(ScriptDirectory.from_config(cfg), revision):
                raise StoreError(
                    f"history database {display(engine)} is at schema revision {revision!r}, "
                    f"newer than this radar knows (up to {HEAD!r}): upgrade radar-cycles"
                )
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except StoreError:
        raise
    except Exception:
        # A process without the locks above may have migrated the same database meanwhile.
        try:
            done = not needs_upgrade(engine)
        except Exception:
            done = False
        if not done:
            raise


@contextmanager
def _database_lock(engine: Engine) -> Iterator[None]:
    """Hold a database-wide lock while migrating, on a connection of its own.

    PostgreSQL: a session advisory lock; MySQL/MariaDB: GET_LOCK. SQLite needs none: the
    migration's BEGIN IMMEDIATE holds the write lock until it commits.
    """

    def busy() -> StoreError:
        return StoreError(
            f"history database {display(engine)}: timed out waiting for another process to "
            "finish migrating it"
        )

    # wait for the lock a little less than a query may take (statement or read timeout)
    seconds, _ = _DEADLINES.get(engine, (DEFAULT_TIMEOUT, CONNECT_TIMEOUT))
    with session_lock(engine, _ADVISORY_LOCK, _MYSQL_LOCK, max(0, math.ceil(seconds) - 1), busy):
        yield


def _known(scripts: Any, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:
        return False
