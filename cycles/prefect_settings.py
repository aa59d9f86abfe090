"""The Prefect API URL that Prefect 3 would use, read from its own sources without importing it.

`radar run` and `radar demo` decide between a flow run and an in-process cycle before Prefect is
imported (importing it costs about a second), so they read what Prefect's settings read, in its
order (`prefect/settings/base.py`, `sources.py`), highest first; the first source that sets
`PREFECT_API_URL` wins, even to an empty value:

1. the environment (`PREFECT_API_URL`);
2. `.env` in the working directory (`PREFECT_API_URL=...`);
3. `prefect.toml` in the working directory (`[api]` `url = "..."`);
4. `pyproject.toml` in the working directory (`[tool.prefect.api]` `url = "..."`);
5. the active profile (`PREFECT_PROFILE`, else the file's `active`) of the profiles file:
   `PREFECT_PROFILES_PATH` from the environment, `.env`, `prefect.toml` (`profiles_path`) or
   `pyproject.toml` (`[tool.prefect]` `profiles_path`), else `$PREFECT_HOME/profiles.toml`,
   else `~/.prefect/profiles.toml`. Prefect's test mode (`PREFECT_TEST_MODE`, ...) ignores it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

KEY = "PREFECT_API_URL"
TEST_MODE = ("PREFECT_TEST_MODE", "PREFECT_UNIT_TEST_MODE", "PREFECT_TESTING_UNIT_TEST_MODE",
             "PREFECT_TESTING_TEST_MODE")  # fmt: skip


def api_url(cwd: Path | None = None) -> str | None:
    """The configured Prefect API URL, or None (none configured, or set to an empty value)."""
    here = Path.cwd() if cwd is None else cwd
    found = _lookup(os.environ, KEY)
    if found is not None:
        return found or None
    dotenv = _dotenv(here / ".env")
    prefect_toml, pyproject = _toml(here / "prefect.toml"), _toml(here / "pyproject.toml")
    for found in (
        _lookup(dotenv, KEY),
        _dig(prefect_toml, "api", "url"),
        _dig(pyproject, "tool", "prefect", "api", "url"),
        _profile_url(_profiles_path(dotenv, prefect_toml, pyproject)),
    ):
        if found is not None:
            return str(found) or None
    return None


def _profiles_path(
    dotenv: dict[str, str], prefect_toml: dict[str, Any], pyproject: dict[str, Any]
) -> Path | None:
    """Where Prefect reads its profiles (`_get_profiles_path`); None: its bundled defaults,
    which configure no API."""
    if any(os.environ.get(name) for name in TEST_MODE):
        return None
    named = (
        os.environ.get("PREFECT_PROFILES_PATH")
        or dotenv.get("PREFECT_PROFILES_PATH")  # Prefect reads this one case-sensitively
        or _dig(prefect_toml, "profiles_path")
        or _dig(pyproject, "tool", "prefect", "profiles_path")
    )
    if named:
        return Path(str(named)).expanduser()
    if os.environ.get("PREFECT_HOME"):
        return Path(os.environ["PREFECT_HOME"]).expanduser() / "profiles.toml"
    return Path.home() / ".prefect" / "profiles.toml"


def _profile_url(path: Path | None) -> str | None:
    if path is None:
        return None
    profiles = _toml(path)
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    profile = profiles.get("profiles", {}).get(active) if active else None
    if not isinstance(profile, dict):  # an unknown profile: Prefect falls back to its default
        return None
    url = profile.get(KEY)
    return None if url is None else str(url)


def _lookup(values: Any, key: str) -> str | None:
    """`key` in environment-like `values`, as pydantic-settings matches it: case-insensitively."""
    if key in values:
        return str(values[key] or "")
    for name, value in values.items():
        if name.upper() == key:
            return str(value or "")
    return None


def _dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # what Prefect and pydantic-settings parse .env with

    try:
        return {k: v or "" for k, v in dotenv_values(path).items()}
    except (OSError, UnicodeDecodeError):
        return {}


def _toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # missing or unreadable; Prefect itself says what is wrong when it reads it


def _dig(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return None if isinstance(data, dict) else data
