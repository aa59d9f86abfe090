"""Database URLs: the history's (`RADAR_DATABASE_URL`, else the nearest `.radar/`) and the drivers a
plain scheme maps to, shared by the store and the SQL connectors; free of SQLAlchemy so `radar`
resolves the URL cheaply."""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV_VAR = "RADAR_DATABASE_URL"

# Plain schemes a user types, mapped to the drivers the default install ships.
_SCHEMES = {
    "postgresql": "postgresql+psycopg2",
    "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def normalise_url(url: str) -> str:
    """Map plain `postgresql://`, `postgres://`, `mysql://`, `mariadb://` to installed drivers.

    URLs naming a driver (`scheme+driver://`) and every other scheme pass through unchanged.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return url.strip()
    return f"{_SCHEMES.get(scheme.lower(), scheme)}://{rest}"


HISTORY_DIR = ".radar"


def default_url() -> str:
    """`RADAR_DATABASE_URL` (normalised), else the SQLite file of `default_history()`."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return normalise_url(env)
    return f"sqlite:///{default_history()}"


def default_history(start: Path | None = None) -> Path:
    """`.radar/radar.db` in the nearest directory at or above `start` (the working directory)
    that holds `.radar/`, found the way git finds `.git/`; else in `start` itself."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / HISTORY_DIR).is_dir():
            return directory / HISTORY_DIR / "radar.db"
    return here / HISTORY_DIR / "radar.db"


def sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///` URL (None for other databases and in-memory SQLite)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite" or not rest.startswith("/"):
        return None
    path = rest[1:].split("?")[0]
    return Path(path) if path and path != ":memory:" else None


_PASSWORD = re.compile(r"^([A-Za-z][\w+.-]*://[^/@:]*:)([^/@]*)(@)")


def without_password(url: str) -> str:
    """`scheme://user:***@host/db`: a URL to show, its password hidden."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}***{m.group(3)}", url)
