"""One outcome's cycles read over the plain DB-API driver: `radar history` without SQLAlchemy.

Importing SQLAlchemy costs more than everything else `radar history` does. This path reads
the same tables with the same queries (sqlite3, psycopg2, pymysql), decodes the values as the
models' column types do, and builds the records with the Store's own mapping. It only reads,
and only when sure: an unknown URL or driver, a database that is missing or not at the
schema's HEAD revision, or any driver error gives None, and the caller asks the Store instead.
"""

from __future__ import annotations

import json
import os
import re
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from cycles.record import CycleRecord
from cycles.store import mapping
from cycles.store.revision import HEAD
from cycles.urls import normalise_url

CONNECT_TIMEOUT_S = 3  # short: a database that does not answer falls back to the Store's own try
BUSY_TIMEOUT_S = 30

# The columns the models store as JSON, UTCDateTime and Boolean (tests compare with models.py).
JSON_COLUMNS = frozenset(
    {"reasons", "approach_params", "next_approach_params", "limits", "completed_stages", "extra"}
    | {"kwargs", "observed_value"}
)
TIME_COLUMNS = frozenset({"created_at", "updated_at", "started_at", "finished_at"})
BOOL_COLUMNS = frozenset({"success"})

# Store.cycles's queries; {p} is the driver's placeholder for the outcome.
CYCLES = "SELECT * FROM cycles WHERE outcome = {p} ORDER BY period"
_OF = "WHERE cycle_id IN (SELECT id FROM cycles WHERE outcome = {p}) ORDER BY"
CHILDREN = (  # in the order of mapping.records's arguments
    f"SELECT * FROM stage_runs {_OF} id",
    f"SELECT * FROM metric_values {_OF} position",
    f"SELECT * FROM check_results {_OF} position",
    "SELECT * FROM actions WHERE outcome = {p} ORDER BY id",
)

# SQLAlchemy's own `make_url` pattern, so both read a URL alike (passwords may hold "/" or "?").
_URL = re.compile(
    r"""
    (?P<name>[\w\+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/\?]+)\]|(?P<ipv4host>[^/:\?]+))?(?::(?P<port>[^/\?]*))?)?
    (?:/(?P<database>[^\?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.X,
)
_MYSQL_QUERY = {"charset", "unix_socket"}
_MYSQL_SSL = {"ssl_ca", "ssl_key", "ssl_cert", "ssl_capath", "ssl_cipher"}


def read_cycles(url: str, outcome: str) -> list[CycleRecord] | None:
    """`Store(url).cycles(outcome)`, or None when this path cannot be sure to match it."""
    try:
        opened = _connect(normalise_url(url))
    except Exception:  # a bad URL, a missing driver or database, a refused connection
        return None
    if opened is None:
        return None
    conn, placeholder, decoders = opened
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT version_num FROM alembic_version")
        if [version for (version,) in cursor.fetchall()] != [HEAD]:
            return None  # the Store migrates first

        def read(query: str) -> list[Any]:
            return _rows(cursor, query.format(p=placeholder), outcome, decoders)

        cycles = read(CYCLES)
        return mapping.records(cycles, *map(read, CHILDREN)) if cycles else []
    except Exception:  # no such table, a driver error, a value the records refuse
        return None
    finally:
        try:
            conn.rollback()
            conn.close()
        except Exception:
            pass


Decoders = dict[str, Callable[[Any], Any]]


def _rows(cursor: Any, query: str, outcome: str, decoders: Decoders) -> list[Any]:
    """The query's rows as named tuples, values decoded as the models' column types do."""
    cursor.execute(query, (outcome,))
    names = [column[0].lower() for column in cursor.description]
    row = namedtuple("row", names)  # type: ignore[misc]
    decode = [decoders.get(name) for name in names]
    return [
        row(*[v if f is None or v is None else f(v) for f, v in zip(decode, raw, strict=True)])
        for raw in cursor.fetchall()
    ]


# -- decoding -------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """As models.UTCDateTime: naive means UTC; aware is converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_text(value: Any) -> Any:
    """JSON kept as text; SQLite's JSON columns have numeric affinity, so numbers come back as
    numbers (SQLAlchemy's SQLite JSON type passes those through too)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _decoders(json_text: bool, times: Callable[[Any], datetime]) -> Decoders:
    decoders: Decoders = dict.fromkeys(TIME_COLUMNS, times) | dict.fromkeys(BOOL_COLUMNS, bool)
    if json_text:
        decoders |= dict.fromkeys(JSON_COLUMNS, _json_text)
    return decoders


# -- connecting -----------------------------------------------------------------------------------


Parts = dict[str, Any]  # username, password, host, port, database
Opened = tuple[Any, str, Decoders]  # a DB-API connection, its placeholder, the decoders


def parse_url(url: str) -> tuple[str, Parts, dict[str, str]] | None:
    """(driver name, parts, query options) as `make_url` reads them; None for a repeated option."""
    match = _URL.match(url)
    if match is None:
        return None
    found = match.groupdict()
    parts: Parts = {key: found[key] for key in ("username", "password", "database")}
    parts = {key: None if value is None else unquote(value) for key, value in parts.items()}
    parts["host"] = found["ipv4host"] or found["ipv6host"]
    parts["port"] = int(found["port"]) if found["port"] else None
    options: dict[str, str] = {}
    for key, value in parse_qsl(found["query"] or ""):
        if key in options:
            return None  # several hosts, or an option given twice: left to the Store
        options[key] = value
    return found["name"], parts, options


def _connect(url: str) -> Opened | None:
    parsed = parse_url(url)
    if parsed is None:
        return None
    name, parts, options = parsed
    if name in ("sqlite", "sqlite+pysqlite"):
        return _sqlite(parts, options)
    if name == "postgresql+psycopg2":
        return _postgresql(parts, options)
    if name in ("mysql+pymysql", "mariadb+pymysql"):
        return _mysql(parts, options)
    return None


def _sqlite(parts: Parts, options: dict[str, str]) -> Opened | None:
    import sqlite3

    database = parts["database"] or ""
    others = (parts[key] for key in ("username", "password", "host", "port"))
    if options or any(others) or database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database).expanduser().resolve()  # as the Store's engine resolves it
    if not path.is_file():
        return None  # the Store would create it
    # mode=rw never creates the file; query_only refuses writes. (Not mode=ro: a read-only
    # connection could not remove the -wal and -shm files it opens, as the Store's reads do.)
    conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S)
    conn.isolation_level = None
    conn.execute("PRAGMA query_only = ON")
    conn.execute("BEGIN")  # one snapshot for every query, as the Store's session reads
    return conn, "?", _decoders(json_text=True, times=_sqlite_time)


def _sqlite_time(value: str) -> datetime:
    return _utc(datetime.fromisoformat(value))  # as SQLAlchemy reads SQLite's DATETIME text


def _postgresql(parts: Parts, options: dict[str, str]) -> Opened | None:
    import psycopg2

    host = options.get("host", "")
    if "port" in options or "," in host or ":" in host or "," in (parts["host"] or ""):
        return None  # several hosts, or ports in the query: SQLAlchemy's own rules apply
    # the query holds libpq options such as options=-csearch_path=..., sslmode, host=/socket
    kwargs = _connect_args(parts, database="dbname") | options
    # the server ends a query after the history's timeout (as the Store's own engine asks)
    limit = f"-c statement_timeout={int(_timeout() * 1000)}"
    kwargs["options"] = f"{kwargs['options']} {limit}" if kwargs.get("options") else limit
    conn = psycopg2.connect(**kwargs, connect_timeout=CONNECT_TIMEOUT_S)
    conn.set_session(readonly=True)
    return conn, "%s", _decoders(json_text=False, times=_utc)  # psycopg2 parses JSON itself


def _mysql(parts: Parts, options: dict[str, str]) -> Opened | None:
    import pymysql

    if not set(options) <= _MYSQL_QUERY | _MYSQL_SSL:
        return None
    kwargs = _connect_args(parts, database="database")
    kwargs |= {key: value for key, value in options.items() if key in _MYSQL_QUERY}
    ssl = {key[4:]: value for key, value in options.items() if key in _MYSQL_SSL}
    if ssl:
        kwargs["ssl"] = ssl
    # a server that accepts the connection and never answers: each wait ends after the timeout
    seconds = _timeout()
    conn = pymysql.connect(
        **kwargs, connect_timeout=CONNECT_TIMEOUT_S, read_timeout=seconds, write_timeout=seconds
    )
    return conn, "%s", _decoders(json_text=True, times=_utc)


def _timeout() -> float:
    """`RADAR_DATABASE_TIMEOUT` as the Store reads it (an invalid value: the Store says so)."""
    try:
        seconds = float(os.environ.get("RADAR_DATABASE_TIMEOUT", "") or 60)
    except ValueError:
        return 60.0
    return seconds if 0 < seconds < 1e6 else 60.0


def _connect_args(parts: Parts, database: str) -> dict[str, Any]:
    """The URL's parts that are set, under the driver's names (as SQLAlchemy passes them)."""
    names = {"username": "user", "password": "password", "host": "host", "port": "port"}
    return {names.get(part, database): value for part, value in parts.items() if value}
