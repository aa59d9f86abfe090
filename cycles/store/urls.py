"""Database URL rules, free of SQLAlchemy so `radar` can resolve the URL cheaply."""

from __future__ import annotations

import os
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


def default_url() -> str:
    """`RADAR_DATABASE_URL` (normalised), else `sqlite:///<cwd>/.radar/radar.db`."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return normalise_url(env)
    return f"sqlite:///{Path.cwd() / '.radar' / 'radar.db'}"
