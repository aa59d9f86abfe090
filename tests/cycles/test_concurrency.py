"""Two runs of one outcome's period at once record one cycle; the second says it is running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from cycles.periods import Cadence, Period

from conftest import months, write_declaration, write_monthly_csv

# the action holds its run inside the Deployment stage until the test writes the release file
# (at most a minute): a fixed sleep is too short for a second process to start on a busy machine
SLOW_ACTION = """\
import os
import time
from pathlib import Path
def ask(context):
    Path(__file__).with_name(f"started-{context.outcome}").write_text(str(time.time()))
    release, deadline = Path(os.environ["RADAR_TEST_RELEASE"]), time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return 1
"""
ACTION = """\
    actions:
      - {name: ask, type: python, callable: "slow:ask"}
"""


def _databases() -> list[str]:
    out = ["sqlite"]
    if os.environ.get("RADAR_TEST_POSTGRES_URL"):
        out.append("postgresql")
    if os.environ.get("RADAR_TEST_MYSQL_URL"):
        out.append("mysql")
    return out


@pytest.fixture(params=_databases())
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh history database of each kind (PostgreSQL/MariaDB: a schema/database of its own)."""
    import sqlalchemy as sa

    from cycles.store import normalise_url

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    base = os.environ[
        "RADAR_TEST_POSTGRES_URL" if request.param == "postgresql" else "RADAR_TEST_MYSQL_URL"
    ]
    name = f"radar_lock_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            sa.text(f"CREATE {'SCHEMA' if request.param == 'postgresql' else 'DATABASE'} {name}")
        )
    url = sa.make_url(normalise_url(base))
    if request.param == "postgresql":
        url = url.update_query_dict({"options": f"-csearch_path={name}"})
    else:
        url = url.set(database=name)
    yield url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                f"DROP {'SCHEMA' if request.param == 'postgresql' else 'DATABASE'} {name}"
                + (" CASCADE" if request.param == "postgresql" else "")
            )
        )
    engine.dispose()


def _outcome(directory: Path, name: str) -> Path:
    write_monthly_csv(directory / "data" / "rate.csv", dict.fromkeys(months("2025-01", 30), 0.18))
    (directory / "slow.py").write_text(SLOW_ACTION)
    decl = write_declaration(directory, outcome=name)
    decl.write_text(
        decl.read_text().replace(
            "    adjust: {usd: {step: 10, max: 40}}\n",
            "    adjust: {usd: {step: 10, max: 40}}\n" + ACTION,
        )
    )
    return decl


def _start(decl: Path, url: str, release: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "RADAR_DATABASE_URL": url, "RADAR_TEST_RELEASE": str(release)}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cycles.cli", "run", str(decl), "--json"],
        cwd=decl.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_same_period_twice_records_one_cycle(tmp_path: Path, history_url: str) -> None:
    decl = _outcome(tmp_path, "busy")
    release = tmp_path / "release"
    first = _start(decl, history_url, release)
    _wait_for(tmp_path / "started-busy")  # the first run is inside its Deployment stage
    second = _start(decl, history_url, release)
    _, err = second.communicate(timeout=60)
    release.touch()
    assert second.returncode == 1, err
    period = Period.containing(date.today(), Cadence.monthly)
    assert err.count("\n") == 1 and f"busy/{period} is already running" in err
    assert first.wait(timeout=60) == 0, first.stderr.read() if first.stderr else ""

    from cycles.store import Store

    store = Store(history_url)
    cycles = store.cycles("busy")
    assert [c.period for c in cycles] == [str(period)]
    assert [(a.status, a.attempts) for a in cycles[0].actions] == [("succeeded", 1)]
    store.dispose()


@pytest.mark.slow
def test_different_outcomes_do_not_wait(tmp_path: Path, history_url: str) -> None:
    one, two = _outcome(tmp_path / "one", "alpha"), _outcome(tmp_path / "two", "beta")
    release = tmp_path / "release"
    runs = [_start(one, history_url, release), _start(two, history_url, release)]
    try:
        # both inside their Deployment stage at once: had one waited for the other's lock, its
        # stage would not start before the release
        _wait_for(one.parent / "started-alpha", timeout=45)
        _wait_for(two.parent / "started-beta", timeout=45)
    finally:
        release.touch()
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
