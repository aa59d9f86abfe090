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

SLOW_ACTION = """\
import time
from pathlib import Path
def ask(context):
    here = Path(__file__)
    here.with_name(f"started-{context.outcome}").write_text(str(time.time()))
    time.sleep(3)
    here.with_name(f"ended-{context.outcome}").write_text(str(time.time()))
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


def _start(decl: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RADAR_DATABASE_URL": url}
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
    first = _start(decl, history_url)
    _wait_for(tmp_path / "started-busy")  # the first run is inside its Deployment stage
    second = _start(decl, history_url)
    _, err = second.communicate(timeout=60)
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
    runs = [_start(one, history_url), _start(two, history_url)]
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err

    def span(directory: Path, name: str) -> tuple[float, float]:
        return tuple(float((directory / f"{e}-{name}").read_text()) for e in ("started", "ended"))  # type: ignore[return-value]

    (a0, a1), (b0, b1) = span(one.parent, "alpha"), span(two.parent, "beta")
    assert a0 < b1 and b0 < a1  # their Deployment stages overlapped: neither waited
